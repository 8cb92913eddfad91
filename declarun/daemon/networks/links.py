"""Container links (``--link name:alias``), as dockerd keeps them.

* On the default ``bridge`` (legacy links, ``HostConfig.Links``): the linking container
  gets, for each link, an ``/etc/hosts`` line ``<ip> <alias> <hostname> <name>`` and the
  environment dockerd's ``Link.ToEnv`` writes: ``DB_PORT=tcp://ip:port`` (the lowest
  exposed port), ``DB_PORT_80_TCP=tcp://ip:80`` with ``_ADDR``, ``_PORT`` and ``_PROTO``,
  ``DB_NAME=/web/db`` and ``DB_ENV_<KEY>`` for each variable of the linked container but
  ``HOME`` and ``PATH``. The linked container must run when the linking one starts.
* On a user network (``EndpointsConfig.<net>.Links``): only a name, ``alias``, that the
  linking container's embedded DNS resolves to the linked container.

Inspect shows legacy links as ``/<name>:/<container>/<alias>`` (``HostConfig.Links``),
endpoint links as sent (``NetworkSettings.Networks.<net>.Links``).
"""

from __future__ import annotations

from collections.abc import Iterable

from declarun.errdefs import InvalidArgument

__all__ = ["legacy_env", "legacy_hosts_line", "parse_link", "shown_link"]


def parse_link(spec: str) -> tuple[str, str]:
    """``name:alias`` (or ``name``) as ``(name, alias)``, leading slashes dropped."""
    name, _, alias = spec.partition(":")
    name = name.strip("/")
    alias = alias.rsplit("/", 1)[-1] if alias else name
    if not name or not alias:
        raise InvalidArgument(f"invalid link: {spec!r}")
    return name, alias


def shown_link(spec: str, container_name: str) -> str:
    """A legacy link as dockerd's inspect shows it: ``/db:/web/alias``."""
    name, alias = parse_link(spec)
    return f"/{name}:/{container_name}/{alias}"


def _ports(exposed: Iterable[str]) -> list[tuple[int, str]]:
    out = []
    for key in exposed:
        port, _, proto = key.partition("/")
        first, _, last = port.partition("-")
        for number in range(int(first), int(last or first) + 1):
            out.append((number, proto or "tcp"))
    return sorted(set(out), key=lambda p: (p[0], p[1] != "tcp", p[1]))


def legacy_env(
    alias: str,
    link_name: str,
    ip: str,
    exposed_ports: Iterable[str],
    child_env: Iterable[str],
) -> list[str]:
    """The variables a legacy link gives (``link_name``: ``/<container>/<alias>``)."""
    prefix = alias.upper().replace("-", "_")
    ports = _ports(exposed_ports)
    env: list[str] = []
    if ports:
        port, proto = ports[0]
        env.append(f"{prefix}_PORT={proto}://{ip}:{port}")
    for port, proto in ports:
        key = f"{prefix}_PORT_{port}_{proto.upper()}"
        env += [f"{key}={proto}://{ip}:{port}", f"{key}_ADDR={ip}", f"{key}_PORT={port}",
                f"{key}_PROTO={proto}"]  # fmt: skip
    env.append(f"{prefix}_NAME={link_name}")
    for entry in child_env:
        key, sep, value = entry.partition("=")
        if sep and key not in ("HOME", "PATH"):
            env.append(f"{prefix}_ENV_{key}={value}")
    return env


def legacy_hosts_line(ip: str, alias: str, hostname: str, name: str) -> str:
    """The ``/etc/hosts`` line of a legacy link: the alias, the hostname, the name."""
    names = [alias, hostname]
    if alias != name:
        names.append(name)
    return f"{ip}\t{' '.join(dict.fromkeys(names))}"
