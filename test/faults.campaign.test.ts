// The fault campaign's short version (bench/faults/campaign.mjs; the full one
// is `node bench/faults/run.mjs`): kill -9 during concurrent installs, gc
// killed mid-sweep, index damage (truncated, garbage, WAL), an object
// tampered in place, ENOSPC on a tmpfs, the mount server killed under a
// reader. Every case must PASS (SKIP only where the machine cannot stage it).
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script shared with bench/, no type declarations
import { CASES, runCampaign } from '../bench/faults/campaign.mjs';

interface CaseResult {
  name: string;
  status: 'PASS' | 'FAIL' | 'SKIP';
  detail: string;
  seed: number;
}

const seed = Number(process.env.VELO_FAULTS_SEED ?? Date.now() % 1e9);

describe(`fault campaign, short (seed ${seed})`, () => {
  for (const c of CASES as { name: string }[]) {
    it(c.name, async () => {
      const [r] = (await runCampaign({ short: true, seed, only: c.name })) as CaseResult[];
      expect(r, `no result for ${c.name}`).toBeDefined();
      expect(r!.status, r!.detail).not.toBe('FAIL');
      if (process.getuid?.() === 0) expect(r!.status, r!.detail).toBe('PASS');
    }, 240_000);
  }
});
