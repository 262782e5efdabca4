#!/usr/bin/env bash
# Runs every test of every module with the race detector: the README's test
# command. It sets up what the tests need first: the race detector needs cgo
# and a C compiler, the Redis store's tests start their own redis-server
# and the Memcached store's their own memcached (they start and stop them
# themselves), and the web app's test drives a
# headless Chromium. On a Debian machine run as root that
# lacks them, this installs them; elsewhere it says what to install.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
if ! command -v "${CC:-gcc}" >/dev/null 2>&1 && ! command -v cc >/dev/null 2>&1; then
  missing+=(gcc libc6-dev)
fi
if ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi
if ! command -v memcached >/dev/null 2>&1; then
  missing+=(memcached)
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  missing+=(chromium)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${missing[*]}, which the tests need" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "test.sh: the tests need what is not installed: ${missing[*]}" >&2
    echo "  a C compiler, for the race detector, redis-server, for the Redis store's tests," >&2
    echo "  memcached, for the Memcached store's tests, and Chromium, for the web app's" >&2
    echo "  browser test:" >&2
    echo "  Debian or Ubuntu: sudo apt-get install gcc redis-server memcached chromium" >&2
    echo "  Alpine:           apk add gcc musl-dev redis memcached chromium" >&2
    echo "  macOS:            xcode-select --install; brew install redis memcached; install Google Chrome" >&2
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
