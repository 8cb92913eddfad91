#!/usr/bin/env bash
# Installs everything declarun needs on a Debian 12 machine, as root, and is cheap to re-run:
# system packages through apt-get (only when one is missing), Python packages into ./.venv
# (only when pyproject.toml changed since the last install).
set -euo pipefail
cd "$(dirname "$0")/.."

# System parts the daemon and the tests drive for real. graphviz draws `declarun graph --format svg`.
SYSTEM_PACKAGES=(
  python3-venv make graphviz curl
  runc conmon crun docker-registry skopeo umoci busybox-static
  containernetworking-plugins iptables docker.io apache2-utils docker-compose
)

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.declarun-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

# Byte-compile the package up front: where PYTHONDONTWRITEBYTECODE is set, every `declarun`
# run would otherwise compile ~200 modules from source (~0.2 s of each command's start).
# Python still checks each .pyc against its source, so an edit never runs stale code.
.venv/bin/python -m compileall -q declarun >/dev/null
