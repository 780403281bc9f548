/**
 * The package key of a distribution from uv.lock: names exactly one
 * installed set of bytes. It is the lock entry's name and version, every
 * artifact uv may pick for it (wheel file names with their hashes, the
 * sdist's hash) and the interpreter identity that decides which wheel uv
 * picks and how it is laid out (platform, ABI, version, bytecode magic).
 * Same inputs, same wheel, same files: so one store entry serves every
 * project and tool that locks the same distribution for the same python.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { VeloError, fsError } from '../errors.js';
import type { Interpreter } from './interpreter.js';
import { interpreterIdentity } from './interpreter.js';
import type { LockArtifact, LockPackage } from './uvLock.js';

/** Bump when what velo stores per distribution changes shape. */
export const DIST_LAYOUT = 'velo-uv-dist-1';

function fileSha256(path: string): string {
  try {
    return 'sha256:' + createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch (err) {
    throw fsError(err, `cannot read ${path} (named in uv.lock)`);
  }
}

function artifactId(a: LockArtifact, workspaceDir: string): { file: string; hash: string } {
  if (a.hash) return { file: a.filename, hash: a.hash };
  if (a.path) {
    const p = isAbsolute(a.path) ? a.path : resolve(workspaceDir, a.path);
    return { file: a.filename, hash: fileSha256(p) };
  }
  if (a.url) return { file: a.filename, hash: `url:${a.url}` };
  throw new VeloError('LOCKFILE', `uv.lock: artifact ${a.filename} has neither a hash, a path nor a URL`);
}

export function distKey(pkg: LockPackage, interpreter: Interpreter, workspaceDir: string): string {
  const ident = {
    layout: DIST_LAYOUT,
    name: pkg.name,
    version: pkg.version,
    source: pkg.source.kind,
    subdirectory: pkg.source.subdirectory ?? '',
    wheels: pkg.wheels.map((w) => artifactId(w, workspaceDir)),
    sdist: pkg.sdist ? artifactId(pkg.sdist, workspaceDir) : null,
    python: interpreterIdentity(interpreter),
  };
  const digest = createHash('sha256').update(JSON.stringify(ident)).digest('hex').slice(0, 40);
  return `uv:${pkg.name}==${pkg.version}@${digest}`;
}
