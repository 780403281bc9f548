// The containment check every projection goes through: a destination (or
// anything velo would create, rename or delete beside it) must really lie in
// the directory the caller names; a symlinked parent pointing elsewhere is
// followed to where it really leads and refused. Real files, real store.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { materialize } from '../src/projection/materialize.js';
import { assertContained, OutsideProjectError } from '../src/projection/containment.js';
import { removeTree } from '../src/projection/atomicSwap.js';
import { mountProjection } from '../src/mount/mount.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs('velo-containment-');

/** project/ and, beside it, outside/ holding a file of its own. */
function layout(): { project: string; outside: string; snapshot: () => Record<string, unknown> } {
  const base = tmp();
  const project = join(base, 'project');
  const outside = join(base, 'outside');
  mkdirSync(project);
  mkdirSync(join(outside, 'node_modules/pkg'), { recursive: true });
  writeFileSync(join(outside, 'node_modules/pkg/SENTINEL'), 'not velo\'s\n');
  return { project, outside, snapshot: () => asObject(describeDir(outside, { mtimes: true })) };
}

describe('assertContained', () => {
  it('accepts a path inside, even one whose parents do not exist yet', () => {
    const { project } = layout();
    expect(assertContained(join(project, 'node_modules'), project)).toBe(join(project, 'node_modules'));
    expect(assertContained(join(project, 'packages/a/node_modules'), project)).toBe(join(project, 'packages/a/node_modules'));
  });

  it('refuses the root itself, `..` that leaves it, and absolute paths elsewhere', () => {
    const { project, outside } = layout();
    for (const p of [project, join(project, '../outside/node_modules'), join(project, 'node_modules/../../outside'), join(outside, 'node_modules'), '/etc']) {
      expect(() => assertContained(p, project), p).toThrow(OutsideProjectError);
    }
    try {
      assertContained(join(project, '../outside/node_modules'), project);
    } catch (err) {
      expect(err).toMatchObject({ code: 'UNSAFE_PATH', exitCode: 6 });
    }
  });

  it('refuses a destination whose parent is a symlink to outside', () => {
    const { project, outside } = layout();
    symlinkSync(outside, join(project, 'linked'));
    expect(() => assertContained(join(project, 'linked/node_modules'), project)).toThrow(/resolves to .*outside\/node_modules/);
    // deeper: a symlinked grandparent, and a destination that does not exist yet
    expect(() => assertContained(join(project, 'linked/node_modules/pkg/new'), project)).toThrow(OutsideProjectError);
    // a dangling symlink in the chain counts where it points (mkdir through it would land there)
    symlinkSync(join(outside, 'not-yet'), join(project, 'dangling'));
    expect(() => assertContained(join(project, 'dangling/node_modules'), project)).toThrow(/resolves to .*outside\/not-yet\/node_modules/);
    // the destination itself being a symlink is fine: renaming or deleting it touches the link only
    symlinkSync(outside, join(project, 'node_modules'));
    expect(assertContained(join(project, 'node_modules'), project)).toBe(join(project, 'node_modules'));
  });

  it('a project reached through a symlink is judged where it really is', () => {
    const { project } = layout();
    const alias = join(tmp(), 'alias');
    symlinkSync(project, alias);
    expect(assertContained(join(alias, 'node_modules'), alias)).toBe(join(alias, 'node_modules'));
  });
});

/** A store holding a one-file tree, and a project whose `packages` is a symlink to the outside directory. */
async function symlinkedProject(run: (x: { store: Store; tree: string; project: string; snapshot: () => Record<string, unknown> }) => Promise<void>): Promise<void> {
  const { project, outside, snapshot } = layout();
  const store = Store.open(join(tmp(), 'store'));
  try {
    const src = join(tmp(), 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'index.js'), 'module.exports = 1;\n');
    const { tree } = await ingestDir(store, src);
    symlinkSync(outside, join(project, 'packages'));
    await run({ store, tree, project, snapshot });
  } finally {
    store.close();
  }
}

describe('projections refuse before touching anything', () => {
  it('materialize into a symlinked parent pointing outside: refused, the outside tree unchanged, no staging left', () =>
    symlinkedProject(async ({ store, tree, project, snapshot }) => {
      const before = snapshot();
      await expect(materialize(store, tree, join(project, 'packages/node_modules'), { within: project, method: 'copy' })).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
      await expect(materialize(store, tree, join(project, 'packages/node_modules/pkg'), { within: project, method: 'copy' })).rejects.toBeInstanceOf(OutsideProjectError);
      expect(snapshot()).toEqual(before);
      // a plain destination inside works
      const ok = await materialize(store, tree, join(project, 'node_modules'), { within: project, method: 'copy' });
      expect(ok.files).toBe(1);
    }));

  it('mountProjection into a symlinked parent pointing outside: refused before anything is mounted or created', () =>
    symlinkedProject(async ({ store, tree, project, snapshot }) => {
      const before = snapshot();
      await expect(mountProjection(store, tree, join(project, 'packages/node_modules'), { within: project })).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
      await expect(mountProjection(store, tree, join(project, 'packages/new/node_modules'), { within: project })).rejects.toBeInstanceOf(OutsideProjectError);
      expect(snapshot()).toEqual(before);
    }));

  it('removeTree refuses a path outside its root', () => {
    const { project, outside, snapshot } = layout();
    const before = snapshot();
    expect(() => removeTree(join(outside, 'node_modules'), project)).toThrow(OutsideProjectError);
    expect(snapshot()).toEqual(before);
  });
});
