// Which packages each package of a lockfile requires (for a lazy mount's
// fetcher to take them along): names resolved as Node resolves them.
import { describe, expect, it } from 'vitest';
import { dependencyKeys } from '../src/npm/lockfileDeps.js';
import { groupDependencies } from '../src/remote/lazyTrees.js';

const lockfile = {
  name: 'p',
  lockfileVersion: 3,
  packages: {
    '': { name: 'p', dependencies: { a: '^1', '@s/b': '^1' } },
    'node_modules/a': { version: '1.0.0', integrity: 'sha512-A', dependencies: { c: '^2', missing: '^1' }, peerDependencies: { '@s/b': '*' } },
    'node_modules/a/node_modules/c': { version: '2.0.0', integrity: 'sha512-C2', dependencies: { d: '^1' } },
    'node_modules/c': { version: '1.0.0', integrity: 'sha512-C1' },
    'node_modules/@s/b': { version: '1.0.0', integrity: 'sha512-B', optionalDependencies: { c: '^1' } },
    'node_modules/d': { version: '1.0.0', integrity: 'sha512-D' },
    'packages/w': { name: 'w', dependencies: { a: '^1' } },
  },
};

describe('dependencyKeys', () => {
  it('resolves each dependency to the nearest node_modules up from the package (nested first, then hoisted)', () => {
    const deps = dependencyKeys(JSON.stringify(lockfile));
    expect(deps.get('npm:sha512-A')?.sort()).toEqual(['npm:sha512-B', 'npm:sha512-C2']);
    expect(deps.get('npm:sha512-C2')).toEqual(['npm:sha512-D']);
    expect(deps.get('npm:sha512-B')).toEqual(['npm:sha512-C1']);
    expect(deps.get('npm:sha512-D')).toEqual([]);
    // a workspace folder has no key: it requires nothing that is fetched
    expect([...deps.keys()].sort()).toEqual(['npm:sha512-A', 'npm:sha512-B', 'npm:sha512-C1', 'npm:sha512-C2', 'npm:sha512-D']);
  });

  it('a lockfile that is not one gives nothing (it only decides what is fetched early)', () => {
    for (const text of ['', 'not json', '{"packages": []}', '{"packages": {"node_modules/x": 7}}', JSON.stringify({ packages: { 'node_modules/x': { integrity: 5, dependencies: 'y' } } })]) {
      expect(dependencyKeys(text).size, text).toBe(0);
    }
  });

  it('groupDependencies maps keys to a lazy fill’s group indexes, dropping what is not in it', () => {
    const deps = dependencyKeys(JSON.stringify(lockfile));
    expect(groupDependencies(['npm:sha512-C2', 'npm:sha512-A', 'npm:sha512-D'], deps)).toEqual([[2], [0], []]);
  });
});
