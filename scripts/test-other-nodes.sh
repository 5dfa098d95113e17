#!/usr/bin/env bash
# Runs the suite on the Node.js lines users run beside the machine's own (from scripts/fetch-node.sh's
# cache): on 24 and 26 (the current LTS lines; 26 is the image's) the unit tests and a representative
# end-to-end slice — real kubectl 1.27–1.33 exec, cp and port-forward, with terminals, through the
# emulator, and `kubeshim serve` with fallbacks and its metrics — and on 22 the unit tests. `node` on
# PATH is that version for the whole run, so every process the tests start runs on it too.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-node.sh 22 24 26
tools="${KUBESHIM_TOOLS_DIR:-$HOME/.cache/kubeshim/tools}"
slice=(test/unit test/e2e/emulator-kubectl.test.ts test/e2e/monitoring-metrics.test.ts)
run_on() {
  local major=$1; shift
  local bin
  bin=$(mktemp -d)
  ln -s "$tools/node-$major" "$bin/node"
  echo "test-other-nodes: Node $("$bin/node" --version): $*" >&2
  local rc=0
  PATH="$bin:$PATH" KUBESHIM_NODE="$bin/node" scripts/run-tests.sh "$@" || rc=$?
  rm -rf "$bin"
  return $rc
}
# every version runs even when one fails; the run fails at the end, naming them
failed=()
run_on 22 test/unit || failed+=(22)
run_on 24 "${slice[@]}" || failed+=(24)
run_on 26 "${slice[@]}" || failed+=(26)
if [ ${#failed[@]} -gt 0 ]; then
  echo "test-other-nodes: failures on Node ${failed[*]}" >&2
  exit 1
fi
