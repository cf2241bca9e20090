#!/bin/sh
# lottery-echo-check [HOST [PORT [CERT]]]: exit 0 when a lottery server
# answers an ECHO with the same bytes, 1 otherwise.
#
# The one definition of the health check: the server image's compose
# healthcheck runs it against 127.0.0.1 with the server's own certificate,
# and tools/validate-echo-server.sh runs it in a throwaway agency container
# on the compose network with the probe certificate. The client is
# lottery-agency in echo mode (it checks the reply), so the images need no
# netcat and the check speaks TLS like the agencies do.
#
# CERT is the name of a certificate in /etc/lottery/tls (CERT.pem, CERT.key,
# with ca.pem beside them): a certificate that names no agency can only ECHO.
# CERT "off" checks a server that runs with tls.mode = off. The server's
# certificate must carry HOST as a name.
host=${1:-server}
port=${2:-12345}
cert=${3:-probe}
dir=${ECHO_TLS_DIR:-/etc/lottery/tls}
if [ "$cert" = off ]; then
  set -- --tls-mode off
else
  set -- --tls-mode required --tls-cert "$dir/$cert.pem" --tls-key "$dir/$cert.key" \
         --tls-server-ca "$dir/ca.pem" --tls-server-name "$host"
fi
# No config file: the defaults and these flags only. Three seconds to
# connect and three to answer: a dead or mute peer fails instead of hanging.
exec timeout 10 lottery-agency --mode echo --loop-amount 1 --loop-period 0 \
  --server "$host:$port" --connect-timeout 3s --read-timeout 3s --log-level ERROR \
  "$@" >/dev/null 2>&1
