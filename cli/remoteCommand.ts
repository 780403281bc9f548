/**
 * velo remote status|gc — the shared store on S3 (docs/REMOTE.md).
 */
import { VeloError } from '../src/errors.js';
import { flag, parse, str } from './args.js';
import { config } from './context.js';
import { openStore } from './storeContext.js';
import { openConfiguredRemote } from './remoteContext.js';
import { formatBytes, json, out, type Io } from './io.js';

const USAGE = `Usage: velo remote status [--json] [--remote URL]
       velo remote gc [--keep-days N] [--grace-hours H] [--dry-run] [--json] [--remote URL]

The shared store on S3 (see docs/REMOTE.md). The remote is --remote URL,
else VELO_REMOTE, else "remote" in velo.json or ~/.config/velo/config.json
(s3://bucket/prefix). Credentials, region and endpoint come from the AWS
environment and files: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE, ~/.aws/.

  status            what the remote holds (keys with their trees, lockfile bundles,
                    project records, packs, loose objects: counts and bytes) and what
                    this store has published there
  gc                delete the keys, bundles and project records written more than
                    --keep-days ago (default 30),
                    then every pack and object no remaining key references
                    and older than --grace-hours (default 48: a publish in flight
                    keeps its uploads)
  --dry-run         gc: report what would be deleted, delete nothing
  --json            print JSON on stdout

Exit codes: 0 done, 2 usage, 12 the remote refused or could not be reached,
16 gc with VELO_REMOTE_MODE=read.`;

export async function run(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    out(io, USAGE);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'status' && sub !== 'gc') throw new VeloError('USAGE', `unknown remote command "${sub}"\n\n${USAGE}`);
  const p = parse(
    rest,
    {
      json: { type: 'boolean' },
      remote: { type: 'string' },
      'keep-days': { type: 'string' },
      'grace-hours': { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
    USAGE,
  );
  if (p.help) return out(io, USAGE), 0;
  const cfg = config(io);
  const remote = await openConfiguredRemote(io, cfg, str(p, 'remote'));
  if (!remote) throw new VeloError('USAGE', 'no remote configured: set VELO_REMOTE=s3://bucket/prefix or pass --remote URL');
  if (sub === 'status') {
    const { remoteStatus, REMOTE_AREAS } = await import('../src/remote/remoteStatus.js');
    const store = openStore(io);
    try {
      const s = await remoteStatus(store, remote);
      if (flag(p, 'json')) json(io, s);
      else {
        out(io, `remote ${s.url} at ${s.endpoint} (${s.mode === 'read' ? 'read only' : 'read-write'}): ${formatBytes(s.totalBytes)}`);
        for (const a of REMOTE_AREAS) out(io, `  ${a.padEnd(8)} ${String(s.remote[a].count).padStart(8)}  ${formatBytes(s.remote[a].bytes)}`);
        const mine = s.publishedByThisStore;
        out(io, `published from this store: ${mine.keys} keys, ${mine.objects} objects`);
      }
    } finally {
      store.close();
    }
    return 0;
  }
  const number = (name: string, fallback: number): number => {
    const raw = str(p, name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new VeloError('USAGE', `--${name} needs a number >= 0 (got ${raw})`);
    return n;
  };
  const { remoteGc } = await import('../src/remote/remoteGc.js');
  const r = await remoteGc(remote, { keepDays: number('keep-days', 30), graceMs: number('grace-hours', 48) * 3600_000, dryRun: flag(p, 'dry-run') });
  if (flag(p, 'json')) json(io, r);
  else {
    const verb = r.dryRun ? 'would delete' : 'deleted';
    out(
      io,
      `${verb} ${r.keysDeleted} keys, ${r.bundlesDeleted} bundles, ${r.projectsDeleted} project records, ${r.deleted.packs} packs, ${r.deleted.objects} objects (${formatBytes(r.deleted.bytes)}); ` +
        `kept ${r.keysKept} keys, ${r.bundlesKept} bundles, ${r.projectsKept} project records, ${r.kept.packs} packs, ${r.kept.objects} objects (${formatBytes(r.kept.bytes)})`,
    );
  }
  return 0;
}
