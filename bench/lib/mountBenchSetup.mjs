// What the mount benchmarks share before they measure: their options
// (--packages, --runs, --big-mb, --no-docs), the checks that they run as
// root on a built tree, and velo's modules from dist/.
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nodeModulesEntries } from '../../native/test-support/syntheticTree.mjs';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (p) => join(repo, 'dist', 'src', p);

/** name: for messages; bigMb: the default size of the large file; whyRoot: what needs root */
export async function mountBenchSetup(name, { bigMb, whyRoot }) {
  const { values: opt } = parseArgs({
    options: {
      packages: { type: 'string', default: '1000' },
      runs: { type: 'string', default: '5' },
      'big-mb': { type: 'string', default: String(bigMb) },
      'no-docs': { type: 'boolean', default: false },
    },
  });
  if (process.getuid() !== 0) {
    console.error(`${name}: run as root (${whyRoot})`);
    process.exit(1);
  }
  if (!existsSync(dist('mount/mount.js'))) {
    console.error(`${name}: build first: npx tsc -p tsconfig.json && node native/build.mjs`);
    process.exit(1);
  }
  return {
    packages: Number(opt.packages),
    runs: Number(opt.runs),
    bigMb: Number(opt['big-mb']),
    writeDocs: !opt['no-docs'],
    velo: {
      ...(await import(dist('store/store.js'))),
      ...(await import(dist('store/addFilesFromDir.js'))),
      ...(await import(dist('projection/materialize.js'))),
      ...(await import(dist('mount/mount.js'))),
    },
  };
}

/**
 * Writes the synthetic node_modules of native/test-support (`packages`
 * packages) as plain files under `plain`, plus big.bin of `bigMb` MiB.
 * Returns its regular files (big.bin not counted) and directories.
 */
export function writePlainTree(plain, packages, bigMb) {
  const entries = nodeModulesEntries({ packages });
  for (const e of entries) {
    const p = join(plain, e.path);
    if (e.kind === 'dir') mkdirSync(p, { recursive: true });
    else if (e.kind === 'symlink') symlinkSync(e.target, p);
    else {
      writeFileSync(p, e.data);
      if (e.exec) chmodSync(p, 0o755);
    }
  }
  const big = Buffer.alloc(bigMb * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(join(plain, 'big.bin'), big);
  return { files: entries.filter((e) => e.kind === 'file').length, dirs: entries.filter((e) => e.kind === 'dir').length };
}

/** Puts `section` in docs/BENCHMARKS.md in place of the section whose heading matches `heading` (or at the end). */
export function writeDocSection(heading, section) {
  const doc = join(repo, 'docs', 'BENCHMARKS.md');
  const old = existsSync(doc) ? readFileSync(doc, 'utf8') : '# Benchmarks\n';
  const at = old.search(heading);
  let next;
  if (at < 0) next = old.replace(/\n*$/, '\n\n') + section;
  else {
    const rest = old.slice(at + 1).search(/^## /m);
    next = old.slice(0, at) + section + (rest < 0 ? '' : '\n' + old.slice(at + 1 + rest));
  }
  writeFileSync(doc, next.replace(/\n*$/, '\n'));
  return doc;
}
