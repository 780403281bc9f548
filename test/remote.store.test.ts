// The remote tier's store-to-store path against a real S3 server (SeaweedFS
// weed mini on loopback with SigV4 identities): publish from one store, fill
// another, and what happens when the remote is damaged, refuses or is down.
import { chmodSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Store } from '../src/store/store.js';
import { ingestDir } from '../src/store/addFilesFromDir.js';
import { getKey, setKey } from '../src/store/keys.js';
import { readTree } from '../src/store/trees.js';
import { materialize } from '../src/projection/materialize.js';
import { remoteSettings } from '../src/remote/remoteConfig.js';
import { Remote } from '../src/remote/remote.js';
import { fillFromRemote } from '../src/remote/fill.js';
import { Publisher, publishToRemote } from '../src/remote/publish.js';
import { ingestTarball } from '../src/npm/ingestTarball.js';
import { buildTarball } from './support/craftedTarballs.js';
import { decodeRemoteKey, HashedObjectEncoder, keyObjectName } from '../src/remote/remoteLayout.js';
import { S3Client } from '../src/remote/s3Client.js';
import { publishJobPool } from '../src/remote/remoteJobs.js';
import { availableParallelism } from 'node:os';
import { walkStoreDir } from '../src/store/walkStore.js';
import { readCounters } from '../src/store/counters.js';
import { hashBuffer } from '../src/store/hash.js';
import { describeDir, asObject } from './support/treeCompare.js';
import { deadEndpoint, useS3Server } from './support/s3Server.js';
import { tempDirs } from './support/tmp.js';

const tmp = tempDirs('velo-remote-');
const s3 = useS3Server();

function remoteFor(prefix: string, who: 'rw' | 'ro' | 'wrong' = 'rw', extra: NodeJS.ProcessEnv = {}): Remote {
  const settings = remoteSettings({ env: { ...s3.env(who), VELO_REMOTE: `s3://${s3.bucket}/${prefix}`, ...extra } })!;
  return new Remote(settings);
}

async function listAll(prefix: string): Promise<string[]> {
  return (await s3.list(prefix)).map((o) => o.key.slice(prefix.length)).sort();
}

/** A store with two "packages": many small files (packed), one big file (loose), an exec file, an empty file. */
async function seededStore(): Promise<{ store: Store; keys: string[]; dirs: string[] }> {
  const store = Store.open(join(tmp(), 'store'));
  const a = tmp();
  mkdirSync(join(a, 'lib'), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(a, 'lib', `f${i}.js`), `module.exports = ${i};\n`.repeat(i + 1));
  writeFileSync(join(a, 'bin.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(a, 'bin.sh'), 0o755);
  writeFileSync(join(a, 'empty'), '');
  const b = tmp();
  const big = randomBytes(3 * 1024 * 1024 + 5); // incompressible: stored on its own, not packed
  writeFileSync(join(b, 'big.bin'), big);
  writeFileSync(join(b, 'index.js'), 'module.exports = 0;\n'); // shared with nothing
  writeFileSync(join(b, 'f1.js'), 'module.exports = 1;\n'.repeat(2)); // same bytes as a/lib/f1.js
  const keys: string[] = [];
  for (const [i, dir] of [a, b].entries()) {
    const r = await ingestDir(store, dir, { threads: 1 });
    const key = `npm:sha512-test-${i}-${Math.random()}`;
    setKey(store, key, r.tree, { kind: 'npm', files: r.files, logicalBytes: r.bytes });
    keys.push(key);
  }
  return { store, keys, dirs: [a, b] };
}

describe('remote store tier (weed mini)', () => {
  it('publishes objects in packs, then keys carrying their trees; a fresh store fills from it with every byte checked', async () => {
    const { store, keys, dirs } = await seededStore();
    const remote = remoteFor('p1/');
    const order: string[] = [];
    const pub = await publishToRemote(store, remote, keys, ['npm'], { onPut: (name) => order.push(name.slice('p1/'.length).split('/')[0]!) });
    expect(remote.warnings()).toEqual([]);
    expect(pub.keys).toBe(2);
    expect(pub.packs).toBe(1); // 42 small objects in one PUT
    // keys are the last PUTs, after every pack, loose object and tree
    const firstKey = order.indexOf('keys');
    expect(order.slice(firstKey).every((k) => k === 'keys')).toBe(true);
    expect(order.slice(0, firstKey)).toEqual(expect.arrayContaining(['packs', 'objects']));
    // publishing is over: its encode workers are gone (they used to linger for the pool's idle delay,
    // keeping a finished velo npm ci alive for seconds)
    if (availableParallelism() > 1) expect(publishJobPool()?.warm).toBe(false);
    const listed = await listAll('p1/');
    expect(listed.filter((k) => k.startsWith('keys/'))).toHaveLength(2);
    expect(listed.filter((k) => k.startsWith('objects/'))).toHaveLength(1); // the 3 MiB file on its own
    // a package's small files travel compressed together in zstd frames (encoding 2)
    const keyA = decodeRemoteKey((await s3.client().get(keyObjectName('p1/', keys[0]!)))!, keys[0]!);
    const framed = [...keyA.locations.values()].filter((l) => l.enc === 2);
    expect(framed.length).toBeGreaterThan(30);
    expect(new Set(framed.map((l) => l.at)).size).toBe(framed.length);

    // publishing again uploads nothing
    const again = await publishToRemote(store, remoteFor('p1/'), keys, ['npm']);
    expect(again).toMatchObject({ keys: 0, objects: 0, packs: 0, bytes: 0, alreadyThere: 2 });

    const fresh = Store.open(join(tmp(), 'store'));
    const r2 = remoteFor('p1/');
    const filled = await fillFromRemote(fresh, r2, [...keys, 'npm:sha512-not-there'], ['npm']);
    expect(r2.warnings()).toEqual([]);
    expect([...filled.trees.keys()].sort()).toEqual([...keys].sort());
    for (const [i, key] of keys.entries()) {
      expect(getKey(fresh, key)).toBe(getKey(store, key));
      const parent = tmp();
      const out = join(parent, 'out');
      await materialize(fresh, getKey(fresh, key)!, out, { method: 'copy', within: parent });
      expect(asObject(describeDir(out))).toEqual(asObject(describeDir(dirs[i]!)));
    }
    // the objects were written by worker threads: the store's counters still say what is on disk
    const onDisk = [...walkStoreDir(join(fresh.home, 'objects'))];
    expect(readCounters(fresh)).toMatchObject({ objects: onDisk.length, object_bytes: onDisk.reduce((n, f) => n + statSync(f.path).size, 0) });
    store.close();
    fresh.close();
  });

  it('a remote object overwritten with garbage never enters the store: that key is left to the registry, with one warning', async () => {
    const { store, keys } = await seededStore();
    await publishToRemote(store, remoteFor('p2/'), keys, ['npm']);
    const rw = remoteFor('p2/').client;
    // overwrite every pack with garbage of the same length
    for await (const o of rw.list('p2/packs/')) await rw.put(o.key, Buffer.alloc(o.size, 0x41));
    const fresh = Store.open(join(tmp(), 'store'));
    const remote = remoteFor('p2/');
    const filled = await fillFromRemote(fresh, remote, keys, ['npm']);
    // the first package lives in the pack: not filled; the second has a small file in the pack too
    expect(filled.trees.size).toBe(0);
    const warnings = remote.warnings();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/not matching their digest/);
    for (const key of keys) expect(getKey(fresh, key)).toBeUndefined();
    // every object the fresh store holds is what its name says
    let seen = 0;
    for (const f of walkStoreDir(join(fresh.home, 'objects'))) {
      expect(hashBuffer(readFileSync(f.path))).toBe(f.digest);
      seen++;
    }
    expect(seen).toBeLessThan(3); // at most the empty file and the loose big object
    store.close();
    fresh.close();
  });

  it('a key whose tree was swapped for another is refused: one warning, nothing set', async () => {
    const { store, keys } = await seededStore();
    await publishToRemote(store, remoteFor('p6/'), keys, ['npm']);
    const rw = remoteFor('p6/').client;
    const [first, second] = (await s3.list('p6/keys/')).map((o) => o.key);
    const a = JSON.parse((await rw.get(first!))!.toString());
    const b = JSON.parse((await rw.get(second!))!.toString());
    await rw.put(first!, Buffer.from(JSON.stringify({ ...a, treeData: b.treeData }))); // still names its own digest
    const fresh = Store.open(join(tmp(), 'store'));
    const remote = remoteFor('p6/');
    const filled = await fillFromRemote(fresh, remote, [a.name], ['npm']);
    expect(filled.trees.size).toBe(0);
    expect(getKey(fresh, a.name)).toBeUndefined();
    expect(remote.warnings()).toHaveLength(1);
    expect(remote.warnings()[0]).toMatch(/does not match its digest/);
    store.close();
    fresh.close();
  });

  it('the read-only key cannot publish: one warning, nothing written; VELO_REMOTE_MODE=read never sends a write', async () => {
    const { store, keys } = await seededStore();
    const ro = remoteFor('p3/', 'ro');
    const res = await publishToRemote(store, ro, keys, ['npm']);
    expect(res.keys).toBe(0);
    const w = ro.warnings();
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/publishing stopped: PUT .*access denied/);
    expect(await listAll('p3/')).toEqual([]);

    const readMode = remoteFor('p3/', 'rw', { VELO_REMOTE_MODE: 'read' });
    const puts: string[] = [];
    const r2 = await publishToRemote(store, readMode, keys, ['npm'], { onPut: (n) => puts.push(n) });
    expect(r2.keys).toBe(0);
    expect(readMode.client.stats.requests).toBe(0);
    expect(puts).toEqual([]);
    expect(await listAll('p3/')).toEqual([]);
    store.close();
  });

  it('many keys to look up on a remote that has few: its key list answers for the absent ones (not a GET each), the others fill as usual', async () => {
    const { store, keys, dirs } = await seededStore();
    await publishToRemote(store, remoteFor('p9/'), keys, ['npm']);
    const unknown = Array.from({ length: 300 }, (_, i) => `npm:sha512-nobody-published-${i}`);
    for (const who of ['rw', 'ro'] as const) {
      const fresh = Store.open(join(tmp(), 'store'));
      const remote = remoteFor('p9/', who);
      const r = await fillFromRemote(fresh, remote, [...unknown, ...keys], ['npm']);
      expect(remote.warnings()).toEqual([]);
      expect([...r.trees.keys()].sort()).toEqual([...keys].sort());
      expect(r.absent.sort()).toEqual([...unknown].sort());
      // one listing, then the two keys and their objects: not a GET per key
      expect(r.requests).toBeLessThan(10);
      for (const [i, key] of keys.entries()) {
        expect(getKey(fresh, key)).toBe(getKey(store, key));
        const parent = tmp();
        await materialize(fresh, getKey(fresh, key)!, join(parent, 'out'), { method: 'copy', within: parent });
        expect(asObject(describeDir(join(parent, 'out')))).toEqual(asObject(describeDir(dirs[i]!)));
      }
      fresh.close();
    }
    // a server that is down: one warning, nothing filled, no request after the listing's
    const fresh = Store.open(join(tmp(), 'store'));
    const down = remoteFor('p9/', 'rw', { AWS_ENDPOINT_URL: await deadEndpoint() });
    expect((await fillFromRemote(fresh, down, [...unknown, ...keys], ['npm'])).trees.size).toBe(0);
    expect(down.warnings()).toHaveLength(1);
    expect(down.warnings()[0]).toMatch(/not used: .*ECONNREFUSED/);
    expect(down.client.stats.requests).toBe(1);
    fresh.close();
    store.close();
  });

  it('a wrong secret or a server that is down: one warning and nothing filled, quickly', async () => {
    const { store, keys } = await seededStore();
    await publishToRemote(store, remoteFor('p4/'), keys, ['npm']);
    const fresh = Store.open(join(tmp(), 'store'));
    const wrong = remoteFor('p4/', 'wrong');
    expect((await fillFromRemote(fresh, wrong, keys, ['npm'])).trees.size).toBe(0);
    expect(wrong.warnings()).toHaveLength(1);
    expect(wrong.warnings()[0]).toMatch(/not used: GET .*access denied \(SignatureDoesNotMatch\)/);
    // the first refusal stops every request not yet sent (those in flight at the time still finish)
    expect(wrong.client.stats.requests).toBeLessThanOrEqual(keys.length);
    const down = remoteFor('p4/', 'rw', { AWS_ENDPOINT_URL: await deadEndpoint() });
    const t0 = performance.now();
    expect((await fillFromRemote(fresh, down, keys, ['npm'])).trees.size).toBe(0);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(down.warnings()).toHaveLength(1);
    expect(down.warnings()[0]).toMatch(/not used: GET .*ECONNREFUSED/);
    store.close();
    fresh.close();
  });

  it('an interrupted publish writes no key, and the next one resumes without uploading a pack twice', async () => {
    const { store, keys } = await seededStore();
    const first = remoteFor('p5/');
    const puts: string[] = [];
    let stopAfterPack = true;
    // the "interruption": the S3 server refuses every PUT after the first pack (as a network drop would)
    const client = first.client as S3Client;
    const realPut = client.put.bind(client);
    client.put = async (name, body, type) => {
      if (!stopAfterPack || puts.length === 0) {
        puts.push(name);
        return realPut(name, body, type);
      }
      return remoteFor('p5/', 'ro').client.put(name, body, type); // a real 403 from the server
    };
    await publishToRemote(store, first, keys, ['npm']);
    expect(first.warnings()[0]).toMatch(/publishing stopped/);
    stopAfterPack = false;
    const after1 = await listAll('p5/');
    expect(after1.filter((k) => k.startsWith('keys/'))).toEqual([]);
    const uploaded1 = after1.filter((k) => !k.startsWith('keys/'));
    expect(uploaded1.length).toBeGreaterThan(0);

    const second = remoteFor('p5/');
    const secondPuts: string[] = [];
    const res = await publishToRemote(store, second, keys, ['npm'], { onPut: (n) => secondPuts.push(n.slice(3)) });
    expect(second.warnings()).toEqual([]);
    expect(res.keys).toBe(2);
    for (const done of uploaded1) expect(secondPuts).not.toContain(done);
    store.close();
  });

  it('objects a tarball ingest encoded as it hashed them are published as they are, never read back; a fresh store checks every byte, and a damaged frame is refused', async () => {
    const store = Store.open(join(tmp(), 'store'));
    const small = Array.from({ length: 60 }, (_, i) => ({ path: `package/lib/f${i}.js`, content: `exports.v${i} = ${JSON.stringify('x'.repeat(i * 37))};\n` }));
    // larger than the ingest keeps in memory (SMALL_FILE_LIMIT): streamed to its file, and still encoded from the bytes hashed
    const streamed = Buffer.from(Array.from({ length: 900_000 }, (_, i) => `line ${i % 5000}\n`).join(''));
    expect(streamed.length).toBeGreaterThan(8 * 1024 * 1024);
    const noise = randomBytes(200_000); // incompressible: stored as it is (enc 0)
    const entries = [
      { path: 'package/package.json', content: '{"name":"enc","version":"1.0.0","bin":"bin/cli.js"}' },
      ...small,
      { path: 'package/big.txt', content: streamed },
      { path: 'package/noise.bin', content: noise },
      { path: 'package/bin/cli.js', content: '#!/usr/bin/env node\r\nconsole.log(1)\r\n' }, // its shebang is fixed before hashing
      { path: 'package/empty', content: '' },
    ];
    const r = await ingestTarball(store, Readable.from([buildTarball(entries)]), { pkgid: 'enc@1.0.0', bins: new Set(['bin/cli.js']), encode: true });
    const files = readTree(store, r.tree).entries.filter((e) => e.kind === 'file');
    const nonEmpty = new Set(files.filter((e) => e.size > 0).map((e) => e.digest));
    expect(new Set(r.encoded!.digests)).toEqual(nonEmpty);
    const key = `npm:sha512-encoded-${Math.random()}`;
    setKey(store, key, r.tree, { kind: 'npm', files: r.files, logicalBytes: r.bytes });
    // nothing is read back from the store: the publish goes through with every object file gone
    // (the path that reads them would find them missing and skip the key)
    for (const f of walkStoreDir(join(store.home, 'objects'))) rmSync(f.path);
    const remote = remoteFor('p7/');
    const publisher = new Publisher(store, remote);
    publisher.offer(key, r.tree, r.encoded);
    const pub = await publisher.finish([key], ['npm']);
    expect(remote.warnings()).toEqual([]);
    expect(pub).toMatchObject({ keys: 1, skipped: 0 });
    const record = decodeRemoteKey((await s3.client().get(keyObjectName('p7/', key)))!, key);
    const encs = new Set([...record.locations.values()].map((l) => l.enc));
    expect(encs).toEqual(new Set([0, 1, 2])); // noise as it is, big.txt alone, the small files in frames

    const fresh = Store.open(join(tmp(), 'store'));
    const filled = await fillFromRemote(fresh, remoteFor('p7/'), [key], ['npm']);
    expect(filled.trees.get(key)).toBe(r.tree);
    const parent = tmp();
    const out = join(parent, 'out');
    await materialize(fresh, r.tree, out, { method: 'copy', within: parent });
    expect(readFileSync(join(out, 'big.txt')).equals(streamed)).toBe(true);
    expect(readFileSync(join(out, 'noise.bin')).equals(noise)).toBe(true);
    expect(readFileSync(join(out, 'lib', 'f59.js'), 'utf8')).toBe(small[59]!.content);
    expect(readFileSync(join(out, 'bin', 'cli.js'), 'utf8')).toBe('#!/usr/bin/env node\nconsole.log(1)\r\n');

    // one byte changed inside a frame: a fresh machine refuses the key, and stores nothing wrong
    const framed = [...record.locations.values()].find((l) => l.enc === 2)!;
    const packName = `p7/packs/${framed.pack}`;
    const pack = (await s3.client().get(packName))!;
    pack[framed.offset + (framed.length >> 1)] ^= 0xff;
    await remoteFor('p7/').client.put(packName, pack);
    const third = Store.open(join(tmp(), 'store'));
    const r3 = remoteFor('p7/');
    const refused = await fillFromRemote(third, r3, [key], ['npm']);
    expect(refused.trees.size).toBe(0);
    expect(r3.warnings()).toEqual([expect.stringMatching(/not matching their digest/)]);
    for (const f of walkStoreDir(join(third.home, 'objects'))) expect(hashBuffer(readFileSync(f.path))).toBe(f.digest);
    store.close();
    fresh.close();
    third.close();
  });

  it('objects of 16 MiB and more are read, hashed and compressed in chunks: compressible ones zstd, the others as they are, one edited in place never published', async () => {
    const store = Store.open(join(tmp(), 'store'));
    const dirs: string[] = [];
    const keys: string[] = [];
    const text = Buffer.from('module.exports = function large() { return 42; };\n'.repeat(((17 << 20) >> 5) + 3));
    for (const [i, content] of [text, randomBytes((16 << 20) + 7), Buffer.concat([text, Buffer.from('edited later')])].entries()) {
      const dir = tmp();
      writeFileSync(join(dir, 'large.bin'), content);
      writeFileSync(join(dir, 'small.js'), `module.exports = ${i};\n`);
      const r = await ingestDir(store, dir, { threads: 1 });
      const key = `npm:sha512-large-${i}-${Math.random()}`;
      setKey(store, key, r.tree, { kind: 'npm', files: r.files, logicalBytes: r.bytes });
      dirs.push(dir);
      keys.push(key);
    }
    // the third package's large object edited in place in the store, same size: its key is not published
    const edited = readTree(store, getKey(store, keys[2]!)!).entries.find((e) => e.kind === 'file' && e.path === 'large.bin')!;
    if (edited.kind !== 'file') throw new Error('unreachable');
    const path = store.objectPath(edited.digest, edited.exec);
    chmodSync(path, 0o644);
    const bytes = readFileSync(path);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(path, bytes);
    const remote = remoteFor('p10/');
    const pub = await publishToRemote(store, remote, keys, ['npm']);
    expect(remote.warnings()).toEqual([]);
    expect(pub).toMatchObject({ keys: 2, skipped: 1 });
    // the noise went up as it is (on its own), the text compressed (so small it went into a pack)
    expect((await s3.list('p10/objects/')).map((o) => o.size)).toEqual([(16 << 20) + 7]);
    expect((await s3.list('p10/packs/')).reduce((n, o) => n + o.size, 0)).toBeLessThan(text.length / 100);
    const fresh = Store.open(join(tmp(), 'store'));
    const r2 = remoteFor('p10/');
    const filled = await fillFromRemote(fresh, r2, keys, ['npm']);
    expect(r2.warnings()).toEqual([]);
    expect([...filled.trees.keys()].sort()).toEqual(keys.slice(0, 2).sort());
    for (const [i, key] of keys.slice(0, 2).entries()) {
      const parent = tmp();
      await materialize(fresh, getKey(fresh, key)!, join(parent, 'out'), { method: 'copy', within: parent });
      expect(asObject(describeDir(join(parent, 'out')))).toEqual(asObject(describeDir(dirs[i]!)));
    }
    store.close();
    fresh.close();
  });

  it('encoded objects waiting for slow uploads are bounded: past 64 MiB, a package is read from the store when its turn comes', async () => {
    const store = Store.open(join(tmp(), 'store'));
    const keys: string[] = [];
    const offers: { key: string; tree: string; encoded: ReturnType<HashedObjectEncoder['finish']> }[] = [];
    for (let i = 0; i < 8; i++) {
      const dir = tmp();
      writeFileSync(join(dir, 'blob.bin'), randomBytes(10 << 20)); // incompressible: 10 MiB encoded each
      const r = await ingestDir(store, dir, { threads: 1 });
      const key = `npm:sha512-backlog-${i}-${Math.random()}`;
      setKey(store, key, r.tree, { kind: 'npm', files: r.files, logicalBytes: r.bytes });
      const encoder = new HashedObjectEncoder();
      for (const e of readTree(store, r.tree).entries) if (e.kind === 'file') encoder.add(e.digest, readFileSync(join(dir, e.path)));
      offers.push({ key, tree: r.tree, encoded: encoder.finish() });
      keys.push(key);
    }
    // the store's object files gone: a package the publisher did not take encoded cannot be published
    for (const f of walkStoreDir(join(store.home, 'objects'))) rmSync(f.path);
    const remote = remoteFor('p8/');
    const client = remote.client as S3Client;
    const realPut = client.put.bind(client);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    client.put = async (name, body, type) => {
      await gate; // uploads stalled until every offer is in
      return realPut(name, body, type);
    };
    const publisher = new Publisher(store, remote);
    for (const o of offers) publisher.offer(o.key, o.tree, o.encoded, 'npm');
    open();
    const pub = await publisher.finish(keys, ['npm']);
    // 6 × 10 MiB fit under the bound; the last two were to be read from the store, which no longer has them
    expect(pub.keys).toBe(6);
    expect(pub.skipped).toBe(2);
    store.close();
  });
});
