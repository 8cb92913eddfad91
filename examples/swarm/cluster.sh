#!/usr/bin/env bash
# Starts a local three-node Docker Swarm to try `declarun --engine swarm` on: three Debian
# dockerd nodes (node1 the manager, node2 and node3 workers), each in a network namespace of
# its own with its own data root under /var/lib/declarun-swarm-example, joined over a private
# bridge; the example registry (examples/registry/setup.sh, 127.0.0.1:5000) is reachable from
# every node at the same address. The tests start the very same cluster
# (tests/support/swarm_cluster.py). Needs root.
#
#   examples/swarm/cluster.sh          # start (registry too), print the nodes and what to run
#   examples/swarm/cluster.sh --stop   # stop and remove the cluster
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ROOT=${DECLARUN_SWARM_ROOT:-/var/lib/declarun-swarm-example}

if [ "${1:-}" = "--stop" ]; then
  python3 "$repo/tests/support/swarm_cluster.py" down --root "$ROOT"
  exit 0
fi

"$repo/examples/registry/setup.sh"
python3 "$repo/tests/support/swarm_cluster.py" up --root "$ROOT" --registry-port 5000
cat <<TEXT

The manager answers at unix://$ROOT/n1/docker.sock:

  export DOCKER_HOST=unix://$ROOT/n1/docker.sock
  docker node ls
  declarun apply examples/swarm/stack.yaml --engine swarm
  declarun status examples/swarm/stack.yaml --engine swarm
  ip netns exec dswex-n2 curl -s http://127.0.0.1:8080/     # a node's published port

Stop it with: examples/swarm/cluster.sh --stop
TEXT
