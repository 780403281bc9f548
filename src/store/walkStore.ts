/**
 * Enumerate the files under objects/ or trees/ (used by verify and gc only:
 * nothing on an install path walks the store).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface StoredFile {
  /** full 64-hex digest */
  digest: string;
  exec: boolean;
  path: string;
  /** the file name does not fit the naming scheme */
  malformed: boolean;
}

const HEX2 = /^[0-9a-f]{2}$/;
const REST = /^([0-9a-f]{62})(x?)$/;

export function* walkStoreDir(root: string): Generator<StoredFile> {
  let prefixes: string[];
  try {
    prefixes = readdirSync(root);
  } catch {
    return;
  }
  for (const prefix of prefixes.sort()) {
    const dir = join(root, prefix);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = REST.exec(name);
      const ok = HEX2.test(prefix) && m !== null;
      yield { digest: ok ? prefix + m![1] : '', exec: ok ? m![2] === 'x' : false, path: join(dir, name), malformed: !ok };
    }
  }
}
