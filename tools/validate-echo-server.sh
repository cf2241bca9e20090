#!/usr/bin/env bash
# Checks that the lottery server of a running compose project answers an echo
# request, from inside the compose network: no published port and no client on
# the host. It runs docker/echo-check.sh (lottery-echo-check: lottery-agency in
# echo mode) in a throwaway container of the agency image on the server's
# network. Over TLS it mounts the probe certificate (which names no agency, so
# it can only ECHO) from the compose file's certs/ folder.
#
#   tools/validate-echo-server.sh
#
# Prints exactly one line, `action: test_echo_server | result: success` or
# `action: test_echo_server | result: fail`, and exits 0 or 1. Environment:
#   SERVER_CONTAINER  the server's container, also its host name  (server)
#   SERVER_PORT       its port                                    (12345)
#   ECHO_NETWORK      the network (default: the server container's own)
#   AGENCY_IMAGE      the image with lottery-echo-check          (lottery-agency:latest)
#   DOCKER            the docker client                           (docker)
#   ECHO_TLS_DIR      the certificates: ca.pem, probe.pem, probe.key (./certs)
#   ECHO_TLS_MODE     off for a server with tls.mode = off          (required)
# The check gives up after about 20 seconds: a dead or mute server is a fail.
set -u
container=${SERVER_CONTAINER:-server}
port=${SERVER_PORT:-12345}
image=${AGENCY_IMAGE:-lottery-agency:latest}
docker=${DOCKER:-docker}
tls_dir=${ECHO_TLS_DIR:-certs}

result() {
  echo "action: test_echo_server | result: $1"
  [ "$1" = success ]
  exit $?
}

network=${ECHO_NETWORK:-}
if [ -z "$network" ]; then
  network=$($docker inspect --format '{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}' \
              "$container" 2>/dev/null | awk '{print $1}')
fi
[ -n "$network" ] || result fail

if [ "${ECHO_TLS_MODE:-required}" = off ]; then
  mounts=""
  cert=off
else
  for f in ca.pem probe.pem probe.key; do
    [ -r "$tls_dir/$f" ] || { echo "validate-echo-server: $tls_dir/$f missing (ECHO_TLS_DIR)" >&2; result fail; }
  done
  abs=$(cd "$tls_dir" && pwd)
  mounts="-v $abs/ca.pem:/etc/lottery/tls/ca.pem:ro -v $abs/probe.pem:/etc/lottery/tls/probe.pem:ro -v $abs/probe.key:/etc/lottery/tls/probe.key:ro"
  cert=probe
fi
# shellcheck disable=SC2086
if timeout 20 $docker run --rm --network "$network" $mounts --entrypoint /usr/local/bin/lottery-echo-check \
     "$image" "$container" "$port" "$cert" >/dev/null 2>&1; then
  result success
fi
result fail
