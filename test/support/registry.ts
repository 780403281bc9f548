// A real npm registry for tests: verdaccio 6 on 127.0.0.1 with no uplinks,
// behind a recording proxy that can inject failures (see registryServer.ts).
//
//   const registry = await startRegistry();            // in beforeAll, timeout >= 120 s
//   registry.url                                        // 'http://127.0.0.1:PORT/'
//   await registry.requests()                           // what npm (or velo) asked for
//   await registry.setFailure({ mode: 'status', status: 500 })   // tarball GETs answer 500
//   await registry.stop();
//
// Every package under fixtures/packages/ is in it. Those are published once
// with the real `npm publish` (tarballs made by npm's own pack) into a seed
// storage directory cached in $TMPDIR by content hash; each registry starts on
// a private copy of that storage. Fixture directories holding a
// velo-crafted.json are packed with node-tar instead (craftedTarballs.ts) and
// published over the registry's HTTP API, as npm would publish them.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRAFTED_SPEC_FILE, craftedTarballFromDir } from './craftedTarballs.js';
import { cleanEnv, npmVersion, runNpm } from './npmProject.js';
import type { FailureRule, RegistryRequest, RequestKind } from './registryServer.js';

export type { FailureMode, FailureRule, RegistryRequest, RequestKind } from './registryServer.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = join(HERE, '..', '..');
export const FIXTURE_PACKAGES_DIR = join(REPO_ROOT, 'fixtures', 'packages');
const SERVER_SCRIPT = join(HERE, 'registryServer.ts');

/** Bump to invalidate every cached seed storage. */
const SEED_FORMAT = 1;

export interface FixturePackage {
  name: string;
  version: string;
  dir: string;
  /** Packed by craftedTarballs.ts (velo-crafted.json) rather than `npm pack`. */
  crafted: boolean;
}

export interface PublishedVersion {
  name: string;
  version: string;
  integrity: string;
  shasum: string;
  /** Tarball URL as served by this registry. */
  tarball: string;
}

/** A package.json-shaped manifest: name and version required. */
export interface PackageManifest {
  name: string;
  version: string;
  [key: string]: unknown;
}

export interface Registry {
  /** Registry URL with trailing slash, e.g. `http://127.0.0.1:41234/`. Points at the recording proxy. */
  url: string;
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Token npm must send to publish; any token works for reading. */
  authToken: string;
  /** `//127.0.0.1:PORT/:_authToken=…`, the .npmrc line that carries authToken. */
  authLine: string;
  /** verdaccio's own URL (not recorded, no failure injection). */
  upstreamUrl: string;
  /** Private verdaccio storage directory of this registry. */
  storageDir: string;
  /** Milliseconds from spawning the server process until it was listening. */
  startMs: number;
  /** Milliseconds spent building the seed storage (0 when it was cached). */
  seedMs: number;
  /** Every request the proxy has seen since start or the last clearRequests(), in arrival order. */
  requests(): Promise<RegistryRequest[]>;
  /** requests() filtered to one kind ('tarball' or 'packument'). */
  requestsOfKind(kind: RequestKind): Promise<RegistryRequest[]>;
  clearRequests(): Promise<void>;
  /**
   * Make matching requests fail until cleared with null:
   * `{mode:'status', status:500|404|…}`, `{mode:'hang'}` (never answers),
   * `{mode:'reset'}` (drops the connection), `{mode:'tamper'}` (a valid
   * tarball with one byte changed, so its integrity no longer matches),
   * `{mode:'truncate'}` (the full length announced, half the body sent,
   * then the connection dropped).
   * `on` picks 'tarball' (default), 'packument' or 'any'; `name` one package;
   * `times` how many matching requests fail before the rule runs out.
   */
  setFailure(rule: FailureRule | null): Promise<void>;
  /** Publish a tarball under a manifest through the registry's publish API (what `npm publish` sends). */
  publishTarball(manifest: PackageManifest, tarball: Buffer, opts?: { tag?: string }): Promise<PublishedVersion>;
  /** verdaccio's stdout/stderr so far (warnings and errors). */
  logs(): string;
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  /** 'fixtures' (default): every fixture package is published; 'empty': nothing is. */
  seed?: 'fixtures' | 'empty';
}

// ---------------------------------------------------------------------------
// fixtures

/** Every package under fixtures/packages (`<name>@<version>/`, scoped ones under `@scope/`). */
export async function listFixturePackages(root: string = FIXTURE_PACKAGES_DIR): Promise<FixturePackage[]> {
  const dirs: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    if (entry.name.startsWith('@')) {
      for (const inner of await readdir(join(root, entry.name), { withFileTypes: true })) {
        if (inner.isDirectory()) dirs.push(join(root, entry.name, inner.name));
      }
    } else {
      dirs.push(join(root, entry.name));
    }
  }
  const packages: FixturePackage[] = [];
  for (const dir of dirs.sort()) {
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as PackageManifest;
    const expected = `${pkg.name}@${pkg.version}`;
    const actual = relative(root, dir);
    if (actual !== expected) throw new Error(`fixture ${actual}: directory must be named ${expected}`);
    const crafted = await stat(join(dir, CRAFTED_SPEC_FILE)).then(
      () => true,
      () => false,
    );
    packages.push({ name: pkg.name, version: pkg.version, dir, crafted });
  }
  return packages;
}

async function hashTree(root: string, hash: ReturnType<typeof createHash>): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const full = join(dir, e.name);
      if (e.isDirectory()) {
        await walk(full);
      } else if (e.isFile()) {
        const st = await stat(full);
        hash.update(`${relative(root, full)}\0${st.mode & 0o111 ? 'x' : '-'}\0`);
        hash.update(await readFile(full));
        hash.update('\0');
      }
    }
  };
  await walk(root);
}

async function seedKey(): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`format ${SEED_FORMAT}\0npm ${await npmVersion()}\0node ${process.version}\0`);
  const verdaccioPkg = JSON.parse(await readFile(join(REPO_ROOT, 'node_modules', 'verdaccio', 'package.json'), 'utf8')) as {
    version: string;
  };
  hash.update(`verdaccio ${verdaccioPkg.version}\0`);
  for (const file of ['registry.ts', 'registryServer.ts', 'craftedTarballs.ts']) {
    hash.update(await readFile(join(HERE, file)));
  }
  await hashTree(FIXTURE_PACKAGES_DIR, hash);
  return hash.digest('hex').slice(0, 20);
}

// ---------------------------------------------------------------------------
// the server process

interface ServerHandle {
  child: ChildProcess;
  url: string;
  upstreamUrl: string;
  startMs: number;
  call<T>(type: string, extra?: Record<string, unknown>): Promise<T>;
  logs(): string;
  stop(): Promise<void>;
}

async function spawnServer(storage: string, configDir: string): Promise<ServerHandle> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [SERVER_SCRIPT, JSON.stringify({ storage, configDir })], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: cleanEnv(process.env),
  });
  let logText = '';
  const keep = (chunk: Buffer): void => {
    logText += chunk.toString();
    if (logText.length > 1_000_000) logText = logText.slice(-500_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let exited = false;

  const ready = new Promise<{ url: string; upstreamUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`test registry did not start within 60 s:\n${logText}`)), 60_000);
    child.on('message', (raw) => {
      const msg = raw as { type?: string; id?: number; ok?: boolean; result?: unknown; url?: string; upstreamUrl?: string };
      if (msg.type === 'ready' && msg.url && msg.upstreamUrl) {
        clearTimeout(timer);
        resolve({ url: msg.url, upstreamUrl: msg.upstreamUrl });
        return;
      }
      if (msg.id !== undefined) {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        p?.resolve(msg.result);
      }
    });
    child.once('exit', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      const err = new Error(`test registry exited (code ${code}, signal ${signal}):\n${logText}`);
      reject(err);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
  });
  const { url, upstreamUrl } = await ready;
  const startMs = performance.now() - t0;

  const call = <T>(type: string, extra: Record<string, unknown> = {}): Promise<T> => {
    if (exited) return Promise.reject(new Error('test registry is not running'));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, type, ...extra });
    });
  };

  const stop = async (): Promise<void> => {
    if (exited) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await Promise.race([call('stop').catch(() => undefined), new Promise((r) => setTimeout(r, 5_000))]);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  };

  return { child, url, upstreamUrl, startMs, call, logs: () => logText, stop };
}

// ---------------------------------------------------------------------------
// publishing

function escapedName(name: string): string {
  return name.startsWith('@') ? name.replace('/', '%2f') : name;
}

async function publishViaApi(
  baseUrl: string,
  token: string,
  manifest: PackageManifest,
  tarball: Buffer,
  tag: string,
): Promise<PublishedVersion> {
  const { name, version } = manifest;
  const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
  const shasum = createHash('sha1').update(tarball).digest('hex');
  // The same document shape libnpmpublish sends.
  const tarballName = `${name}-${version}.tgz`;
  const tarballUrl = `${baseUrl}${name}/-/${tarballName}`;
  const doc = {
    _id: name,
    name,
    description: manifest.description,
    'dist-tags': { [tag]: version },
    versions: {
      [version]: {
        ...manifest,
        _id: `${name}@${version}`,
        _nodeVersion: process.versions.node,
        _npmVersion: await npmVersion(),
        dist: { integrity, shasum, tarball: tarballUrl },
      },
    },
    access: null,
    _attachments: {
      [tarballName]: { content_type: 'application/octet-stream', data: tarball.toString('base64'), length: tarball.length },
    },
  };
  const res = await fetch(`${baseUrl}${escapedName(name)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'npm-command': 'publish' },
    body: JSON.stringify(doc),
  });
  if (!res.ok) throw new Error(`publishing ${name}@${version} failed: ${res.status} ${await res.text()}`);
  const unscoped = name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name;
  return { name, version, integrity, shasum, tarball: `${baseUrl}${name}/-/${unscoped}-${version}.tgz` };
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Publish every fixture package into a running server: npm publish for packed ones, the API for crafted ones. */
async function publishFixtures(server: ServerHandle, workDir: string, token: string): Promise<void> {
  const packages = await listFixturePackages();
  const host = new URL(server.upstreamUrl).host;
  const userconfig = join(workDir, 'publish-npmrc');
  await writeFile(
    userconfig,
    [`registry=${server.upstreamUrl}`, `//${host}/:_authToken=${token}`, 'audit=false', 'fund=false', 'update-notifier=false', ''].join('\n'),
  );
  await writeFile(join(workDir, 'publish-globalnpmrc'), '');
  const env = {
    ...cleanEnv(process.env),
    NPM_CONFIG_USERCONFIG: userconfig,
    NPM_CONFIG_GLOBALCONFIG: join(workDir, 'publish-globalnpmrc'),
  };

  // One queue per package name, versions in ascending order, so `latest` ends
  // on the highest version and one package's document is never written twice at once.
  const byName = new Map<string, FixturePackage[]>();
  for (const pkg of packages) byName.set(pkg.name, [...(byName.get(pkg.name) ?? []), pkg]);
  const queues = [...byName.values()].map((list) => list.sort((a, b) => compareVersions(a.version, b.version)));

  await mapLimit(queues, Math.max(2, availableParallelism()), async (queue) => {
    for (const pkg of queue) {
      if (pkg.crafted) {
        const manifest = JSON.parse(await readFile(join(pkg.dir, 'package.json'), 'utf8')) as PackageManifest;
        await publishViaApi(server.upstreamUrl, token, manifest, await craftedTarballFromDir(pkg.dir), 'latest');
        continue;
      }
      const res = await runNpm(['publish', '--access', 'public', '--cache', join(workDir, `cache-${pkg.name.replace('/', '+')}`)], {
        cwd: pkg.dir,
        env,
      });
      if (res.code !== 0) {
        throw new Error(`npm publish ${pkg.name}@${pkg.version} failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
      }
    }
  });
}

// ---------------------------------------------------------------------------
// the cached seed storage

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function withLock<T>(lockDir: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => ''), 10);
      if (Number.isFinite(pid) && pid > 0 && !processAlive(pid)) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockDir}`);
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

const SEED_TOKEN = 'velo-test-publisher';
let seedPromise: Promise<{ storage: string; ms: number }> | null = null;

/** The seed storage directory (built if missing); shared by every registry of this run and later runs. */
export function seedStorage(): Promise<{ storage: string; ms: number }> {
  seedPromise ??= (async () => {
    const cacheRoot = process.env.VELO_TEST_REGISTRY_CACHE ?? join(tmpdir(), 'velo-test-registry');
    await mkdir(cacheRoot, { recursive: true });
    const final = join(cacheRoot, `seed-${await seedKey()}`);
    const done = join(final, 'complete.json');
    const exists = (): Promise<boolean> =>
      stat(done).then(
        () => true,
        () => false,
      );
    if (await exists()) return { storage: join(final, 'storage'), ms: 0 };
    return withLock(`${final}.lock`, async () => {
      if (await exists()) return { storage: join(final, 'storage'), ms: 0 };
      const t0 = performance.now();
      const work = await mkdtemp(`${final}.build-`);
      const storage = join(work, 'storage');
      await mkdir(storage);
      const server = await spawnServer(storage, work);
      try {
        await publishFixtures(server, work, SEED_TOKEN);
      } finally {
        await server.stop();
      }
      const ms = performance.now() - t0;
      const built = join(work, 'seed');
      await mkdir(built);
      await rename(storage, join(built, 'storage'));
      await writeFile(join(built, 'complete.json'), JSON.stringify({ builtAt: new Date().toISOString(), ms }, null, 2));
      await rm(final, { recursive: true, force: true });
      await rename(built, final);
      await rm(work, { recursive: true, force: true });
      return { storage: join(final, 'storage'), ms };
    });
  })();
  seedPromise.catch(() => {
    seedPromise = null;
  });
  return seedPromise;
}

// ---------------------------------------------------------------------------

/** Start a registry on 127.0.0.1 holding every fixture package (see file comment). */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<Registry> {
  const seed = opts.seed === 'empty' ? { storage: null, ms: 0 } : await seedStorage();
  const root = await mkdtemp(join(tmpdir(), 'velo-registry-'));
  const storageDir = join(root, 'storage');
  if (seed.storage) {
    await cp(seed.storage, storageDir, { recursive: true });
  } else {
    await mkdir(storageDir);
  }
  let server: ServerHandle;
  try {
    server = await spawnServer(storageDir, root);
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  const host = new URL(server.url).host;
  const authToken = `velo-test-${randomBytes(8).toString('hex')}`;
  let stopped = false;

  return {
    url: server.url,
    host,
    authToken,
    authLine: `//${host}/:_authToken=${authToken}`,
    upstreamUrl: server.upstreamUrl,
    storageDir,
    startMs: server.startMs,
    seedMs: seed.ms,
    requests: () => server.call<RegistryRequest[]>('requests'),
    requestsOfKind: async (kind) => (await server.call<RegistryRequest[]>('requests')).filter((r) => r.kind === kind),
    clearRequests: () => server.call<void>('clearRequests'),
    setFailure: (rule) => server.call<void>('setFailure', { rule }),
    publishTarball: async (manifest, tarball, o = {}) => {
      const published = await publishViaApi(server.upstreamUrl, authToken, manifest, tarball, o.tag ?? 'latest');
      return { ...published, tarball: published.tarball.replace(server.upstreamUrl, server.url) };
    },
    logs: () => server.logs(),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await server.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
