// velo npm ci --projection mount with a remote: the mount fetches each
// object from the remote on first open instead of velo downloading the
// whole tree first (a real SeaweedFS weed mini behind a counting loopback
// proxy, real FUSE, real npm registry). Listing costs no object download,
// reading one package downloads only its files, a garbage object is EIO and
// never stored, and a later linked install completes the store.
import { execFileSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PreparedProject } from './support/npmProject.js';
import { useRegistryProjects } from './support/registryProjects.js';
import { veloAsync } from './support/runVelo.js';
import { useS3Server } from './support/s3Server.js';
import { startCountingProxy } from '../bench/lib/countingProxy.mjs';
import { fuseUnavailableReason } from '../src/mount/mount.js';
import { decodeRemoteKey, keyObjectName } from '../src/remote/remoteLayout.js';

const fx = useRegistryProjects('velo-remote-lazy-');
const s3 = useS3Server();
let proxy: Awaited<ReturnType<typeof startCountingProxy>>;
const homes: string[] = [];
/** bytes of packs and lone objects downloaded through the proxy since its last reset */
const remoteObjectBytes = async (): Promise<number> => {
  const c = await proxy.counts();
  return c.byKind.packs + c.byKind.objects;
};

beforeAll(async () => {
  proxy = await startCountingProxy(s3.endpoint);
});
afterAll(async () => {
  for (const home of homes) await veloAsync(['umount', '--all'], { VELO_HOME: home }).catch(() => undefined);
  await proxy?.stop();
});

/** What a user sees of a directory without reading a file: kind, exec bit, size, link target. */
function listing(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (r === '.package-lock.json') continue;
      const st = lstatSync(join(root, r));
      if (st.isDirectory()) {
        out[r] = 'dir';
        walk(r);
      } else if (st.isSymbolicLink()) out[r] = `-> ${readlinkSync(join(root, r))}`;
      else out[r] = `file ${st.mode & 0o111 ? 'x' : '-'} ${st.size}`;
    }
  };
  walk('');
  return out;
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(p);
  }
  return out.sort();
}

const env = (home: string, prefix: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  ...s3.env('rw'),
  AWS_ENDPOINT_URL: proxy.endpoint,
  VELO_REMOTE: `s3://${s3.bucket}/${prefix}`,
  VELO_HOME: home,
  ...extra,
});
const ci = (p: PreparedProject, e: NodeJS.ProcessEnv, args: string[] = []) => veloAsync(['npm', 'ci', '--json', ...args], { ...p.env, ...e }, p.dir);
const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('velo: warning:'));

/** The mount of dest's directory in home: its server log and the fetcher's stats. */
function mountOf(home: string): { log: string; stats: { objects: number; bytes: number; failed: number; bytesIn: number; prefetched: number } } {
  const [id] = readdirSync(join(home, 'mounts')).filter((d) => existsSync(join(home, 'mounts', d, 'server.json')));
  const dir = join(home, 'mounts', id!);
  const statsPath = join(dir, 'fetch-stats.json');
  return {
    log: readFileSync(join(dir, 'server.log'), 'utf8'),
    stats: existsSync(statsPath) ? JSON.parse(readFileSync(statsPath, 'utf8')) : { objects: 0, bytes: 0, failed: 0, bytesIn: 0, prefetched: 0 },
  };
}

/** pids of object fetchers serving mounts of this store */
function fetchersOf(home: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return argv[1]?.endsWith('lazyFetcher.js') === true && argv.some((a) => a.startsWith(home));
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function settledStats(home: string): Promise<ReturnType<typeof mountOf>['stats']> {
  await new Promise((r) => setTimeout(r, 600)); // the fetcher writes its stats 200 ms after a fetch
  return mountOf(home).stats;
}

describe.skipIf(fuseUnavailableReason() !== undefined)('velo npm ci --projection mount with a remote: objects fetched on first open', () => {
  it.each([
    ['laid out from the project record another machine published', 'lazy1', true, true],
    // another .npmrc: other install inputs, so no project record; the lockfile is planned here
    ['planned from the lockfile (no project record for these inputs)', 'lazy1b', false, true],
    ['VELO_LAZY_AHEAD=0: only what is opened', 'lazy1c', true, false],
  ])('lists without downloading, reads one package downloading only it and what it requires, completes on a linked install: %s', async (_, prefix, fromRecord, ahead) => {
    // another machine installs and publishes
    const a = await fx.project('basic');
    const first = await ci(a, env(fx.tmp(), prefix));
    expect(first.code, first.stderr).toBe(0);
    const packed = (await s3.list(`${prefix}/packs/`)).reduce((n, o) => n + o.size, 0) + (await s3.list(`${prefix}/objects/`)).reduce((n, o) => n + o.size, 0);
    expect(packed).toBeGreaterThan(0);
    expect(await s3.list(`${prefix}/projects/`)).toHaveLength(1);

    // a fresh machine mounts: keys only, no object downloaded, not one registry request
    const b = await fx.project('basic');
    cpSync(join(a.dir, 'package-lock.json'), join(b.dir, 'package-lock.json'));
    if (!fromRecord) appendFileSync(join(b.dir, '.npmrc'), 'save-exact=true\n');
    const home = fx.tmp();
    homes.push(home);
    await fx.registry.clearRequests();
    await proxy.reset();
    const r = await ci(b, env(home, prefix, ahead ? {} : { VELO_LAZY_AHEAD: '0' }), ['--projection', 'mount']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.projection).toBe('mount');
    expect(summary).toMatchObject({ fetched: 0, fromProjectCache: fromRecord, remote: { fromRemote: summary.packages, project: fromRecord, warnings: [] } });
    expect(summary.remote.lazyObjects).toBeGreaterThan(0);
    expect(await fx.registry.requests()).toEqual([]);
    expect(await remoteObjectBytes()).toBe(0);

    expect(fetchersOf(home)).toHaveLength(1);

    // listing and stat never fetch
    expect(listing(join(b.dir, 'node_modules'))).toEqual(listing(join(a.dir, 'node_modules')));
    expect(await remoteObjectBytes()).toBe(0);
    expect((await settledStats(home)).objects).toBe(0);

    // a store with the mount's objects still in the remote is not a damaged store
    const v1 = await veloAsync(['verify', '--json'], { VELO_HOME: home });
    expect(v1.code, v1.stdout + v1.stderr).toBe(0);
    expect(JSON.parse(v1.stdout)).toMatchObject({ problems: [] });

    // what the remote holds for a package (its objects; a frame of small files counted once), from its key record
    const lock = JSON.parse(readFileSync(join(a.dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { integrity: string }> };
    const remoteOf = async (location: string) => {
      const keyName = `npm:${lock.packages[location]!.integrity}`;
      const record = decodeRemoteKey((await s3.client().get(keyObjectName(`${prefix}/`, keyName)))!, keyName);
      const ranges = new Map([...record.locations.values()].map((l) => [`${l.pack} ${l.offset}`, l.length]));
      return { digests: new Set(record.locations.keys()), bytes: [...ranges.values()].reduce((n, l) => n + l, 0) };
    };
    // @velo-fx/hello requires velo-fx-leaf (and nothing else): opening hello takes leaf along
    const hello = await remoteOf('node_modules/@velo-fx/hello');
    const leaf = await remoteOf('node_modules/velo-fx-leaf');
    const storedDigests = () => new Set(filesUnder(join(home, 'objects')).map((f) => f.slice(join(home, 'objects').length + 1).replace('/', '').replace(/x$/, '')));

    // what the install itself put in the store (the empty file, the hidden lockfile): not downloads
    const before = storedDigests();

    // many readers of one file at once: one download of it (which brings the package's other files in that pack range along)
    const one = join(b.dir, 'node_modules', '@velo-fx', 'hello', 'package.json');
    const copies = await Promise.all(Array.from({ length: 8 }, () => readFile(one)));
    for (const c of copies) expect(c.equals(readFileSync(join(a.dir, 'node_modules', '@velo-fx', 'hello', 'package.json')))).toBe(true);
    const afterOne = await settledStats(home);
    expect(afterOne.failed).toBe(0);
    expect(afterOne.objects).toBeGreaterThanOrEqual(1);

    // reading one package gives its bytes and downloads only it and what it requires: the rest of
    // hello and velo-fx-leaf (fetched ahead, a few GETs at a time), nothing of the other packages
    const pkg = join('node_modules', '@velo-fx', 'hello');
    const files = filesUnder(join(a.dir, pkg)).map((f) => f.slice(a.dir.length + 1));
    for (const f of files) expect(readFileSync(join(b.dir, f)).equals(readFileSync(join(a.dir, f))), f).toBe(true);
    const stats = await settledStats(home);
    expect(stats.failed).toBe(0);
    const stored = storedDigests();
    if (ahead) {
      expect(stats.prefetched).toBeGreaterThan(0);
      for (const d of leaf.digests) expect(stored.has(d), `velo-fx-leaf's ${d} fetched ahead`).toBe(true);
    } else {
      expect(stats.prefetched).toBe(0);
      for (const d of leaf.digests) if (!hello.digests.has(d)) expect(stored.has(d), `velo-fx-leaf's ${d} not fetched`).toBe(false);
    }
    for (const d of stored) if (!before.has(d)) expect(hello.digests.has(d) || leaf.digests.has(d), `${d} is hello's or leaf's`).toBe(true);
    const downloaded = await remoteObjectBytes();
    expect(downloaded).toBeGreaterThan(0);
    expect(downloaded).toBeLessThanOrEqual(hello.bytes + leaf.bytes);
    expect(downloaded).toBeLessThan(packed / 4);

    // Node loads it from the mount
    const out = execFileSync(process.execPath, ['-e', "console.log(typeof require('@velo-fx/hello'))"], { cwd: b.dir, encoding: 'utf8' });
    expect(out.trim()).not.toBe('undefined');

    // a linked install of the same lockfile completes the store from the remote: still no registry request
    await fx.registry.clearRequests();
    const linked = await ci(b, env(home, prefix), ['--projection', 'link']);
    expect(linked.code, linked.stderr).toBe(0);
    expect(JSON.parse(linked.stdout)).toMatchObject({ fetched: 0 });
    expect(await fx.registry.requests()).toEqual([]);
    expect(lstatSync(join(b.dir, 'node_modules')).dev).toBe(lstatSync(b.dir).dev);
    const v2 = await veloAsync(['verify', '--json'], { VELO_HOME: home });
    expect(v2.code, v2.stdout + v2.stderr).toBe(0);
    expect(JSON.parse(v2.stdout)).toMatchObject({ problems: [] });
    for (const f of filesUnder(join(a.dir, 'node_modules')).map((x) => x.slice(a.dir.length + 1))) {
      if (f.endsWith('.package-lock.json')) continue;
      expect(readFileSync(join(b.dir, f)).equals(readFileSync(join(a.dir, f))), f).toBe(true);
    }
    // the mount went, and its fetcher with it; gc drops the lazy record: nothing it names is missing now
    await new Promise((r) => setTimeout(r, 1000));
    expect(fetchersOf(home)).toEqual([]);
    expect(readdirSync(join(home, 'remote', 'lazy'))).toHaveLength(1);
    const gc = await veloAsync(['gc'], { VELO_HOME: home });
    expect(gc.code, gc.stderr).toBe(0);
    expect(readdirSync(join(home, 'remote', 'lazy'))).toEqual([]);
  });

  it('a garbage object in the remote: EIO for that file, one log line, never stored', async () => {
    const a = await fx.project('basic');
    expect((await ci(a, env(fx.tmp(), 'lazy2'))).code).toBe(0);
    const c = s3.client();
    for (const o of await s3.list('lazy2/packs/')) await c.put(o.key, Buffer.alloc(o.size, 0x5a));

    const b = await fx.project('basic');
    cpSync(join(a.dir, 'package-lock.json'), join(b.dir, 'package-lock.json'));
    const home = fx.tmp();
    homes.push(home);
    const r = await ci(b, env(home, 'lazy2', { VELO_REMOTE_MODE: 'read' }), ['--projection', 'mount']);
    expect(r.code, r.stderr).toBe(0);
    expect(warnings(r.stderr)).toEqual([]); // the keys and trees are intact: only objects are garbage

    const rel = join('node_modules', '@velo-fx', 'hello', 'package.json');
    let err: NodeJS.ErrnoException | undefined;
    try {
      readFileSync(join(b.dir, rel));
    } catch (e) {
      err = e as NodeJS.ErrnoException;
    }
    expect(err?.code).toBe('EIO');
    const m = mountOf(home);
    expect(m.log).toMatch(/fetcher: cannot fetch .*does not match its digest/);
    expect((await settledStats(home)).failed).toBeGreaterThan(0);
    // nothing of the garbage entered the store
    const v = await veloAsync(['verify', '--json'], { VELO_HOME: home });
    expect(JSON.parse(v.stdout)).toMatchObject({ problems: [] });
    const good = readFileSync(join(a.dir, rel));
    expect(existsSync(join(home, 'objects'))).toBe(true);
    const stored = execFileSync('find', [join(home, 'objects'), '-type', 'f', '-size', `${good.length}c`], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const s of stored) expect(readFileSync(s).equals(Buffer.alloc(good.length, 0x5a))).toBe(false);
  });
});
