#!/usr/bin/env bash
# Runs every test of every module with the race detector: the README's test
# command. It sets up what the tests need first. The race detector needs cgo
# and a C compiler; on a Debian machine run as root that lacks one, this
# installs gcc, and elsewhere it says what to install.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v "${CC:-gcc}" >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing gcc, which the race detector needs" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
  else
    echo "test.sh: the race detector needs a C compiler, and none is installed." >&2
    echo "  Debian or Ubuntu: sudo apt-get install gcc" >&2
    echo "  Alpine:           apk add gcc musl-dev" >&2
    echo "  macOS:            xcode-select --install" >&2
    exit 1
  fi
fi
export CGO_ENABLED=1

status=0
for mod in $(git ls-files '*go.mod' 2>/dev/null || find . -name go.mod -not -path './.git/*'); do
  dir=$(dirname "$mod")
  echo "== $dir"
  (cd "$dir" && go test -race "$@" ./...) || status=1
done
exit "$status"
