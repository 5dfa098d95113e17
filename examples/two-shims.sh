#!/usr/bin/env bash
# The two-shim setup, end to end on this machine:
#
#   kubectl, speaking SPDY (as kubectl before 1.30 and client-go tools do)
#     → kubeshim A   --upstream-protocol websocket   translates SPDY to WebSocket
#     → nginx        examples/nginx/websocket-only.conf: carries WebSocket, strips SPDY upgrades
#     → kubeshim B   --upstream-protocol spdy        translates WebSocket back to SPDY
#     → an emulated API server of generation "spdy", which refuses every WebSocket upgrade
#
# Neither kubectl nor the cluster changes; only WebSocket crosses the middle hop. The script starts
# everything on free loopback ports, runs two execs through it (one with piped stdin, whose end must
# cross all four translations), prints which protocols each hop saw, and stops everything.
#
#   examples/two-shims.sh            run, print, stop
#   KEEP=1 examples/two-shims.sh     leave it running (Ctrl-C stops it) and print the KUBECONFIG
#
# Needs nginx (scripts/install-test-deps.sh installs it), kubectl, and `npm ci` in this checkout.
# KUBECTL picks the kubectl binary (default: kubectl); any version works, since the script makes it
# speak SPDY with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false. KUBESHIM overrides how kubeshim is run
# (default: this checkout's src/cli.ts through tsx; `node dist/cli.js` after `npm run build`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KUBECTL=${KUBECTL:-kubectl}
read -r -a KUBESHIM <<<"${KUBESHIM:-node --import $ROOT/node_modules/tsx/dist/loader.mjs $ROOT/src/cli.ts}"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "two-shims: nginx is not installed (scripts/install-test-deps.sh installs it)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kubeshim-two-shims.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }

# The shims must not pick up a kubeconfig of the user's: each gets this empty HOME and --upstream.
# `exec`: a function run with & is a subshell; exec makes $! the shim's own process, which cleanup
# then stops (killing only the subshell would leave the shim running after the script ends).
run_kubeshim() { exec env -u KUBECONFIG HOME="$TMP" "${KUBESHIM[@]}" "$@"; }

# wait_for FILE PATTERN WHAT: the first line of FILE matching PATTERN, within 20 s.
wait_for() {
  local i
  for i in $(seq 200); do
    if grep -m1 -- "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "two-shims: no $3 within 20 s; its output:" >&2
  cat "$1" >&2
  exit 1
}

# url_of LINE: the "url" field of a pino JSON line.
url_of() { sed -E 's/.*"url":"([^"]+)".*/\1/' <<<"$1"; }

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

say "1. an emulated API server that speaks SPDY only (kubeshim demo --generation spdy, whose own shim is not used)"
(cd "$TMP" && exec env -u KUBECONFIG HOME="$TMP" "${KUBESHIM[@]}" demo --generation spdy --listen 127.0.0.1:0) >"$TMP/demo.log" 2>&1 &
PIDS+=($!)
API=$(url_of "$(wait_for "$TMP/demo.log" '"msg":"emulator listening"' 'emulated API server')")
echo "   API server  $API"

say "2. kubeshim B in front of it: --upstream-protocol spdy"
run_kubeshim serve --listen 127.0.0.1:0 --upstream "$API" --upstream-protocol spdy >"$TMP/shim-b.log" 2>&1 &
PIDS+=($!)
SHIM_B=$(url_of "$(wait_for "$TMP/shim-b.log" '"msg":"listening"' 'kubeshim B')")
echo "   kubeshim B  $SHIM_B"

say "3. nginx in front of kubeshim B, carrying WebSocket only (examples/nginx/websocket-only.conf)"
NGINX_PORT=$(free_port)
sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$NGINX_PORT/g" -e "s#127\.0\.0\.1:8001#${SHIM_B#http://}#g" \
  "$ROOT/examples/nginx/websocket-only.conf" >"$TMP/nginx.conf"
"$NGINX" -e stderr -p "$TMP" -c "$TMP/nginx.conf" -g "daemon off; pid $TMP/nginx.pid;" >"$TMP/nginx.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null && break; sleep 0.1; done
(exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null || { echo "two-shims: nginx did not start:" >&2; cat "$TMP/nginx.log" >&2; exit 1; }
echo "   nginx       http://127.0.0.1:$NGINX_PORT"

say "4. kubeshim A in front of nginx: --upstream-protocol websocket"
run_kubeshim serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$NGINX_PORT" --upstream-protocol websocket \
  >"$TMP/shim-a.log" 2>&1 &
PIDS+=($!)
SHIM_A=$(url_of "$(wait_for "$TMP/shim-a.log" '"msg":"listening"' 'kubeshim A')")
echo "   kubeshim A  $SHIM_A"
(run_kubeshim kubeconfig --upstream "http://127.0.0.1:$NGINX_PORT" --listen "${SHIM_A#http://}" \
  --output "$TMP/kubeconfig" 2>/dev/null)

VERSION=$("$KUBECTL" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p')
say "5. kubectl $VERSION exec through all of it, speaking SPDY"
export KUBECONFIG="$TMP/kubeconfig" KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false KUBECTL_PORT_FORWARD_WEBSOCKETS=false
GOT=$("$KUBECTL" exec demo -- echo hello through two shims)
echo "   \$ kubectl exec demo -- echo hello through two shims"
echo "   $GOT"
PIPED=$(printf 'piped stdin\n' | "$KUBECTL" exec -i demo -- cat)
echo "   \$ printf 'piped stdin\\n' | kubectl exec -i demo -- cat      (stdin's end crosses every hop)"
echo "   $PIPED"
[ "$GOT" = "hello through two shims" ] && [ "$PIPED" = "piped stdin" ] || { echo "two-shims: unexpected output" >&2; exit 1; }

say "6. what each hop saw"
sessions() { # LOG: client → upstream of each session line of a kubeshim log
  node -e '
    for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
      if (!l.includes("\"msg\":\"session\"")) continue;
      const s = JSON.parse(l);
      console.log(`   ${process.argv[2]}  ${s.subresource}: client ${s.client} → upstream ${s.upstream} (${s.mode}), exit ${s.exitCode}`);
    }' "$1" "$2"
}
for log in shim-a shim-b; do
  for i in $(seq 50); do [ "$(grep -c '"msg":"session"' "$TMP/$log.log")" -ge 2 ] && break; sleep 0.1; done
done
sessions "$TMP/shim-a.log" "kubeshim A"
grep -E '" 101 ' "$TMP/nginx.log" | sed -E 's/^.*"(GET|POST) ([^? ]+)[^"]*" ([0-9]+).*/   nginx       \1 \2 → \3 (WebSocket)/'
sessions "$TMP/shim-b.log" "kubeshim B"
grep '"msg":"session"' "$TMP/demo.log" | grep '"component":"emulator"' |
  sed -E 's/.*"protocol":"([^"]+)".*"transport":"([^"]+)".*/   API server  exec over \2, \1/' || true

if [ "${KEEP:-}" = 1 ]; then
  say "running; in another terminal:"
  echo "   export KUBECONFIG=$TMP/kubeconfig KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false KUBECTL_PORT_FORWARD_WEBSOCKETS=false"
  echo "   kubectl exec -it demo -- sh"
  echo "   Ctrl-C here stops everything."
  wait
fi
# cleanup (the EXIT trap) stops every process started here, also on Ctrl-C or SIGTERM
