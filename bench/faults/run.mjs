#!/usr/bin/env node
// The fault campaign from a shell: one PASS/FAIL/SKIP line per case, exit 1
// when any case failed. Build first (node node_modules/typescript/bin/tsc -p tsconfig.json).
//
//   node bench/faults/run.mjs [--short] [--seed N] [--only <name part>]
//
// Root is needed for the ENOSPC case (it mounts a tmpfs), /dev/fuse and the
// native addon for the mount case; without them those cases SKIP.
import { runCampaign } from './campaign.mjs';

const argv = process.argv.slice(2);
const value = (flag) => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write('Usage: node bench/faults/run.mjs [--short] [--seed N] [--only <name part>]\n');
  process.exit(0);
}
const seed = value('--seed') !== undefined ? Number(value('--seed')) : Date.now() % 1e9;
process.stdout.write(`fault campaign (seed ${seed}${argv.includes('--short') ? ', short' : ''})\n`);
const results = await runCampaign({
  short: argv.includes('--short'),
  seed,
  only: value('--only'),
  onResult: (r) => process.stdout.write(`${r.status.padEnd(4)}  ${r.name}  (${r.ms} ms)  ${r.detail.split('\n')[0]}\n`),
});
const failed = results.filter((r) => r.status === 'FAIL').length;
process.stdout.write(`${results.length} case(s): ${results.length - failed - results.filter((r) => r.status === 'SKIP').length} passed, ${failed} failed, ${results.filter((r) => r.status === 'SKIP').length} skipped\n`);
process.exit(failed > 0 ? 1 : 0);
