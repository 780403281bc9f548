import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/paths.js';

// A fresh Node process (flags are process-wide, and a test runner's young generation may have grown already):
// an allocation burst like planning's, inside withYoungGenerationHeld or not; prints new space's size in MB
// during the burst and after a burst that follows it.
function newSpaceAfterBurst(held: boolean): { during: number; after: number } {
  const module = pathToFileURL(join(repoRoot(), 'dist', 'src', 'npm', 'youngGeneration.js')).href;
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    import { withYoungGenerationHeld } from ${JSON.stringify(module)};
    const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576;
    const burst = async () => { let keep = []; for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 100000) keep = []; } };
    const run = ${held} ? withYoungGenerationHeld : (f) => f();
    await run(burst);
    const during = newSpace();
    await burst();
    console.log(JSON.stringify({ during, after: newSpace() }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { during: number; after: number };
}

describe('memory while planning an install', () => {
  it("V8's young generation does not grow while planning, and grows again afterwards", () => {
    const free = newSpaceAfterBurst(false);
    const held = newSpaceAfterBurst(true);
    expect(free.during).toBeGreaterThanOrEqual(16);
    expect(held.during).toBeLessThanOrEqual(8);
    expect(held.after).toBeGreaterThan(held.during);
  });
});
