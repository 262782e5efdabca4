#!/usr/bin/env bash
# The API compatibility check of the modules users import: every module of the
# repository except the examples and the benchmarks (the core, sqlite,
# redisstore, memoprom, and any module added beside them).
#
#   bash .ci/api/check.sh          compare each module's exported API with its
#                                  baseline, MODULE.export in this folder, and
#                                  fail if a change would break a user's code
#   bash .ci/api/check.sh -update  print what changed, then record the current
#                                  API as the baseline of every module
#
# The baseline is the API users may rely on: the last release's. Adding API
# passes (the check lists the additions), so an addition needs no new
# baseline until the release that ships it: regenerate the baselines when
# tagging a release, and when a breaking change is made on purpose (then
# also say so in CHANGELOG.md). A new module fails until its baseline is
# recorded with -update. If two branches both change a baseline, take either
# side when merging and run -update on the merge.
#
# The baselines are export data written by golang.org/x/exp's apidiff, at the
# version pinned below; internal packages are not part of the API.
set -euo pipefail
cd "$(dirname "$0")/../.."

apidiff=golang.org/x/exp/cmd/apidiff@v0.0.0-20261113113407-e3970619a1a4
here=.ci/api

# api runs apidiff in the module's folder; it prints apidiff's errors, but
# not its notes on the internal packages it leaves out.
api() {
  local dir=$1 err
  shift
  err=$(mktemp)
  if ! (cd "$dir" && go run "$apidiff" "$@") 2>"$err"; then
    grep -v '^Ignoring internal package' "$err" >&2
    rm -f "$err"
    echo "api: apidiff failed in $dir" >&2
    return 1
  fi
  rm -f "$err"
}

update=false
case "${1:-}" in
  -update) update=true ;;
  "") ;;
  *) echo "usage: bash $here/check.sh [-update]" >&2; exit 2 ;;
esac

# The modules users import: every go.mod outside examples/ and benchmarks/.
# A module's baseline is named after its folder (the root's: core).
mods=$(git ls-files '*go.mod' | grep -v -e '^examples/' -e '^benchmarks/' | sort)

status=0
for mod in $mods; do
  dir=$(dirname "$mod")
  name=$dir
  [ "$dir" = . ] && name=core
  name=${name//\//-}
  path=$(cd "$dir" && go list -m)
  base=$PWD/$here/$name.export

  if [ -f "$base" ]; then
    changes=$(api "$dir" -m "$base" "$path")
    breaking=$(api "$dir" -m -incompatible "$base" "$path")
  elif $update; then
    changes=""
    breaking=""
  else
    echo "api: $path has no baseline ($here/$name.export)." >&2
    echo "  Record its API with: bash $here/check.sh -update" >&2
    status=1
    continue
  fi

  if $update; then
    existed=$([ -f "$base" ] && echo yes || echo no)
    api "$dir" -m -w "$base" "$path"
    if [ "$existed" = no ]; then
      echo "api: $path: baseline recorded (a module new to the check)"
    elif [ -n "$changes" ]; then
      echo "api: $path: new baseline, from these changes:"
      echo "$changes" | sed 's/^/  /'
    else
      echo "api: $path: unchanged"
    fi
  elif [ -n "$breaking" ]; then
    echo "api: $path: changes that break code using it, against $here/$name.export:" >&2
    echo "$breaking" | sed 's/^/  /' >&2
    echo "  Keep the API, or, if the break is meant (a new major version, or API not yet" >&2
    echo "  released), record the new API with: bash $here/check.sh -update" >&2
    echo "  and say so in CHANGELOG.md." >&2
    status=1
  elif [ -n "$changes" ]; then
    echo "api: $path: compatible; not yet in the baseline:"
    echo "$changes" | grep -v -e '^Compatible changes:$' | sed 's/^/  /'
  else
    echo "api: $path: as in the baseline"
  fi
done
exit "$status"
