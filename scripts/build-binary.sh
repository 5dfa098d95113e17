#!/usr/bin/env bash
# Builds kubeshim as one executable for linux-x64 (a Node.js single executable application):
# src/ bundled by esbuild (tsx ships it) into one CommonJS file, then that file and a Node.js binary
# made into dist-bin/kubeshim by Node's own --build-sea. The Node is 26 (scripts/fetch-node.sh),
# the line the container image runs: Node 20's SEA needs postject to inject the blob and warns that
# it is experimental at every start. Optional native modules stay out: node-pty (the demo's
# terminals report themselves unavailable), bufferutil's compiled part (its JavaScript fallback is
# bundled), utf-8-validate (ws works without it).
# Usage: scripts/build-binary.sh [OUTPUT]   (default dist-bin/kubeshim)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist-bin/kubeshim}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(node -p 'require("./package.json").version')
scripts/fetch-node.sh 26
node26="${KUBESHIM_TOOLS_DIR:-$HOME/.cache/kubeshim/tools}/node-26"

# import.meta is empty in the bundle: the version comes from the define, and node-pty's loader then
# fails as it should. Dependencies' require('punycode') gets the npm package: bundled code is not
# under node_modules, so Node's own deprecated module would warn (DEP0040) at every start.
npx --no-install esbuild src/cli.ts --bundle --platform=node --target=node26 --format=cjs \
  --outfile="$work/kubeshim.cjs" --log-level=warning \
  --define:KUBESHIM_VERSION="\"$version\"" \
  --external:node-pty --external:utf-8-validate \
  --alias:punycode=./node_modules/punycode/punycode.js \
  --log-override:empty-import-meta=silent
# the recording thread runs a module of its own: bundled beside the main one, an asset of the binary
npx --no-install esbuild src/record/cast-thread.ts --bundle --platform=node --target=node26 --format=cjs \
  --outfile="$work/cast-thread.cjs" --log-level=warning

cat > "$work/sea-config.json" <<JSON
{
  "main": "$work/kubeshim.cjs",
  "assets": { "cast-thread.cjs": "$work/cast-thread.cjs" },
  "executable": "$node26",
  "output": "$work/kubeshim",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": true
}
JSON
"$node26" --build-sea "$work/sea-config.json" >/dev/null
mkdir -p "$(dirname "$out")"
install -m 0755 "$work/kubeshim" "$out"
got=$("$out" --version)
[ "$got" = "kubeshim $version" ] || { echo "build-binary: $out --version says '$got', not 'kubeshim $version'" >&2; exit 1; }
echo "build-binary: $out ($(du -m "$out" | cut -f1) MiB, Node $("$node26" --version))" >&2
