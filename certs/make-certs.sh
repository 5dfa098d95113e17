#!/usr/bin/env bash
# Development certificates for kubeshim: a local CA, a server certificate for the TLS listener
# (--tls-cert/--tls-key) and a client certificate for mTLS tests.
#
#   certs/make-certs.sh OUTDIR [HOSTNAME|IP …]
#
# The server certificate names localhost, 127.0.0.1 and ::1 plus every extra name given. Running it
# again keeps what is still good: the CA is never replaced while ca.key exists; the server and client
# certificates are re-issued only when missing, expiring within a day, not signed by the CA, or (for
# the server) when the list of names changed. Each file written or kept is named on stdout.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  echo "usage: $0 OUTDIR [HOSTNAME|IP ...]" >&2
  exit 2
fi
out=$1
shift
command -v openssl >/dev/null || { echo "$0: openssl is not installed" >&2; exit 1; }
mkdir -p "$out"
umask 077 # private keys readable by their owner only

days=365
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# SAN list: the fixed local names, then the given ones (IP addresses as IP, anything else as DNS).
san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
  if [[ $name =~ ^[0-9]+(\.[0-9]+){3}$ || $name == *:* ]]; then san+=",IP:$name"; else san+=",DNS:$name"; fi
done

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# A leaf is still good when it exists, lives for another day and chains to the current CA.
leaf_ok() {
  [ -s "$out/$1.crt" ] && [ -s "$out/$1.key" ] &&
    openssl x509 -in "$out/$1.crt" -noout -checkend 86400 >/dev/null 2>&1 &&
    openssl verify -CAfile "$out/ca.crt" "$out/$1.crt" >/dev/null 2>&1
}

# issue NAME SUBJECT EXTENSIONS: a key and a certificate signed by the CA.
issue() {
  local name=$1 subject=$2 ext=$3
  new_key "$tmp/$name.key"
  openssl req -new -key "$tmp/$name.key" -subj "$subject" -out "$tmp/$name.csr"
  printf '%s\n' "$ext" >"$tmp/$name.ext"
  openssl x509 -req -in "$tmp/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 -extfile "$tmp/$name.ext" \
    -out "$tmp/$name.crt" 2>/dev/null
  mv "$tmp/$name.key" "$out/$name.key"
  chmod 644 "$tmp/$name.crt"
  mv "$tmp/$name.crt" "$out/$name.crt"
}

renewed=0
if [ -s "$out/ca.crt" ] && [ -s "$out/ca.key" ]; then
  echo "kept  $out/ca.crt (existing CA)"
else
  new_key "$tmp/ca.key"
  openssl req -x509 -new -key "$tmp/ca.key" -subj "/CN=kubeshim development CA" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$tmp/ca.crt"
  mv "$tmp/ca.key" "$out/ca.key"
  chmod 644 "$tmp/ca.crt"
  mv "$tmp/ca.crt" "$out/ca.crt"
  echo "wrote $out/ca.crt $out/ca.key (new CA)"
  renewed=1
fi

if [ $renewed = 0 ] && leaf_ok server && [ "$(cat "$out/server.san" 2>/dev/null)" = "$san" ]; then
  echo "kept  $out/server.crt ($san)"
else
  issue server "/CN=kubeshim" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san"
  (umask 022 && printf '%s\n' "$san" >"$out/server.san")
  echo "wrote $out/server.crt $out/server.key ($san)"
fi

if [ $renewed = 0 ] && leaf_ok client; then
  echo "kept  $out/client.crt (CN=kubeshim-client)"
else
  issue client "/O=kubeshim/CN=kubeshim-client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
  echo "wrote $out/client.crt $out/client.key (CN=kubeshim-client)"
fi
