import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { materialize } from '../src/projection/materialize.js';
import { registerProject } from '../src/store/keys.js';
import { collectGarbage } from '../src/store/gc.js';
import { verifyStore } from '../src/store/verify.js';
import { recoverLeftovers } from '../src/projection/atomicSwap.js';
import { projectionTarget } from '../src/projection/containment.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { tempDirs } from './support/tmp.js';
import { velo, veloAsync } from './support/runVelo.js';
import { repoRoot } from './support/paths.js';

const tmp = tempDirs();

function makeFiles(root: string, count: number, tag: string): void {
  for (let i = 0; i < count; i++) {
    const d = join(root, `d${i % 50}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}.js`), `// ${tag} ${i}\n${'x'.repeat(i % 300)}\n`);
  }
}

describe('concurrency and crashes', () => {
  it('several processes ingesting the same files at once all succeed with the same tree', async () => {
    const dir = tmp();
    const src = join(dir, 'src');
    makeFiles(src, 3000, 'same');
    const env = { VELO_HOME: join(dir, 'store') };
    const runs = await Promise.all([1, 2, 3, 4].map(() => veloAsync(['store', 'ingest', src, '--json'], env)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const trees = new Set(runs.map((r) => (JSON.parse(r.stdout) as { tree: string }).tree));
    expect(trees.size).toBe(1);
    const created = runs.map((r) => (JSON.parse(r.stdout) as { newObjects: number }).newObjects);
    // every object was created by exactly one of the writers
    expect(created.reduce((a, b) => a + b, 0)).toBe(3000);
    const store = Store.open(env.VELO_HOME);
    const report = await verifyStore(store);
    expect(report.problems).toEqual([]);
    expect(report.objects).toBe(3000);
    store.close();
  });

  it('a materialize killed half-way leaves the previous tree, and the next run cleans up', async () => {
    const dir = tmp();
    const home = join(dir, 'store');
    const oldSrc = join(dir, 'old');
    const newSrc = join(dir, 'new');
    makeFiles(oldSrc, 10, 'old');
    makeFiles(newSrc, 15000, 'new');
    const store = Store.open(home);
    const oldTree = (await ingestDir(store, oldSrc)).tree;
    const newTree = (await ingestDir(store, newSrc)).tree;
    const dest = join(dir, 'project', 'node_modules');
    await materialize(store, oldTree, dest, { within: dirname(dest), method: 'copy' });
    const before = asObject(describeDir(dest));
    const child = spawn(process.execPath, [join(repoRoot(), 'dist/cli/velo.js'), 'store', 'materialize', newTree, dest, '--method', 'copy'], {
      env: { ...process.env, VELO_HOME: home, VELO_THREADS: '1' },
      stdio: 'ignore',
    });
    // kill it once it is visibly half-way: the staging directory exists and is filling
    const parent = join(dir, 'project');
    const deadline = Date.now() + 20_000;
    for (;;) {
      const staging = readdirSync(parent).find((n) => n.includes('.velo-new-'));
      if (staging && readdirSync(join(parent, staging)).length > 5) break;
      if (Date.now() > deadline) throw new Error('materialize never started');
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    expect(asObject(describeDir(dest))).toEqual(before);
    expect(readdirSync(parent).some((n) => n.includes('.velo-new-'))).toBe(true);
    // the next run removes the dead process's leftovers and finishes the job
    await materialize(store, newTree, dest, { within: dirname(dest), method: 'hardlink' });
    expect(readdirSync(parent)).toEqual(['node_modules']);
    expect(asObject(describeDir(dest))).toEqual(asObject(describeDir(newSrc)));
    store.close();
  });

  it('a crash between the two renames of the swap is repaired: the old tree comes back', () => {
    const dir = tmp();
    const dest = join(dir, 'node_modules');
    // what a process killed right after renaming the old tree aside leaves behind
    const aside = join(dir, '.node_modules.velo-old-999999-abcd');
    mkdirSync(aside);
    writeFileSync(join(aside, 'kept'), 'previous tree');
    const r = recoverLeftovers(projectionTarget(dest, dirname(dest)));
    expect(r.restored).toBe(true);
    expect(existsSync(join(dest, 'kept'))).toBe(true);
  });
});

describe('tamper guard', () => {
  for (const noNative of [true, false]) it(`an object edited in place through a hardlink is caught before it is linked again (${noNative ? 'JS' : 'native'} linker)`, async () => {
    const dir = tmp();
    const src = join(dir, 'src');
    makeFiles(src, 20, 'tamper');
    const store = Store.open(join(dir, 'store'));
    const { tree } = await ingestDir(store, src);
    const first = join(dir, 'p1');
    await materialize(store, tree, first, { within: dirname(first), method: 'hardlink' });
    // a build script or editor writes into the hardlinked file in place
    appendFileSync(join(first, 'd3/f3.js'), 'evil edit\n');
    const second = join(dir, 'p2');
    const err = await materialize(store, tree, second, { within: dirname(second), method: 'hardlink', noNative }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CORRUPT_OBJECT' });
    expect(String((err as Error).message)).toContain('d3/f3.js');
    expect(existsSync(second)).toBe(false); // nothing half-made left behind
    expect(readdirSync(join(dir, 'store', 'quarantine'))).toHaveLength(1);
    // re-ingesting the pristine source restores the object; then it links fine
    await ingestDir(store, src);
    await materialize(store, tree, second, { within: dirname(second), method: 'hardlink', noNative });
    expect(asObject(describeDir(second))).toEqual(asObject(describeDir(src)));
    // a deleted object is reported the same way, never a crash
    const { unlinkSync, readdirSync: ls } = await import('node:fs');
    const some = ls(join(dir, 'store/objects'), { recursive: true, withFileTypes: true }).find((d) => d.isFile())!;
    unlinkSync(join(some.parentPath, some.name));
    const gone = await materialize(store, tree, join(dir, 'p3'), { within: dirname(join(dir, 'p3')), method: 'copy', noNative }).catch((e: unknown) => e);
    expect(gone).toMatchObject({ code: 'CORRUPT_OBJECT' });
    store.close();
  });

  it('velo verify finds an edited object and --repair quarantines it', async () => {
    const dir = tmp();
    const src = join(dir, 'src');
    makeFiles(src, 5, 'verify');
    const env = { VELO_HOME: join(dir, 'store') };
    const tree = velo(['store', 'ingest', src], env).stdout.trim();
    expect(velo(['store', 'materialize', tree, join(dir, 'p'), '--method', 'hardlink'], env).code).toBe(0);
    writeFileSync(join(dir, 'p/d1/f1.js'), 'overwritten in place\n', { flag: 'r+' });
    const bad = velo(['verify', '--json'], env);
    expect(bad.code).toBe(1);
    const report = JSON.parse(bad.stdout) as { problems: { kind: string }[] };
    expect(report.problems.map((p) => p.kind)).toContain('corrupt-object');
    const fixed = velo(['verify', '--repair'], env);
    expect(fixed.stderr).toMatch(/repaired +corrupt-object/);
    // what it cannot restore it names: the tree that now misses an object, and the project using it
    expect(fixed.code).toBe(1);
    expect(fixed.stderr).toMatch(/PROBLEM +missing-object/);
    expect(fixed.stderr).toMatch(/PROBLEM +broken-project .*run the install there again/);
    // the pristine source brings the object back
    expect(velo(['store', 'ingest', src], env).code).toBe(0);
    expect(velo(['verify'], env).code).toBe(0);
  });
});

describe('verify --repair', () => {
  it('restores a damaged object from an intact copy in a registered project', async () => {
    const dir = tmp();
    const src = join(dir, 'src');
    makeFiles(src, 5, 'restore');
    const env = { VELO_HOME: join(dir, 'store') };
    const tree = velo(['store', 'ingest', src], env).stdout.trim();
    expect(velo(['store', 'materialize', tree, join(dir, 'copied'), '--method', 'copy'], env).code).toBe(0);
    expect(velo(['store', 'materialize', tree, join(dir, 'linked'), '--method', 'hardlink'], env).code).toBe(0);
    writeFileSync(join(dir, 'linked/d2/f2.js'), 'damaged in place\n', { flag: 'r+' });
    const r = velo(['verify', '--repair', '--json'], env);
    expect(r.code, r.stdout).toBe(0);
    const report = JSON.parse(r.stdout) as { problems: { kind: string; detail: string; repaired: boolean }[] };
    expect(report.problems.some((p) => p.kind === 'corrupt-object' && /restored from an intact copy/.test(p.detail))).toBe(true);
    expect(report.problems.every((p) => p.repaired)).toBe(true);
    expect(velo(['verify'], env).code).toBe(0);
    expect(velo(['store', 'materialize', tree, join(dir, 'again'), '--method', 'hardlink'], env).code).toBe(0);
    expect(asObject(describeDir(join(dir, 'again')))).toEqual(asObject(describeDir(src)));
  });
});

describe('gc', () => {
  it('deletes only what no registered project references', async () => {
    const dir = tmp();
    const store = Store.open(join(dir, 'store'));
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    makeFiles(a, 30, 'a');
    makeFiles(b, 30, 'b');
    const ta = (await ingestDir(store, a)).tree;
    await ingestDir(store, b);
    const dest = join(dir, 'project-a');
    await materialize(store, ta, dest, { within: dirname(dest), method: 'copy' });
    registerProject(store, { path: dest, ecosystem: 'tree', tree: ta });
    const dry = collectGarbage(store, { dryRun: true });
    expect(dry.objectsDeleted).toBe(30);
    expect(dry.treesDeleted).toBe(1);
    const r = collectGarbage(store);
    expect(r.objectsDeleted).toBe(30);
    const again = join(dir, 'again');
    await materialize(store, ta, again, { within: dirname(again), method: 'hardlink' });
    expect(asObject(describeDir(again))).toEqual(asObject(describeDir(a)));
    expect((await verifyStore(store)).problems).toEqual([]);
    store.close();
  });

  it('never races an install in another process: gc refuses while it runs and deletes nothing it needs', async () => {
    const dir = tmp();
    const home = join(dir, 'store');
    const src = join(dir, 'src');
    makeFiles(src, 200, 'install');
    const holder = spawn(process.execPath, [join(repoRoot(), 'test/support/leaseHolder.mjs'), home, src], { stdio: ['pipe', 'pipe', 'inherit'] });
    const tree = await new Promise<string>((resolve, reject) => {
      holder.stdout.on('data', (d: Buffer) => {
        const m = /ready (\w+)/.exec(d.toString());
        if (m) resolve(m[1]!);
      });
      holder.on('exit', () => reject(new Error('lease holder exited early')));
    });
    const refused = velo(['gc'], { VELO_HOME: home });
    expect(refused.code).toBe(7);
    expect(refused.stderr).toMatch(/gc cannot run while the store is in use by install \(pid \d+\)/);
    // the install finishes and registers what it made
    const dest = join(dir, 'project');
    mkdirSync(dest);
    holder.stdin.end(`register ${dest}\n`);
    await new Promise((r) => holder.on('close', r));
    const ran = velo(['gc', '--json'], { VELO_HOME: home });
    expect(ran.code, ran.stderr).toBe(0);
    expect((JSON.parse(ran.stdout) as { objectsDeleted: number }).objectsDeleted).toBe(0);
    expect(velo(['store', 'materialize', tree, join(dir, 'check'), '--no-register'], { VELO_HOME: home }).code).toBe(0);
    expect(asObject(describeDir(join(dir, 'check')))).toEqual(asObject(describeDir(src)));
  });
});
