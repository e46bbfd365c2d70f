#!/usr/bin/env bash
# Make a throwaway CA and a server certificate for 127.0.0.1/localhost signed by it, in $1:
#   ca.pem (clients trust this: AUTOGLM_KAFKA_SSL_CAFILE), server.p12 (the broker's keystore).
# The keystore password is read from KEYSTORE_PASSWORD. Idempotent: existing files are kept.
set -euo pipefail
DIR="$1"
: "${KEYSTORE_PASSWORD:?set KEYSTORE_PASSWORD}"
[[ -s "$DIR/server.p12" && -s "$DIR/ca.pem" ]] && exit 0
mkdir -p "$DIR"
umask 077
cd "$DIR"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=autoglm test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
  "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name kafka \
  -out server.p12 -passout env:KEYSTORE_PASSWORD
chmod 644 ca.pem
rm -f server.csr server.ext ca.srl
