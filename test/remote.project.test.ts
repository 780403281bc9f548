// Whole-project records in the remote (a real SeaweedFS weed mini on
// loopback): a machine that has never seen a project's install inputs lays
// node_modules out from the record another machine published — no planning,
// no registry request — and npm sees it as its own. A record from the
// remote is untrusted: one that would lay a tree outside the project, or
// whose tree does not match its digest, costs one warning and the install
// plans the lockfile as always.
import { appendFileSync, cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PreparedProject } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { veloAsync } from './support/runVelo.js';
import { useS3Server } from './support/s3Server.js';
import { decodeProjectRecord, encodeProjectRecord } from '../src/remote/remoteProject.js';
import { parseTree, serializeTree, toTreeEntries } from '../src/store/treeFormat.js';
import { hashBuffer } from '../src/store/hash.js';

const fx = useRegistryProjects('velo-remote-project-');
const s3 = useS3Server();

const nodeModules = (p: PreparedProject) => asObject(describeDir(join(p.dir, 'node_modules')));
const remoteEnv = (prefix: string, mode: 'read' | 'readwrite' = 'readwrite'): NodeJS.ProcessEnv => ({
  ...s3.env(mode === 'read' ? 'ro' : 'rw'),
  VELO_REMOTE: `s3://${s3.bucket}/${prefix}`,
  VELO_REMOTE_MODE: mode,
});
const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('velo: warning:'));

function ci(p: PreparedProject, home: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  return veloAsync(['npm', 'ci', '--json', ...args], { ...p.env, VELO_HOME: home, ...env }, p.dir);
}

/** A project like `a` on another machine: its own directory, sandbox and store, the same lockfile. */
async function sameInputs(a: PreparedProject): Promise<PreparedProject> {
  const b = await fx.project('dev');
  cpSync(join(a.dir, 'package-lock.json'), join(b.dir, 'package-lock.json'));
  return b;
}

/** The one project record under prefix: its object name and decoded contents. */
async function theRecord(prefix: string) {
  const [only, ...more] = await s3.list(`${prefix}/projects/`);
  expect(more).toEqual([]);
  const data = (await s3.client().get(only!.key))!;
  const name = (JSON.parse(data.toString('utf8')) as { name: string }).name;
  return { objectName: only!.key, record: decodeProjectRecord(data, name) };
}

describe('velo npm ci with a remote: whole-project records', () => {
  it('a machine that never saw these inputs lays node_modules out from the record: no planning, no registry request, npm sees it as its own', async () => {
    const a = await fx.project('dev');
    const first = await ci(a, fx.tmp(), remoteEnv('proj1'));
    expect(first.code, first.stderr).toBe(0);
    const s1 = JSON.parse(first.stdout);
    expect(s1).toMatchObject({ fromProjectCache: false, remote: { project: false, published: s1.packages, warnings: [] } });
    const { record } = await theRecord('proj1');
    expect(Object.keys(record.dirs)).toEqual(['node_modules']);
    expect(record.packages).toBe(s1.packages);

    // another machine: another checkout path, npm cache, store and projection method
    const b = await sameInputs(a);
    await fx.registry.clearRequests();
    const second = await ci(b, fx.tmp(), { ...remoteEnv('proj1', 'read'), VELO_METHOD: 'copy' });
    expect(second.code, second.stderr).toBe(0);
    const s2 = JSON.parse(second.stdout);
    expect(s2).toMatchObject({ fetched: 0, fromProjectCache: true, packages: s1.packages, remote: { project: true, fromRemote: s1.packages, warnings: [] } });
    expect(await fx.registry.requests()).toEqual([]);
    expect(nodeModules(b)).toEqual(nodeModules(a));
    // the hidden lockfile npm reads is the one npm wrote there
    expect(readFileSync(join(b.dir, 'node_modules', '.package-lock.json'), 'utf8')).toBe(readFileSync(join(a.dir, 'node_modules', '.package-lock.json'), 'utf8'));
    const ls = await b.npm(['ls', '--all']);
    expect(ls.code, ls.stdout + ls.stderr).toBe(0);
    const dry = await b.npm(['install', '--dry-run']);
    expect(dry.stdout + dry.stderr).toMatch(/up to date/);

    // a publishing machine that read the record sends nothing back, and asks for nothing more than a reader
    const c = await sameInputs(a);
    const third = await ci(c, fx.tmp(), remoteEnv('proj1'));
    expect(third.code, third.stderr).toBe(0);
    expect(JSON.parse(third.stdout).remote).toMatchObject({ project: true, published: 0, uploadedBytes: 0, requests: s2.remote.requests, warnings: [] });

    // other inputs (a project .npmrc line): no record for them, the lockfile is planned, and its record published
    const d = await sameInputs(a);
    appendFileSync(join(d.dir, '.npmrc'), 'save-exact=true\n');
    const fourth = await ci(d, fx.tmp(), remoteEnv('proj1'));
    expect(fourth.code, fourth.stderr).toBe(0);
    expect(JSON.parse(fourth.stdout)).toMatchObject({ fromProjectCache: false, remote: { project: false, fromRemote: s1.packages, warnings: [] } });
    expect(nodeModules(d)).toEqual(nodeModules(a));
    expect(await s3.list('proj1/projects/')).toHaveLength(2);

    const st = await veloAsync(['remote', 'status', '--json'], { ...remoteEnv('proj1'), VELO_HOME: fx.tmp() });
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout).remote.projects.count).toBe(2);
  });

  it('a record that would lay a tree outside the project, or whose tree is not its digest: one warning, the lockfile planned, nothing written outside', async () => {
    const a = await fx.project('dev');
    expect((await ci(a, fx.tmp(), remoteEnv('proj2'))).code).toBe(0);
    const { objectName, record } = await theRecord('proj2');
    const tree = record.trees.get(record.dirs['node_modules']!)!;

    for (const [what, hostile, message] of [
      // the same (valid) tree, laid at ../escape/node_modules
      ['outside', { ...record, dirs: { '../escape/node_modules': record.dirs['node_modules']! } }, /not a node_modules inside the project/],
      // a tree whose bytes are another tree's (one file made executable), under the first one's digest
      [
        'swapped',
        { ...record, trees: new Map([[record.dirs['node_modules']!, swapTree(tree)]]) },
        /does not match its digest/,
      ],
    ] as const) {
      await s3.client().put(objectName, encodeProjectRecord(hostile));
      const b = await sameInputs(a);
      await fx.registry.clearRequests();
      const r = await ci(b, fx.tmp(), remoteEnv('proj2', 'read'));
      expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      const s = JSON.parse(r.stdout);
      expect(s, what).toMatchObject({ fromProjectCache: false, fetched: 0, remote: { project: false, fromRemote: s.packages } });
      expect(warnings(r.stderr), what).toHaveLength(1);
      expect(warnings(r.stderr)[0], what).toMatch(message);
      expect(await fx.registry.requests(), what).toEqual([]);
      expect(existsSync(join(b.dir, '..', 'escape')), what).toBe(false);
      expect(nodeModules(b), what).toEqual(nodeModules(a));
    }
  });
});

/** Another valid tree: the first plain file turned executable (same paths, so only the digest check tells). */
function swapTree(tree: Buffer): Buffer {
  const entries = toTreeEntries(parseTree(tree));
  const i = entries.findIndex((e) => e.kind === 'file' && !e.exec);
  entries[i] = { ...entries[i]!, exec: true };
  const swapped = serializeTree(entries);
  expect(hashBuffer(swapped)).not.toBe(hashBuffer(tree));
  return swapped;
}
