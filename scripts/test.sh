#!/usr/bin/env bash
# The test command: set up (scripts/setup.sh), type-check, run every test,
# and close with one plain line: "tests: N passed, M failed".
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$repo/scripts/setup.sh"
cd "$repo"
# zig cc builds the prebuilt packages test/dist.install.test.ts installs (without it: gcc, this platform only)
bash scripts/install-zig.sh >/dev/null || echo "test: zig not installed; test/dist.install packs this machine's platform with gcc" >&2
node node_modules/typescript/bin/tsc -p tsconfig.json --noEmit
results="$repo/.vitest-results.json"
rm -f "$results"
status=0
npm test -- --reporter=default --reporter=json --outputFile="$results" || status=$?
if [[ -f "$results" ]]; then
  node -e 'const r = require(process.argv[1]); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""))' "$results"
fi
exit "$status"
