#!/usr/bin/env bash
# The README's main job: bring up examples/web on the built-in daemon, end to end, offline.
#   1. validate every bundled example;
#   2. start a local registry and push a busybox image built from Debian's busybox-static;
#   3. declarun apply examples/web/stack.yaml (declarund is started in the background if needed);
#   4. curl the published port, and show that a second plan has nothing to do.
# Tear down afterwards with: .venv/bin/declarun destroy examples/web/stack.yaml --volumes
set -euo pipefail
cd "$(dirname "$0")/.."
declarun=.venv/bin/declarun
stack=examples/web/stack.yaml

echo "== declarun validate examples/*/stack.yaml"
"$declarun" validate examples/*/stack.yaml

echo
echo "== examples/registry/setup.sh"
examples/registry/setup.sh

echo
echo "== declarun apply $stack"
"$declarun" apply "$stack"

echo
echo "== curl http://127.0.0.1:8080/"
for _ in $(seq 1 50); do
  curl -fsS http://127.0.0.1:8080/ && break
  sleep 0.2
done

echo
echo "== declarun plan $stack"
"$declarun" plan "$stack"

echo
echo "The stack is up: curl http://127.0.0.1:8080/ · declarun status $stack · declarun logs $stack"
echo "Tear it down with: $declarun destroy $stack --volumes"
