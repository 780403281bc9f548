// Tarballs that `npm pack` would never make, built entry by entry with
// node-tar's Header/Pax encoders: paths with `..`, absolute paths, symlinks
// and hardlinks that escape the package, bins without the exec bit, a top
// directory not named `package/`, duplicate paths.
//
// A fixture package directory holding a `velo-crafted.json` is packed from
// that file instead of with `npm pack` (see test/support/registry.ts):
//
//   {
//     "why": "…",
//     "prefix": "package/",            // top directory inside the tarball
//     "entries": [
//       { "path": "index.js", "content": "…" },                 // under prefix, mode 0644
//       { "path": "bin/cli.js", "mode": "0644", "content": "…" },
//       { "path": "dir", "type": "dir", "mode": "0700" },
//       { "path": "link", "type": "symlink", "linkpath": "../../etc" },
//       { "path": "hl", "type": "hardlink", "linkpath": "/etc/passwd" },
//       { "raw": true, "path": "/abs/or/../path", "content": "…" }  // path used verbatim
//     ]
//   }
//
// The directory's package.json always becomes `<prefix>package.json`.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header, Pax } from 'tar';

export type CraftedEntryType = 'file' | 'dir' | 'symlink' | 'hardlink';

/** One tar entry, path used verbatim. */
export interface TarEntrySpec {
  path: string;
  type?: CraftedEntryType;
  content?: string | Buffer;
  /** Permission bits; default 0o644 for files, 0o755 for directories, 0o777 for links. */
  mode?: number;
  linkpath?: string;
}

interface CraftedJsonEntry {
  path: string;
  raw?: boolean;
  type?: CraftedEntryType;
  content?: string;
  mode?: string;
  linkpath?: string;
}

export interface CraftedSpec {
  why: string;
  prefix: string;
  entries: TarEntrySpec[];
}

export const CRAFTED_SPEC_FILE = 'velo-crafted.json';

/** The same fixed mtime `npm pack` uses. */
const PACK_MTIME = new Date('1985-10-26T08:15:00.000Z');

const TYPE_NAMES = {
  file: 'File',
  dir: 'Directory',
  symlink: 'SymbolicLink',
  hardlink: 'Link',
} as const;

function defaultMode(type: CraftedEntryType): number {
  if (type === 'dir') return 0o755;
  if (type === 'file') return 0o644;
  return 0o777;
}

function pad512(buf: Buffer): Buffer {
  const rest = buf.length % 512;
  return rest === 0 ? buf : Buffer.concat([buf, Buffer.alloc(512 - rest)]);
}

/** A gzipped tar holding exactly these entries, in this order. */
export function buildTarball(entries: readonly TarEntrySpec[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const body = type === 'file' ? Buffer.from(entry.content ?? '') : Buffer.alloc(0);
    const data = {
      path: entry.path,
      mode: entry.mode ?? defaultMode(type),
      uid: 0,
      gid: 0,
      size: body.length,
      mtime: PACK_MTIME,
      type: TYPE_NAMES[type],
      ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}),
    };
    const header = new Header(data);
    const block = Buffer.alloc(512);
    if (header.encode(block, 0)) {
      // Long path or linkpath: a pax extended header carries the full value.
      blocks.push(new Pax({ path: entry.path, ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}) }).encode());
    }
    blocks.push(block);
    if (body.length > 0) blocks.push(pad512(body));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}

function parseMode(mode: string | undefined): number | undefined {
  if (mode === undefined) return undefined;
  if (!/^0?[0-7]{3,4}$/.test(mode)) throw new Error(`${CRAFTED_SPEC_FILE}: mode must be an octal string like "0644", got ${mode}`);
  return parseInt(mode, 8);
}

/** Read `<dir>/velo-crafted.json` and `<dir>/package.json` into the full entry list. */
export async function readCraftedSpec(dir: string): Promise<CraftedSpec> {
  const json = JSON.parse(await readFile(join(dir, CRAFTED_SPEC_FILE), 'utf8')) as {
    why?: string;
    prefix?: string;
    entries?: CraftedJsonEntry[];
  };
  const prefix = json.prefix ?? 'package/';
  const packageJson = await readFile(join(dir, 'package.json'));
  const entries: TarEntrySpec[] = [{ path: `${prefix}package.json`, content: packageJson }];
  for (const e of json.entries ?? []) {
    const mode = parseMode(e.mode);
    entries.push({
      path: e.raw ? e.path : `${prefix}${e.path}`,
      type: e.type ?? 'file',
      ...(e.content !== undefined ? { content: e.content } : {}),
      ...(mode !== undefined ? { mode } : {}),
      ...(e.linkpath !== undefined ? { linkpath: e.linkpath } : {}),
    });
  }
  return { why: json.why ?? '', prefix, entries };
}

/** The tarball a crafted fixture directory describes. */
export async function craftedTarballFromDir(dir: string): Promise<Buffer> {
  return buildTarball((await readCraftedSpec(dir)).entries);
}
