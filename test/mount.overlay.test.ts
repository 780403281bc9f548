// Writes through a mount: they land in the mount's upper layer, never in the
// store, and create/overwrite/delete/rename/chmod behave exactly as on a
// kernel overlayfs over a plain directory with the same contents. The FUSE
// view under the overlay serves reads by FUSE passthrough here (forced: this
// tree's files are small), so the overlay is checked on the stacked mount.
import { execFileSync } from 'node:child_process';
import {
  appendFileSync, chmodSync, mkdirSync, readFileSync, renameSync, rmSync,
  symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { join, dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { Store } from '../src/store/store.js';
import { listMounts, mountProjection, type MountResult } from '../src/mount/mount.js';
import { summarizeUpper } from '../src/mount/mountUpper.js';
import { veloEnv } from './support/runVelo.js';
import { veloBin } from './support/paths.js';
import { openMountSandbox, removeMountSandbox } from './support/mountSandbox.js';
import { expectObjectsIntact, makeEditFixture, mountReferenceOverlay, snapshot, stepRecorder, type ReferenceOverlay } from './support/editFixture.js';

let base: string;
let store: Store;
let tree: string;
let mounted: MountResult;
/** a kernel overlay over a plain copy of the same tree: the reference */
let ref: ReferenceOverlay;



/** The same sequence of edits, with the outcome of each (ok or the errno code). */
function edits(root: string): Record<string, string> {
  const { outcome, step } = stepRecorder();
  step('create a file', () => writeFileSync(join(root, 'node_modules/.cache'), 'cache\n'));
  step('create a dir tree', () => mkdirSync(join(root, 'node_modules/new/sub'), { recursive: true }));
  step('create a symlink', () => symlinkSync('../a', join(root, 'node_modules/new/link')));
  step('overwrite a file', () => writeFileSync(join(root, 'node_modules/a/index.js'), 'module.exports = "A";\n'));
  step('append to a file', () => appendFileSync(join(root, 'node_modules/a/README.md'), 'more\n'));
  step('truncate a file', () => truncateSync(join(root, 'node_modules/b/lib/one.js'), 1));
  step('delete a file', () => rmSync(join(root, 'node_modules/b/lib/two.js')));
  step('delete a dir tree', () => rmSync(join(root, 'node_modules/c'), { recursive: true }));
  step('rename a file', () => renameSync(join(root, 'node_modules/b/index.js'), join(root, 'node_modules/b/main.js')));
  step('rename a lower dir (rename(2))', () => renameSync(join(root, 'node_modules/a'), join(root, 'node_modules/a2')));
  step('rename a new dir', () => renameSync(join(root, 'node_modules/new'), join(root, 'node_modules/new2')));
  step('mv a lower dir (mv copies on EXDEV)', () => execFileSync('mv', [join(root, 'node_modules/b/lib'), join(root, 'node_modules/b/lib2')]));
  step('chmod a file', () => chmodSync(join(root, 'same-as-a.js'), 0o600));
  step('chmod +x a file', () => chmodSync(join(root, 'node_modules/b/lib2/one.js'), 0o755));
  step('replace a symlink', () => {
    rmSync(join(root, 'link-to-a'));
    symlinkSync('bin', join(root, 'link-to-a'));
  });
  step('recreate a deleted file', () => writeFileSync(join(root, 'node_modules/b/lib2/two.js'), 'two again\n'));
  return outcome;
}

beforeAll(async () => {
  ({ base, store } = openMountSandbox('velo-mount-overlay-'));
  const src = join(base, 'src');
  makeEditFixture(src);
  tree = (await ingestDir(store, src, { mtimes: true })).tree;
  ref = await mountReferenceOverlay(base, store, tree);
  process.env.VELO_FUSE_PASSTHROUGH = '1'; // the server started by mountProjection inherits it
  try {
    mounted = await mountProjection(store, tree, join(base, 'dest'), { within: dirname(join(base, 'dest')) });
  } finally {
    delete process.env.VELO_FUSE_PASSTHROUGH;
  }
});

afterAll(() => removeMountSandbox(base, store));

describe('writing through a mount', () => {
  it('has a lower layer that serves reads by FUSE passthrough', () => {
    const log = readFileSync(join(store.home, 'mounts', mounted.id, 'server.log'), 'utf8');
    expect(log).toMatch(/reads are served by FUSE passthrough \(asked for;/);
  });

  let outcomes: { velo: Record<string, string>; ref: Record<string, string> };

  beforeAll(() => {
    outcomes = { velo: edits(mounted.dest), ref: edits(ref.merged) };
  });

  it('create, overwrite, delete, rename and chmod behave as on overlayfs over a plain directory', () => {
    expect(outcomes.velo).toEqual(outcomes.ref);
    // overlayfs without redirect_dir: rename(2) of a lower directory is EXDEV (mv then copies)
    expect(outcomes.velo['rename a lower dir (rename(2))']).toBe('EXDEV');
    expect(Object.entries(outcomes.velo).filter(([k, v]) => v !== 'ok' && k !== 'rename a lower dir (rename(2))')).toEqual([]);
    expect(snapshot(mounted.dest)).toEqual(snapshot(ref.merged));
  });

  it('puts every change in the upper layer, as overlayfs does', () => {
    const velo = summarizeUpper(mounted.upper!, 1000);
    const plain = summarizeUpper(ref.upper, 1000);
    expect(velo).toEqual(plain);
    expect(velo.deleted).toBeGreaterThan(0);
    expect(velo.paths).toContain('node_modules/.cache');
    expect(readFileSync(join(mounted.upper!, 'node_modules/a/index.js'), 'utf8')).toBe('module.exports = "A";\n');
  });

  it('never writes to the store: every object re-hashes to its name with its mode and mtime, and the FUSE view is unchanged', () => {
    expect(expectObjectsIntact(store, tree)).toBe(10);
    const lower = join(store.home, 'mounts', mounted.id, 'lower');
    expect(snapshot(lower)).toEqual(snapshot(ref.lower));
  });

  it('shows what the upper layer holds in listMounts and velo status', () => {
    const [m] = listMounts(store);
    expect(m!.upperSummary!.files).toBeGreaterThan(5);
    expect(m!.upperSummary!.deleted).toBeGreaterThan(0);
    const r = execFileSync(process.execPath, [veloBin(), 'status'], { env: veloEnv({ VELO_HOME: store.home }), encoding: 'utf8' });
    expect(r).toMatch(new RegExp(`mounts +1\\n +${mounted.dest} overlay, pid ${mounted.pid}: upper \\d+ file\\(s\\) written \\([^)]*\\), \\d+ deleted — `));
    const j = JSON.parse(execFileSync(process.execPath, [veloBin(), 'status', '--json'], { env: veloEnv({ VELO_HOME: store.home }), encoding: 'utf8' })) as {
      mounts: { dest: string; upperSummary: { files: number } }[];
      methods: Record<string, number>;
    };
    expect(j.mounts[0]!.dest).toBe(mounted.dest);
    expect(j.mounts[0]!.upperSummary.files).toBe(m!.upperSummary!.files);
    expect(j.methods.mount).toBe(1);
  });
});
