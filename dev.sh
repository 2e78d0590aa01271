#!/usr/bin/env bash
# One entry point for a fresh machine:
#   ./dev.sh run    install everything, build the canvas, start the server on 127.0.0.1:8188
#   ./dev.sh test   install everything (chromium too, when root), build the test canvas
#                   (web/dist-test, with the test hook), lint, run the tests
# Extra arguments go to server.py (run) or pytest (test).
set -euo pipefail
cd "$(dirname "$0")"
cmd="${1:-}"
shift || true

PY=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

python_deps() {
  local req="$1" stamp=".venv/.installed-$(basename "$1")"
  [ -x "$PY" ] || python3 -m venv .venv
  if [ ! -f "$stamp" ] || [ -n "$(find requirements*.txt -newer "$stamp" | head -n 1)" ]; then
    "$PY" -m pip install -q --disable-pip-version-check -r "$req"
    touch "$stamp"
  fi
}

web_build() {
  command -v npm >/dev/null || { echo "npm is required to build the canvas (web/)" >&2; exit 1; }
  # reinstall when the lockfile's content changed (not its mtime: a fresh clone or worktree
  # has a newer lockfile than an install it may share)
  local lock_sum stamp=web/node_modules/.installed-lock.sha256
  lock_sum="$(sha256sum web/package-lock.json | cut -d' ' -f1)"
  if [ ! -d web/node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > "$stamp"
  fi
  web_bundle dist build
}

# web_bundle OUTDIR SCRIPT: rebuild web/OUTDIR with `npm run SCRIPT` when a source is newer.
web_bundle() {
  local out="web/$1"
  if [ ! -f "$out/index.html" ] || [ -n "$(find web/src web/index.html web/package.json web/tsconfig.json web/vite.config.ts -newer "$out/index.html" 2>/dev/null | head -n 1)" ]; then
    (cd web && npm run "$2" --silent)
  fi
}

chromium_for_tests() {
  if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium for the browser tests (apt-get)..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || echo "chromium could not be installed: browser tests will skip" >&2
  fi
}

case "$cmd" in
  run)
    python_deps requirements.txt
    web_build
    exec "$PY" server.py "$@"
    ;;
  test)
    python_deps requirements-test.txt
    web_build
    web_bundle dist-test build:test  # the browser tests' build: with the window.__app test hook
    chromium_for_tests
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    exec .venv/bin/pytest -q "$@"
    ;;
  *)
    echo "usage: ./dev.sh run [server options] | ./dev.sh test [pytest options]" >&2
    exit 2
    ;;
esac
