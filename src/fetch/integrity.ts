/**
 * Subresource-integrity strings as npm lockfiles carry them
 * (`sha512-<base64>`, older ones `sha1-<base64>`, possibly several
 * space-separated): the strongest algorithm present is checked, as ssri does.
 */
import { createHash, type Hash } from 'node:crypto';

const STRENGTH = ['sha512', 'sha384', 'sha256', 'sha1'] as const;

export interface IntegrityCheck {
  update(chunk: Buffer): void;
  /** true when the bytes seen match; call once, after the last chunk */
  matches(): boolean;
  /** what was expected, for messages */
  expected: string;
  algorithm: string;
}

/** A streaming check of `integrity`, or undefined when it names no algorithm this build knows. */
export function integrityCheck(integrity: string): IntegrityCheck | undefined {
  const byAlgo = new Map<string, string[]>();
  for (const part of integrity.trim().split(/\s+/)) {
    const m = /^(sha512|sha384|sha256|sha1)-([A-Za-z0-9+/=]+)(\?.*)?$/.exec(part);
    if (!m) continue;
    byAlgo.set(m[1]!, [...(byAlgo.get(m[1]!) ?? []), m[2]!]);
  }
  const algorithm = STRENGTH.find((a) => byAlgo.has(a));
  if (!algorithm) return undefined;
  const wanted = byAlgo.get(algorithm)!;
  const hash: Hash = createHash(algorithm);
  return {
    expected: integrity,
    algorithm,
    update: (chunk) => void hash.update(chunk),
    matches: () => wanted.includes(hash.digest('base64')),
  };
}
