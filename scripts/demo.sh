#!/usr/bin/env bash
# The README's main job: validate every bundled example, then render and graph the web stack.
# (Applying it end to end arrives with the reconciler; see issue "Plan and apply".)
set -euo pipefail
cd "$(dirname "$0")/.."
declarun=.venv/bin/declarun

echo "== declarun validate examples/*/stack.yaml"
"$declarun" validate examples/*/stack.yaml

echo
echo "== declarun render examples/web/stack.yaml --var http_port=9090"
"$declarun" render examples/web/stack.yaml --var http_port=9090

echo
echo "== declarun graph examples/web/stack.yaml --format mermaid"
"$declarun" graph examples/web/stack.yaml --format mermaid

if command -v dot >/dev/null; then
  mkdir -p out
  "$declarun" graph examples/web/stack.yaml --format svg -o out/web-graph.svg
  echo
  echo "== drew out/web-graph.svg"
fi
