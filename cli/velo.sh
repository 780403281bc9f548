#!/bin/sh
# velo's bin (package.json "bin", installed by scripts/bundle.mjs as
# dist/bundle/velo): `velo uv …` goes to the native launcher velo-launch
# when one is installed (the platform package @velo-rift/<platform>, or
# native/build/ of a clone), which answers an unchanged `velo uv sync`
# without starting Node and otherwise execs node itself; everything else,
# and every machine without the launcher, runs Node on start.cjs beside
# this file. VELO_NO_LAUNCHER=1 skips the launcher.
#
# npm links this file from <prefix>/bin/velo (a global install) or
# node_modules/.bin/velo; the two usual link targets are checked with the
# shell's own `-ef` before anything is spawned (readlink -f otherwise).
here=${0%/*}
[ "$here" = "$0" ] && here=.
if [ "$here/../lib/node_modules/velo-rift/dist/bundle/velo" -ef "$0" ]; then
  here=$here/../lib/node_modules/velo-rift/dist/bundle
elif [ "$here/../velo-rift/dist/bundle/velo" -ef "$0" ]; then
  here=$here/../velo-rift/dist/bundle
elif [ -L "$0" ]; then
  here=$(readlink -f -- "$0") && here=${here%/*} || { echo "velo: cannot find where $0 points (readlink -f failed)" >&2; exit 70; }
fi
if [ "$1" = uv ] && [ -z "$VELO_NO_LAUNCHER" ]; then
  # a clone's own build, then the platform package: nested (npm i -g) or hoisted (a project's
  # node_modules); musl's first where an npm that ignores "libc" installed both: it is static, runs anywhere
  for launcher in "$here/../../native/build/velo-launch" \
    "$here/../../node_modules/@velo-rift/"*-musl/velo-launch "$here/../../node_modules/@velo-rift/"*-gnu/velo-launch \
    "$here/../../../@velo-rift/"*-musl/velo-launch "$here/../../../@velo-rift/"*-gnu/velo-launch; do
    [ -x "$launcher" ] && exec "$launcher" "$here/start.cjs" "$@"
  done
fi
exec node "$here/start.cjs" "$@"
