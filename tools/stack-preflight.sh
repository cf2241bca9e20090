#!/bin/sh
# stack-preflight.sh: checks that this Docker engine can take the lottery
# stack (make stack-deploy runs it; docs/DEPLOY.md).
#
# - The engine must be a swarm manager: otherwise it says how to make one
#   and exits 1 (it never initialises a swarm by itself).
# - The server's task runs only on a node labelled lottery.server=true, where
#   its volume lives. A swarm of one node gets the label here (and says so);
#   with several nodes the operator chooses, and this exits 1 naming the
#   command.
set -eu
state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null || true)
case "$state" in
  "active true") ;;
  "active false")
    echo "stack-preflight: this engine is a swarm worker; run make stack-deploy on a manager" >&2
    exit 1 ;;
  *)
    echo "stack-preflight: this engine is not in a swarm; make it a manager first:" >&2
    echo "  docker swarm init --advertise-addr <this host's address>" >&2
    exit 1 ;;
esac
labelled=$(docker node ls -q --filter node.label=lottery.server=true | wc -l)
if [ "$labelled" -gt 1 ]; then
  echo "stack-preflight: $labelled nodes are labelled lottery.server=true; the server's volume" \
       "lives on one node, so label exactly one" >&2
  exit 1
fi
if [ "$labelled" -eq 0 ]; then
  nodes=$(docker node ls -q | wc -l)
  if [ "$nodes" -ne 1 ]; then
    echo "stack-preflight: no node is labelled lottery.server=true; choose the node that keeps" \
         "the bets file and run:" >&2
    echo "  docker node update --label-add lottery.server=true <node>" >&2
    exit 1
  fi
  node=$(docker node ls -q)
  docker node update --label-add lottery.server=true "$node" >/dev/null
  echo "stack-preflight: labelled the only node ($node) lottery.server=true"
fi
