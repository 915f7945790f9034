#!/usr/bin/env bash
# Throwaway TLS certificates for one interop run (interop/run makes them before it starts a
# broker with a TLS listener; suites copy the client's files to where their tests look):
#
#   tls-certs.sh DIR
#
# writes into DIR, as PEM (RSA 2048, valid 30 days, made with Debian's openssl):
#   ca_certificate.pem                      a CA, "warren interop throwaway CA"
#   server_certificate.pem server_key.pem   signed by it, for localhost and 127.0.0.1
#   client_certificate.pem client_key.pem   signed by it, subject /O=client/CN=interop-client
# The CA's key is deleted once both are signed: nothing else can ever be signed by it.
set -euo pipefail
dir=${1:?usage: tls-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
days=30
quiet() { # run a command, showing its output only when it fails
  local out
  out=$("$@" 2>&1) || { echo "tls-certs.sh: failed: $*" >&2; echo "$out" >&2; return 1; }
}

quiet openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -keyout ca_key.pem -out ca_certificate.pem -subj "/CN=warren interop throwaway CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

leaf() { # name subject extendedKeyUsage [subjectAltName]
  local name=$1 subject=$2 usage=$3 san=${4:-}
  quiet openssl req -new -newkey rsa:2048 -nodes -keyout "${name}_key.pem" -out "$name.csr" -subj "$subject"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid,issuer"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$name.ext"
  quiet openssl x509 -req -sha256 -days "$days" -in "$name.csr" -CA ca_certificate.pem -CAkey ca_key.pem \
    -CAcreateserial -extfile "$name.ext" -out "${name}_certificate.pem"
  rm -f "$name.csr" "$name.ext"
}
leaf server "/CN=localhost/O=server" serverAuth "DNS:localhost,IP:127.0.0.1"
leaf client "/O=client/CN=interop-client" clientAuth
rm -f ca_key.pem ca_certificate.srl
chmod 0644 ./*.pem
