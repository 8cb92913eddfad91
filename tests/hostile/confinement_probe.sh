# Confinement probe: run inside a container by busybox sh (`sh -c "$(cat this file)"`).
# Prints one `key=value` line per check, sorted, nothing else. Only reads, or acts inside the
# container's own namespaces (a tmpfs mount, a new namespace, a device node under /tmp):
# nothing here writes to /proc/sys, /sys or a device, so it is safe under --privileged too.
bb=/bin/busybox
out() { echo "$1=$2"; }

# Credentials and the process's own limits, from /proc/self/status.
for field in CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs Seccomp; do
  out "$field" "$($bb awk -v f="$field:" '$1 == f { print $2 }' /proc/self/status)"
done
out uid "$($bb id -u)"
out gid "$($bb id -g)"
out groups "$($bb id -G | $bb tr ' ' ',')"

# How a path is mounted: the options (ro/rw) of the longest mount point above it.
mount_mode() {
  $bb awk -v p="$1" '
    { mp = $5; opts = $6
      if ((p == mp || index(p, mp "/") == 1 || mp == "/") && length(mp) >= best) {
        best = length(mp); split(opts, o, ","); mode = o[1] } }
    END { print mode }' /proc/self/mountinfo
}
for path in / /proc /sys /sys/fs/cgroup /proc/sys /proc/sysrq-trigger /proc/irq /proc/bus /proc/fs /dev /dev/shm /tmp; do
  out "mount:$path" "$(mount_mode "$path")"
done

# Masked paths: dockerd bind-mounts /dev/null over files and an empty read-only tmpfs over
# directories. A masked file reads as nothing; a masked directory lists nothing.
for path in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats /proc/timer_stats; do
  if [ -e "$path" ]; then
    out "masked:$path" "$(if [ "$($bb head -c 64 "$path" 2>/dev/null | $bb wc -c)" = 0 ]; then echo yes; else echo no; fi)"
  else
    out "masked:$path" absent
  fi
done
for path in /proc/acpi /proc/scsi /sys/firmware /sys/devices/virtual/powercap; do
  if [ -d "$path" ]; then
    out "masked:$path" "$(if [ -z "$($bb ls -A "$path" 2>/dev/null)" ]; then echo yes; else echo no; fi)"
  else
    out "masked:$path" absent
  fi
done

# What the process may do.
try() { if "$@" >/dev/null 2>&1; then echo ok; else echo denied; fi; }
$bb mkdir -p /tmp/probe-mnt 2>/dev/null
out mount-tmpfs "$(try $bb mount -t tmpfs probe /tmp/probe-mnt)"
$bb umount /tmp/probe-mnt 2>/dev/null
out unshare-mount-ns "$(try $bb unshare -m true)"
out unshare-user-ns "$(try $bb unshare -U true)"
out unshare-net-ns "$(try $bb unshare -n true)"
out raw-socket-ping "$(try $bb ping -c 1 -W 2 127.0.0.1)"
out mknod-char "$(try $bb mknod /tmp/probe-null c 1 3)"
out open-made-null "$(if [ -c /tmp/probe-null ]; then try $bb dd if=/tmp/probe-null of=/dev/null count=1; else echo none; fi)"
out mknod-block "$(try $bb mknod /tmp/probe-loop b 7 0)"
out open-made-block "$(if [ -b /tmp/probe-loop ]; then try $bb dd if=/tmp/probe-loop of=/dev/null count=0; else echo none; fi)"
out write-root "$(try $bb touch /probe-file)"
out write-tmp "$(try $bb touch /tmp/probe-file)"
out chown-file "$(if [ -e /tmp/probe-file ]; then try $bb chown 1:1 /tmp/probe-file; else echo none; fi)"
out sethostname "$(try $bb hostname probe-host)"
out read-kmsg "$(try $bb head -c 1 /dev/kmsg)"
out change-time "$(try $bb date -s "$($bb date +%Y-%m-%d\ %H:%M:%S)")"

# What the process can see.
dev_count=$($bb ls -A /dev | $bb wc -l)
if [ "$dev_count" -gt 40 ]; then out dev-entries many; else out dev-entries "$($bb ls -A /dev | $bb tr '\n' ',')"; fi
pid_count=$($bb ls /proc | $bb grep -c '^[0-9]')
if [ "$pid_count" -gt 10 ]; then out pids-visible many; else out pids-visible few; fi
out net-interfaces "$($bb ls /sys/class/net | $bb tr '\n' ',')"
out pid1 "$($bb cat /proc/1/comm)"
