#!/usr/bin/env bash
# Makes a throw-away certificate authority and certificates for the local secured test
# environment (Kafka SASL_SSL and mutual-TLS listeners, Redis TLS), with openssl. Keys are ECDSA
# P-256 (fast to make), unencrypted PKCS#8 PEM. Nothing here is a secret worth keeping: the
# directory is made fresh for every run.
#
#   deploy/local/certs.sh DIR      make (or remake) all of the files below in DIR
#
#   DIR/ca.crt               the test CA (PEM): the trust anchor for every server and client below
#   DIR/server.crt .key      the servers' certificate (SAN IP:127.0.0.1, DNS:localhost), signed by ca
#   DIR/server.pem           server.key + server.crt in one file (Kafka's ssl.keystore.type=PEM)
#   DIR/client.crt .key      a client certificate (CN=orderpipe-test-client, clientAuth), signed by ca
#   DIR/wrong-ca.crt         a second, unrelated CA that signed nothing here ("wrong CA" tests)
#   DIR/wrong-client.crt .key  a client certificate signed by the wrong CA (refused by mTLS servers)
set -euo pipefail
dir=${1:?usage: certs.sh DIR}
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
days=7

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # ca NAME SUBJECT
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days "$days" -subj "$2" -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

leaf() { # leaf NAME CA SUBJECT EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$3" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 16)" \
    -sha256 -days "$days" -out "$1.crt" -extfile <(printf '%s\n' "$4") 2>/dev/null
  rm -f "$1.csr"
}

ca ca "/CN=orderpipe test CA"
ca wrong-ca "/CN=orderpipe unrelated CA"
leaf server ca "/CN=localhost" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
leaf client ca "/CN=orderpipe-test-client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
leaf wrong-client wrong-ca "/CN=orderpipe-test-client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
cat server.key server.crt >server.pem
rm -f ca.srl wrong-ca.srl
chmod 600 ./*.key server.pem
