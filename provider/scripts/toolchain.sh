#!/usr/bin/env bash
# Builds the pinned Pulumi toolchain (the `pulumi` CLI and the YAML language host) once into a
# cache outside the repository, and prints the directory that holds the binaries.
#
# No prebuilt Pulumi binary can be downloaded on our machines, so both are compiled from the Go
# module proxy. `go install` refuses the CLI package because pkg/v3 carries replace directives,
# so each binary is built from a throwaway module that requires the pinned versions.
#
#   PULUMI_TOOLCHAIN_DIR   where the binaries go (default: $XDG_CACHE_HOME/pulumi-webhooks/toolchain)
#   A `pulumi` already on PATH is used as it is when it reports the pinned version.
set -euo pipefail

PULUMI_VERSION=v3.274.1
YAML_VERSION=v1.38.1
CLIPBOARD_REPLACE="github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e"

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-webhooks/toolchain"
dir="${PULUMI_TOOLCHAIN_DIR:-$cache_root/pulumi-$PULUMI_VERSION-yaml-$YAML_VERSION}"
bin="$dir/bin"
mkdir -p "$bin"

log() { echo "toolchain: $*" >&2; }

# One run at a time per toolchain directory: a concurrent run (another test package, `make
# demo`) waits here until the first has built the binaries, then finds them and returns.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$dir/.lock"
  flock 9
fi

# Reuse a pulumi on PATH when it is the pinned version.
if [ ! -x "$bin/pulumi" ] && command -v pulumi >/dev/null 2>&1; then
  if [ "$(pulumi version 2>/dev/null)" = "$PULUMI_VERSION" ]; then
    ln -sf "$(command -v pulumi)" "$bin/pulumi"
  fi
fi

build() { # name module-requires... -- package ldflags
  local out="$1" pkg="$2" ldflags="$3"; shift 3
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (
    cd "$work"
    go mod init toolchain.local/build >/dev/null 2>&1
    go mod edit -replace "$CLIPBOARD_REPLACE"
    for req in "$@"; do go mod edit -require "$req"; done
    printf 'package tools\n\nimport _ "%s"\n' "$pkg" > tools.go
    GOFLAGS=-mod=mod go mod tidy >/dev/null
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg"
    mv "$out.tmp" "$out"
  )
}

if [ ! -x "$bin/pulumi" ]; then
  log "building pulumi $PULUMI_VERSION (several minutes the first time)"
  build "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
    "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION"
fi

if [ ! -x "$bin/pulumi-language-yaml" ]; then
  log "building pulumi-language-yaml $YAML_VERSION"
  build "$bin/pulumi-language-yaml" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
    "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$YAML_VERSION" \
    "github.com/pulumi/pulumi-yaml@$YAML_VERSION"
fi

"$bin/pulumi" version >&2
echo "$bin"
