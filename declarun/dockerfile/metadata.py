"""Checks and conversions dockerd applies to ``EXPOSE`` ports and ``STOPSIGNAL`` values.

``EXPOSE 80 53/udp 8000-8002`` becomes the ``ExposedPorts`` keys ``80/tcp``, ``53/udp``,
``8000/tcp`` ... (go-connections' ``nat.ParsePortSpecs``); a stop signal is a number or a
Linux signal name with or without ``SIG`` (moby's ``signal.ParseSignal``).
"""

from __future__ import annotations

import re
import signal as signals

from declarun.errdefs import InvalidArgument

__all__ = ["check_stop_signal", "exposed_port_keys"]

_PORT = re.compile(r"^(\d+)(?:-(\d+))?$")
_PROTOCOLS = ("tcp", "udp", "sctp")
_SIGNALS = frozenset(
    name.removeprefix("SIG")
    for name in dir(signals)
    if name.startswith("SIG") and not name.startswith("SIG_") and name.isupper()
) | {"RTMIN", "RTMAX"}


def _port_number(text: str, spec: str) -> int:
    value = int(text)
    if value > 65535:
        raise InvalidArgument(f"Invalid containerPort: {spec}")
    return value


def exposed_port_keys(specs: list[str]) -> list[str]:
    """The ``ExposedPorts`` keys for ``EXPOSE`` words (``80`` -> ``80/tcp``; ranges expand)."""
    keys: list[str] = []
    for spec in specs:
        text, _, protocol = spec.rpartition("/") if "/" in spec else (spec, "", "tcp")
        protocol = protocol.lower()
        if protocol not in _PROTOCOLS:
            raise InvalidArgument(f"Invalid proto: {protocol}")
        # ip:hostPort:containerPort forms are accepted by Docker; only the last part counts.
        port_text = text.rsplit(":", 1)[-1]
        found = _PORT.match(port_text)
        if found is None:
            raise InvalidArgument(f"Invalid containerPort: {spec}")
        start = _port_number(found.group(1), spec)
        end = _port_number(found.group(2), spec) if found.group(2) else start
        if end < start:
            raise InvalidArgument(f"Invalid range specified for the Port: {spec}")
        keys.extend(f"{port}/{protocol}" for port in range(start, end + 1))
    return keys


def check_stop_signal(value: str) -> None:
    """Raise InvalidArgument unless ``value`` is a signal number or a Linux signal name."""
    if value.isdigit():
        if int(value) == 0:
            raise InvalidArgument(f"Invalid signal: {value}")
        return
    name = value.upper().removeprefix("SIG")
    if name.startswith(("RTMIN+", "RTMAX-")) and name[6:].isdigit():
        return
    if name not in _SIGNALS:
        raise InvalidArgument(f"Invalid signal: {value}")
