// velo's bin normalization against npm's own: the npm-normalize-package-bin
// that ships inside the npm on PATH decides, for every case, which bins npm
// links and where (velo additionally skips targets the package lacks, as
// bin-links does; that part is compared end to end in npm.untrusted).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizeBins } from '../src/npm/bins.js';
import { npmCliPath } from './support/npmProject.js';

type Normalize = (pkg: Record<string, unknown>) => { bin?: Record<string, string> };
const npmNormalize = createRequire(join(dirname(npmCliPath()), '..', 'package.json'))('npm-normalize-package-bin') as Normalize;

const CASES: Record<string, unknown>[] = [
  { name: 'plain', bin: 'cli.js' },
  { name: '@scope/tool', bin: './bin/tool.js' },
  { name: 'arr', bin: ['bin/a.js', './b', 'c/../d.js'] },
  { name: 'escape', bin: { x: '../../x', other: '../../../../victim/OTHER', abs: '/etc/passwd', win: '..\\..\\win', dot: '.', empty: '', slash: '/' } },
  { name: 'names', bin: { '../../evil': 'a.js', 'a:b': 'a.js', 'dir\\name': 'a.js', '.': 'a.js', '..': 'a.js', '': 'a.js', 'x/': 'a.js', ok: 'a.js' } },
  { name: 'types', bin: { num: 1, nil: null, obj: {}, ok: 'ok.js' } },
  { bin: 'nameless.js' },
  { name: 'none', bin: 7 },
  { name: 'nothing' },
];

describe('bins are normalized as npm normalizes them', () => {
  for (const pkg of CASES) {
    it(JSON.stringify(pkg.bin ?? null), () => {
      const npm = npmNormalize(structuredClone(pkg)).bin ?? {};
      expect(Object.fromEntries(normalizeBins(pkg))).toEqual(npm);
    });
  }
});
