"""Forward ``127.0.0.1:PORT`` inside network namespaces to ``127.0.0.1:PORT`` outside them.

Run as a program (``python netns_forward.py PORT[:TARGET][,PORT[:TARGET]...] NETNS...``;
``TARGET`` defaults to ``PORT``): for each named namespace
(``/var/run/netns/NAME``) it opens a listening socket *inside* it, then serves every
connection from its own namespace, so a registry that listens on this machine's loopback is
reachable at the same address from every node of a test cluster — and an image reference
such as ``127.0.0.1:5000/declarun/busybox:1.35`` means the same image on every node.

A socket keeps the namespace it was made in, so one thread per listener is enough; entering
a namespace (``setns``) changes only the calling thread, and the process goes back to its
own namespace before it serves. Standard library only: the example cluster script runs it
with the system's Python. It prints ``ready`` once every listener is open, and runs until
killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import sys
import threading

__all__ = ["main"]

_CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def _enter(fd: int) -> None:
    if _LIBC.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _listen_in(namespace: str, port: int, home: int) -> socket.socket:
    fd = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    try:
        _enter(fd)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        return listener
    finally:
        _enter(home)
        os.close(fd)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def _serve(listener: socket.socket, port: int) -> None:
    """Accept on ``listener`` forever; each connection goes to ``127.0.0.1:port`` here."""
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()


def main(argv: list[str]) -> int:
    """``PORT[:TARGET][,...] NETNS...``: forward until killed."""
    try:
        pairs = [
            (int(listen), int(target or listen))
            for listen, _, target in (item.partition(":") for item in argv[0].split(","))
        ]
    except (IndexError, ValueError):
        pairs = []
    if len(argv) < 2 or not pairs:
        print("usage: netns_forward.py PORT[:TARGET][,...] NETNS...", file=sys.stderr)
        return 2
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    for name in argv[1:]:
        for listen, target in pairs:
            listener = _listen_in(name, listen, home)
            threading.Thread(target=_serve, args=(listener, target), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
