#!/usr/bin/env bash
# The test command: set up (scripts/setup.sh), type-check, run every test.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$repo/scripts/setup.sh"
cd "$repo"
node node_modules/typescript/bin/tsc -p tsconfig.json --noEmit
npm test
