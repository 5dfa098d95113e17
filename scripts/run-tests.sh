#!/usr/bin/env bash
# Runs the node:test suites through tsx. Arguments narrow the run to files or folders (default: test/).
# KUBESHIM_NODE picks the node binary (default: node on PATH); tests start their processes with it.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=("$@"); [ ${#paths[@]} -eq 0 ] && paths=(test)
mapfile -t files < <(find "${paths[@]}" -name '*.test.ts' | sort)
[ ${#files[@]} -gt 0 ] || { echo "no test files under ${paths[*]}" >&2; exit 1; }
exec "${KUBESHIM_NODE:-node}" --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-1}" "${files[@]}"
