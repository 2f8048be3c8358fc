#!/usr/bin/env bash
# Packaging test: the packages as a user gets them. Builds and packs them (pnpm pack), then, in
# fresh projects outside this workspace, installs the tarballs with npm:
#   1. an application, with the Effect 3 peer set of the README's Install line: a plain .mjs
#      program run with node; a .ts program and every TypeScript block of the README compiled by
#      tsc (strict, exactOptionalPropertyTypes, noPropertyAccessFromIndexSignature,
#      skipLibCheck false) and run with node — the blocks marked `run`, the README's
#      "Use it" example among them — against an embedded server;
#   2. examples/testing, a user's test suite on the test kit: type-checked, then run by vitest
#      (the kit starts its own embedded server).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/scoped-pool-packaging-XXXXXX")
trap 'rm -rf "$work"' EXIT
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

echo "-- build and pack"
pnpm build
for p in core pg testing; do (cd "packages/$p" && pnpm pack --pack-destination "$work/tarballs" >/dev/null); done
ls "$work/tarballs"
node .ci/packaging/check-dts.mjs packages/core packages/pg packages/testing
tarball() { ls "$work"/tarballs/scoped-pool-"$1"-*.tgz; }
core=$(tarball core) pg=$(tarball pg) testing=$(tarball testing)

# The README's install lines, with our packages replaced by their tarballs (core comes along
# with pg: on a registry it is pg's dependency).
readme_install() {
  local line
  line=$(grep -m1 -E "^npm i $1" README.md) || { echo "README has no line starting 'npm i $1'" >&2; return 1; }
  line=${line%%#*} # a comment on the line is not an argument
  # shellcheck disable=SC2086
  set -- ${line#npm i }
  for word in "$@"; do
    case "$word" in
      @scoped-pool/pg) printf '%s\n%s\n' "$pg" "$core" ;;
      @scoped-pool/testing) printf '%s\n' "$testing" ;;
      *) printf '%s\n' "$word" ;;
    esac
  done
}

echo "-- 1. an application: npm install of the tarballs and the README's peer set"
app="$work/app"
mkdir -p "$app"
(cd "$app" && npm init -y >/dev/null && npm pkg set type=module)
deps_list=$(readme_install "@scoped-pool/pg ")
dev_list=$(readme_install "-D typescript" | tail -n +2)
mapfile -t deps <<<"$deps_list"
mapfile -t dev <<<"$dev_list"
echo "npm i ${deps[*]}"
echo "npm i -D ${dev[*]}"
(cd "$app" && npm i "${deps[@]}" && npm i -D "${dev[@]}")
cp .ci/packaging/main.mjs .ci/packaging/main.ts .ci/packaging/tsconfig.json "$app/"
node scripts/snippets.mjs readme README.md "$app/src"
echo "-- tsc (strict, skipLibCheck false) on main.ts and the README's blocks"
(cd "$app" && node_modules/.bin/tsc -p tsconfig.json)
echo "-- run with node against an embedded server"
node_modules/.bin/tsx test/support/with-pg.ts -- bash .ci/packaging/run-app.sh "$app"

echo "-- 2. examples/testing: a user's tests on @scoped-pool/testing, installed from the tarballs"
cp -r examples/testing "$work/testing"
rm -rf "$work/testing/node_modules"
(cd "$work/testing" && npm i "$pg" "$core" "$testing" && node_modules/.bin/tsc --noEmit && env -u TEST_DATABASE_URL node_modules/.bin/vitest run)
echo "packaging test passed"
