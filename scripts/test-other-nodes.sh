#!/usr/bin/env bash
# Runs the unit tests and a representative end-to-end slice (real kubectl through the emulator and
# through `kubeshim serve`, graceful shutdown, metrics) on the Node.js lines users run beside the
# machine's own: 24 and 26, from scripts/fetch-node.sh's cache. `node` on PATH is that version for
# the whole run, so every process the tests start runs on it too.
set -euo pipefail
cd "$(dirname "$0")/.."
majors=(24 26)
slice=(test/unit test/e2e/emulator-kubectl.test.ts test/e2e/faults-shutdown.test.ts test/e2e/monitoring-metrics.test.ts)
scripts/fetch-node.sh "${majors[@]}"
tools="${KUBESHIM_TOOLS_DIR:-$HOME/.cache/kubeshim/tools}"
for major in "${majors[@]}"; do
  bin=$(mktemp -d)
  trap 'rm -rf "$bin"' EXIT
  ln -s "$tools/node-$major" "$bin/node"
  echo "test-other-nodes: Node $("$bin/node" --version)" >&2
  PATH="$bin:$PATH" KUBESHIM_NODE="$bin/node" scripts/run-tests.sh "${slice[@]}"
  rm -rf "$bin"
  trap - EXIT
done
