#!/usr/bin/env bash
# Starts a local image registry on 127.0.0.1:5000 (Debian's docker-registry, the CNCF
# distribution registry) and fills it with 127.0.0.1:5000/declarun/busybox:1.35, an image built
# here from Debian's busybox-static: these machines have no Docker Hub, and a stack should show a
# registry of its own in use anyway. Safe to run again: an answering registry and an image
# already pushed are left as they are.
#
#   examples/registry/setup.sh            # start (if needed) and fill
#   examples/registry/setup.sh --stop     # stop the registry this script started
set -euo pipefail

ADDR=${DECLARUN_EXAMPLE_REGISTRY:-127.0.0.1:5000}
STATE=${DECLARUN_EXAMPLE_STATE:-/var/lib/declarun-example-registry}
IMAGE=declarun/busybox
TAG=1.35

mkdir -p "$STATE"
pidfile=$STATE/registry.pid

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then
    echo "registry: stopped"
  fi
  rm -f "$pidfile"
  exit 0
fi

answers() { curl -fsS -o /dev/null "http://$ADDR/v2/" 2>/dev/null; }

if ! answers; then
  cat > "$STATE/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/data
  delete:
    enabled: true
http:
  addr: $ADDR
CONFIG
  setsid docker-registry serve "$STATE/config.yml" >"$STATE/registry.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 1 50); do answers && break; sleep 0.1; done
  answers || { echo "registry: did not come up; see $STATE/registry.log" >&2; exit 1; }
  echo "registry: serving on http://$ADDR (data in $STATE/data)"
else
  echo "registry: already answering on http://$ADDR"
fi

if skopeo inspect --tls-verify=false "docker://$ADDR/$IMAGE:$TAG" >/dev/null 2>&1; then
  echo "registry: $ADDR/$IMAGE:$TAG is already there"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A root filesystem: the static busybox and a link for each applet it provides.
bundle=$work/bundle
umoci init --layout "$work/oci"
umoci new --image "$work/oci:$TAG"
umoci unpack --rootless --image "$work/oci:$TAG" "$bundle" >/dev/null
rootfs=$bundle/rootfs
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root" "$rootfs/www"
chmod 1777 "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
umoci repack --image "$work/oci:$TAG" "$bundle" >/dev/null
umoci config --image "$work/oci:$TAG" --config.cmd sh \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --os linux --architecture "$(dpkg --print-architecture)"
skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:$TAG" "docker://$ADDR/$IMAGE:$TAG"
echo "registry: pushed $ADDR/$IMAGE:$TAG (busybox $(/bin/busybox | head -1 | awk '{print $2}'))"
