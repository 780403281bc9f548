// velo npm ci through a shared store on S3 (a real SeaweedFS weed mini on
// loopback, SigV4 identities): a machine with an empty store installs from
// what another published, without asking the registry; a damaged, refusing
// or dead remote costs one warning and the registry path; read mode writes
// nothing; status and gc.
import { cpSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { zstdCompressSync, zstdDecompressSync, constants as zlibConstants } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PreparedProject } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { asObject, describeDir } from './support/treeCompare.js';
import { veloAsync } from './support/runVelo.js';
import { deadEndpoint, useS3Server } from './support/s3Server.js';
import { loadNative } from '../src/native.js';
import { hashBuffer } from '../src/store/hash.js';
import { walkStoreDir } from '../src/store/walkStore.js';
import { decodeRemoteKey, packObjectName, type ObjectLocation } from '../src/remote/remoteLayout.js';

const fx = useRegistryProjects('velo-remote-npm-');
const s3 = useS3Server();

const nodeModules = (p: PreparedProject) => asObject(describeDir(join(p.dir, 'node_modules'), { skip: (rel) => rel === '.package-lock.json' }));

/** velo npm ci in p with its own fresh store (VELO_HOME) and the given remote settings */
function ci(p: PreparedProject, home: string, env: NodeJS.ProcessEnv, args: string[] = []) {
  return veloAsync(['npm', 'ci', '--json', ...args], { ...p.env, VELO_HOME: home, ...env }, p.dir);
}

const client = () => s3.client();
const listed = (prefix: string) => s3.list(prefix);

const remoteEnv = (prefix: string, who: 'rw' | 'ro' | 'wrong' = 'rw'): NodeJS.ProcessEnv => ({ ...s3.env(who), VELO_REMOTE: `s3://${s3.bucket}/${prefix}` });
const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('velo: warning:'));

/** A frame of small objects (encoding 2) in a pack of the remote under prefix, from the key records. */
async function frameToDamage(prefix: string): Promise<ObjectLocation> {
  for (const o of await listed(`${prefix}keys/`)) {
    const data = (await client().get(o.key))!;
    const { locations } = decodeRemoteKey(data, JSON.parse(data.toString('utf8')).name);
    for (const loc of locations.values()) if (loc.enc === 2 && loc.pack !== '') return loc;
  }
  throw new Error('no frame in the remote');
}

/** The frame's bytes with one byte changed, compressed again and padded (a zstd skippable frame) to the same length. */
function sameLengthFrame(stored: Buffer): Buffer {
  const raw = zstdDecompressSync(stored);
  raw[raw.length >> 1] ^= 0x01;
  for (let level = 1; level <= 19; level++) {
    const z = zstdCompressSync(raw, { params: { [zlibConstants.ZSTD_c_compressionLevel]: level } });
    const pad = stored.length - z.length;
    if (pad !== 0 && pad < 8) continue;
    const skippable = Buffer.alloc(pad);
    if (pad > 0) {
      skippable.writeUInt32LE(0x184d2a50, 0);
      skippable.writeUInt32LE(pad - 8, 4);
    }
    const out = Buffer.concat([z, skippable]);
    expect(zstdDecompressSync(out).equals(raw)).toBe(true);
    return out;
  }
  throw new Error('no level gives a frame that fits');
}

describe('velo npm ci with a remote', () => {
  it('a fresh store installs from what another machine published: 0 registry requests, the same node_modules', async () => {
    const a = await fx.project('dev');
    const first = await ci(a, fx.tmp(), remoteEnv('team1'));
    expect(first.code, first.stderr).toBe(0);
    const s1 = JSON.parse(first.stdout);
    expect(s1.remote).toMatchObject({ url: `s3://${s3.bucket}/team1/`, fromRemote: 0, warnings: [] });
    expect(s1.remote.published).toBe(s1.packages);
    expect((await listed('team1/keys/')).length).toBe(s1.packages);

    const b = await fx.project('dev');
    cpSync(join(a.dir, 'package-lock.json'), join(b.dir, 'package-lock.json'));
    await fx.registry.clearRequests();
    const second = await ci(b, fx.tmp(), remoteEnv('team1'));
    expect(second.code, second.stderr).toBe(0);
    const s2 = JSON.parse(second.stdout);
    expect(await fx.registry.requests()).toEqual([]);
    expect(s2).toMatchObject({ fetched: 0, remote: { fromRemote: s1.packages, published: 0, warnings: [] } });
    expect(nodeModules(b)).toEqual(nodeModules(a));
    expect(warnings(second.stderr)).toEqual([]);
    // the lockfile's bundle gave every key record in one GET (below: one GET per key without it)
    expect(await listed('team1/bundles/')).toHaveLength(1);

    // a bundle that is not one: one warning, the keys one by one, still no registry request
    const [bundle] = await listed('team1/bundles/');
    await client().put(bundle!.key, Buffer.from('{"v":1,"keys":[{"name":"x"}'));
    const c = await fx.project('dev');
    cpSync(join(a.dir, 'package-lock.json'), join(c.dir, 'package-lock.json'));
    await fx.registry.clearRequests();
    const third = await ci(c, fx.tmp(), remoteEnv('team1', 'ro'));
    expect(third.code, third.stderr).toBe(0);
    expect(await fx.registry.requests()).toEqual([]);
    expect(warnings(third.stderr)).toHaveLength(1);
    expect(warnings(third.stderr)[0]).toMatch(/bundle is not JSON/);
    expect(JSON.parse(third.stdout).remote.requests).toBe(s2.remote.requests + s1.packages);
    expect(nodeModules(c)).toEqual(nodeModules(a));

    // velo remote status sees what was published
    const st = await veloAsync(['remote', 'status', '--json'], { ...remoteEnv('team1'), VELO_HOME: fx.tmp() });
    expect(st.code, st.stderr).toBe(0);
    const status = JSON.parse(st.stdout);
    expect(status.remote.keys.count).toBe(s1.packages);
    expect(status.remote.packs.count).toBeGreaterThan(0);
    expect(status.totalBytes).toBeGreaterThan(0);
  });

  it('garbage in the remote never reaches node_modules: one warning, those packages from the registry', async () => {
    const a = await fx.project('basic');
    expect((await ci(a, fx.tmp(), remoteEnv('team2'))).code).toBe(0);
    const c = client();
    for (const o of await listed('team2/packs/')) await c.put(o.key, Buffer.alloc(o.size, 0x5a));
    const b = await fx.project('basic');
    cpSync(join(a.dir, 'package-lock.json'), join(b.dir, 'package-lock.json'));
    await fx.registry.clearRequests();
    const r = await ci(b, fx.tmp(), remoteEnv('team2', 'ro'));
    expect(r.code, r.stderr).toBe(0);
    expect(warnings(r.stderr)).toHaveLength(1);
    expect(warnings(r.stderr)[0]).toMatch(/not matching their digest/);
    expect((await fx.registry.requestsOfKind('tarball')).length).toBeGreaterThan(0);
    expect(nodeModules(b)).toEqual(nodeModules(a));
  });

  it('the fill writes through the native batch writer and from JavaScript alike (VELO_NO_NATIVE=1): a frame in a pack that decodes to other bytes keeps only its own package out, nothing else left in the store', async () => {
    // the default run below must be the native writer's (O_TMPFILE + linkat), the other the JavaScript one's
    expect(loadNative()?.writeObjects).toBeDefined();
    const a = await fx.project('dev');
    expect((await ci(a, fx.tmp(), remoteEnv('team7'))).code).toBe(0);
    // one frame of small files in a pack replaced by a valid frame of other bytes (one byte changed), of the same
    // stored length: it decodes, so only the hash can refuse it; the objects around it, read in the same GET, are fine
    const c = client();
    const frame = await frameToDamage('team7/');
    const packBytes = (await c.get(packObjectName('team7/', frame.pack)))!;
    const stored = packBytes.subarray(frame.offset, frame.offset + frame.length);
    stored.set(sameLengthFrame(stored));
    await c.put(packObjectName('team7/', frame.pack), packBytes);
    for (const noNative of [false, true]) {
      const b = await fx.project('dev');
      cpSync(join(a.dir, 'package-lock.json'), join(b.dir, 'package-lock.json'));
      await fx.registry.clearRequests();
      const home = fx.tmp();
      const r = await ci(b, home, { ...remoteEnv('team7', 'ro'), ...(noNative ? { VELO_NO_NATIVE: '1' } : {}) });
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout);
      expect(warnings(r.stderr)).toHaveLength(1);
      expect(warnings(r.stderr)[0]).toMatch(/1 item missing or not matching its digest/);
      // the damaged package(s) from the registry, the rest from the remote
      const tarballs = (await fx.registry.requestsOfKind('tarball')).length;
      expect(tarballs).toBeGreaterThan(0);
      expect(s.remote.fromRemote).toBeGreaterThan(0);
      expect(tarballs).toBeLessThan(s.packages);
      expect(nodeModules(b)).toEqual(nodeModules(a));
      // every object is what its name says, complete, read-only; no temporary file anywhere
      let objects = 0;
      for (const f of walkStoreDir(join(home, 'objects'))) {
        expect(f.malformed, f.path).toBe(false);
        expect(hashBuffer(readFileSync(f.path)), f.path).toBe(f.digest);
        expect(statSync(f.path).mode & 0o222).toBe(0);
        objects++;
      }
      expect(objects).toBeGreaterThan(s.packages);
      expect(readdirSync(join(home, 'tmp'))).toEqual([]);
    }
  });

  it('a remote that is down, or refuses the key: the install succeeds with one warning', async () => {
    const a = await fx.project('basic');
    const down = await ci(a, fx.tmp(), { ...remoteEnv('team3'), AWS_ENDPOINT_URL: await deadEndpoint() });
    expect(down.code, down.stderr).toBe(0);
    expect(warnings(down.stderr)).toHaveLength(1);
    expect(warnings(down.stderr)[0]).toMatch(/not used: .*ECONNREFUSED.*registry/);
    const reference = nodeModules(a);

    const b = await fx.project('basic');
    const wrong = await ci(b, fx.tmp(), remoteEnv('team3', 'wrong'));
    expect(wrong.code, wrong.stderr).toBe(0);
    expect(warnings(wrong.stderr)).toHaveLength(1);
    expect(warnings(wrong.stderr)[0]).toMatch(/access denied/);
    expect(nodeModules(b)).toEqual(reference);

    // the read-only key can read but not publish: one warning, nothing written
    const c = await fx.project('basic');
    const ro = await ci(c, fx.tmp(), remoteEnv('team3', 'ro'));
    expect(ro.code, ro.stderr).toBe(0);
    expect(warnings(ro.stderr)).toHaveLength(1);
    expect(warnings(ro.stderr)[0]).toMatch(/publishing stopped: PUT .*access denied/);
    expect(await listed('team3/')).toEqual([]);
  });

  it('objects upload while the install runs, keys only after it succeeded: a failed install publishes no key, and the next one sends no object again', async () => {
    // the scripts run after every package is fetched: the objects are on their way by then
    const spec = {
      name: 'early',
      packageJson: { name: 'early', version: '1.0.0', private: true, dependencies: { 'velo-fx-many-files': '^1.0.0', '@velo-fx/hello': '^1.0.0', 'velo-fx-script-fails': '^1.0.0' } },
    };
    const a = await fx.project(spec);
    const home = fx.tmp();
    const failed = await ci(a, home, remoteEnv('team6'));
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stdout + failed.stderr).toMatch(/velo-fx-script-fails@1\.0\.0 postinstall script failed/);
    expect(warnings(failed.stderr)).toEqual([]);
    expect(await listed('team6/keys/')).toEqual([]);
    const packs = (await listed('team6/packs/')).map((o) => o.key);
    expect(packs.length).toBeGreaterThan(0);

    // the same store succeeds without scripts: keys now, no object sent twice
    const ok = await ci(a, home, remoteEnv('team6'), ['--ignore-scripts']);
    expect(ok.code, ok.stderr).toBe(0);
    const s = JSON.parse(ok.stdout);
    expect(s.remote).toMatchObject({ published: s.packages, warnings: [] });
    expect((await listed('team6/packs/')).map((o) => o.key)).toEqual(packs);
    const keys = await listed('team6/keys/');
    expect(keys.length).toBe(s.packages);
    // only the keys, the lockfile's bundle and the project's record went up
    const records = [...(await listed('team6/bundles/')), ...(await listed('team6/projects/'))];
    expect(records).toHaveLength(2);
    expect(s.remote.uploadedBytes).toBe([...keys, ...records].reduce((n, o) => n + o.size, 0));

    // and what it published installs a fresh store without the registry
    const b = await fx.project(spec);
    cpSync(join(a.dir, 'package-lock.json'), join(b.dir, 'package-lock.json'));
    await fx.registry.clearRequests();
    const fresh = await ci(b, fx.tmp(), remoteEnv('team6', 'ro'), ['--ignore-scripts']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(JSON.parse(fresh.stdout)).toMatchObject({ fromProjectCache: true, remote: { project: true, warnings: [] } });
    expect(await fx.registry.requests()).toEqual([]);
    expect(nodeModules(b)).toEqual(nodeModules(a));
  });

  it('VELO_REMOTE_MODE=read and --no-remote never write', async () => {
    const a = await fx.project('basic');
    const r = await ci(a, fx.tmp(), { ...remoteEnv('team4'), VELO_REMOTE_MODE: 'read' });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).remote).toMatchObject({ mode: 'read', published: 0, warnings: [] });
    const b = await fx.project('basic');
    const n = await ci(b, fx.tmp(), remoteEnv('team4'), ['--no-remote']);
    expect(n.code, n.stderr).toBe(0);
    expect(JSON.parse(n.stdout).remote).toBeUndefined();
    expect(await listed('team4/')).toEqual([]);
    // and gc refuses in read mode (exit 16)
    const gc = await veloAsync(['remote', 'gc'], { ...remoteEnv('team4'), VELO_REMOTE_MODE: 'read', VELO_HOME: fx.tmp() });
    expect(gc.code).toBe(16);
  });

  it('velo remote gc keeps what recent keys reference and deletes the rest', async () => {
    const a = await fx.project('basic');
    expect((await ci(a, fx.tmp(), remoteEnv('team5'))).code).toBe(0);
    // an orphan pack nobody references (an interrupted publish)
    await client().put('team5/packs/' + 'ab'.repeat(32), Buffer.from('orphan'));
    const before = await listed('team5/');
    const env = { ...remoteEnv('team5'), VELO_HOME: fx.tmp() };
    // within the grace period nothing unreferenced goes
    const kept = JSON.parse((await veloAsync(['remote', 'gc', '--json'], env)).stdout);
    expect(kept).toMatchObject({ keysDeleted: 0, projectsKept: 1, projectsDeleted: 0, deleted: { packs: 0, objects: 0 } });
    // grace 0: the orphan goes, everything the keys reference stays
    const dry = JSON.parse((await veloAsync(['remote', 'gc', '--grace-hours', '0', '--dry-run', '--json'], env)).stdout);
    expect(dry).toMatchObject({ dryRun: true, deleted: { packs: 1, objects: 0 } });
    expect((await listed('team5/')).length).toBe(before.length);
    const swept = JSON.parse((await veloAsync(['remote', 'gc', '--grace-hours', '0', '--json'], env)).stdout);
    expect(swept).toMatchObject({ keysDeleted: 0, deleted: { packs: 1 } });
    expect((await listed('team5/')).map((o) => o.key)).not.toContain('team5/packs/' + 'ab'.repeat(32));
    // the remote still installs a fresh store
    const b = await fx.project('basic');
    cpSync(join(a.dir, 'package-lock.json'), join(b.dir, 'package-lock.json'));
    await fx.registry.clearRequests();
    expect((await ci(b, fx.tmp(), remoteEnv('team5', 'ro'))).code).toBe(0);
    expect(await fx.registry.requests()).toEqual([]);
    // keep-days 0: every key is old, then nothing is referenced
    const all = JSON.parse((await veloAsync(['remote', 'gc', '--keep-days', '0', '--grace-hours', '0', '--json'], env)).stdout);
    expect(all.keysDeleted).toBeGreaterThan(0);
    expect(all.projectsDeleted).toBe(1);
    expect(await listed('team5/')).toEqual([]);
  });
});
