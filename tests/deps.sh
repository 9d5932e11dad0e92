#!/usr/bin/env bash
# Installs what the real-CLI tests under tests/provider need besides the Pulumi toolchain
# (provider/scripts/toolchain.sh builds that): the npm packages that compile the Node SDK and run
# the TypeScript Automation API program, and a Python virtual environment with the Pulumi
# Python SDK. Everything goes into a cache outside the repository; the directory is printed on
# stdout. A second run with the same pins only checks a stamp and returns at once; Debian
# packages the tests need (PostgreSQL, Chromium) are installed first when missing.
#
#   PULUMI_WEBHOOKS_DEPS_DIR   where to install (default: $XDG_CACHE_HOME/pulumi-webhooks/deps)
#
# Layout: $dir/node/node_modules (typescript, @types/node, @pulumi/pulumi) and $dir/venv.
set -euo pipefail

# The generated Node SDK needs @pulumi/pulumi 3.269.0 or later (pulumi.runtime.existsResource);
# 3.270.0 declares Node 22 but runs on the Node 20 these machines have. The Python SDK is the
# newest on PyPI at the time of pinning.
NODE_PULUMI=3.270.0
NODE_TYPESCRIPT=5.9.3
NODE_TYPES_NODE=20.19.43
PY_PULUMI=3.272.0
PY_EXTRA="setuptools==80.9.0 wheel==0.45.1"

dir="${PULUMI_WEBHOOKS_DEPS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-webhooks/deps}"
stamp="$dir/stamp"
want="node=$(node --version) pulumi=$NODE_PULUMI typescript=$NODE_TYPESCRIPT types-node=$NODE_TYPES_NODE python=$(python3 --version 2>&1) py-pulumi=$PY_PULUMI $PY_EXTRA"

log() { echo "deps: $*" >&2; }

# One run at a time per directory: a concurrent run waits here until the first has installed
# everything, then sees the stamp and returns.
mkdir -p "$dir"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dir/.lock"
  flock 9
fi

# Debian packages the tests run for real: PostgreSQL's server (the watcher's postgres://
# backend; tests start their own server on 127.0.0.1 as the postgres user) and Chromium (the
# web console's browser test drives it through chromedp). Installed only when missing, which
# needs root (CI and our machines run as root); otherwise it says what to install.
need_apt=()
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  need_apt+=(postgresql)
fi
if ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "missing Debian packages: ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) and run again"
    exit 1
  fi
  log "installing Debian packages: ${need_apt[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && [ -d "$dir/node/node_modules/@pulumi/pulumi" ] && [ -x "$dir/venv/bin/python" ]; then
  echo "$dir"
  exit 0
fi

command -v node >/dev/null || { log "node is not installed: install Node.js 20 or later"; exit 1; }
command -v npm >/dev/null || { log "npm is not installed: install it with Node.js"; exit 1; }
command -v python3 >/dev/null || { log "python3 is not installed: install Python 3.10 or later"; exit 1; }

mkdir -p "$dir/node"
rm -f "$stamp"

log "installing npm packages into $dir/node"
cat >"$dir/node/package.json" <<EOF
{
  "name": "pulumi-webhooks-test-deps",
  "private": true,
  "dependencies": {
    "@pulumi/pulumi": "$NODE_PULUMI",
    "@types/node": "$NODE_TYPES_NODE",
    "typescript": "$NODE_TYPESCRIPT"
  }
}
EOF
(cd "$dir/node" && npm install --no-audit --no-fund --loglevel=error >&2)

if [ ! -x "$dir/venv/bin/python" ]; then
  log "creating the Python virtual environment $dir/venv"
  python3 -m venv "$dir/venv"
fi
log "installing Python packages"
# shellcheck disable=SC2086
"$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "pulumi==$PY_PULUMI" $PY_EXTRA >&2

echo "$want" >"$stamp"
echo "$dir"
