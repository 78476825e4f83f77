#!/bin/sh
# with-ca.sh COMMAND...: run COMMAND trusting the extra CA bundle given to the build as a secret
# (`make image CA_BUNDLE=/path/ca.crt`, i.e. `docker build --secret id=ca_bundle,src=...`), for networks
# that intercept TLS. The bundle is mounted for one RUN only: it never lands in a layer of the image,
# and the image trusts only its own CAs.
set -eu
bundle=/run/secrets/ca_bundle
if [ -s "$bundle" ]; then
  export PIP_CERT="$bundle" SSL_CERT_FILE="$bundle" REQUESTS_CA_BUNDLE="$bundle" CURL_CA_BUNDLE="$bundle"
  export MAMBA_SSL_VERIFY="$bundle"
fi
exec "$@"
