#!/bin/sh
# lottery-echo-check [HOST [PORT]]: exit 0 when a lottery server answers an
# ECHO frame (docs/PROTOCOL.md) with the same bytes, 1 otherwise.
#
# The one definition of the health check: the server image's compose
# healthcheck runs it against 127.0.0.1, and tools/validate-echo-server.sh
# runs it in a throwaway agency container on the compose network. nc -N
# half-closes after the request so the server ends the connection; -w bounds
# the connect and any silence, so a dead or mute peer fails instead of hanging.
host=${1:-server}
port=${2:-12345}
# ECHO (0x05) and ECHO_REPLY (0x85) with a 12-byte payload: 17-byte frames.
payload='health-check'
expected=$(printf '\205\000\000\000\014%s' "$payload" | od -An -v -tx1 | tr -d ' \n')
reply=$(printf '\005\000\000\000\014%s' "$payload" \
          | timeout 10 nc -N -w 3 "$host" "$port" 2>/dev/null \
          | head -c 64 | od -An -v -tx1 | tr -d ' \n')
[ -n "$reply" ] && [ "$reply" = "$expected" ]
