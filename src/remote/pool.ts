/**
 * Bounded concurrency for remote requests: runPool maps a list with at most
 * `limit` tasks in flight; Limiter admits tasks one by one as slots free up,
 * so a producer (the pack builder) never holds more than `limit` uploads in
 * memory; Semaphore bounds tasks started from many places (keys handed to
 * a publish while the install runs) and gives each its result.
 */
export async function runPool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

export class Limiter {
  readonly #limit: number;
  #running = new Set<Promise<void>>();

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  /** Start task once a slot is free (resolves when it has started, not finished). */
  async admit(task: () => Promise<void>): Promise<void> {
    while (this.#running.size >= this.#limit) await Promise.race(this.#running);
    const p: Promise<void> = task().finally(() => this.#running.delete(p));
    this.#running.add(p);
  }

  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.race(this.#running);
  }
}

/** At most `limit` tasks run at once; run() resolves with the task's own result. */
export class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#free = Math.max(1, limit);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}
