"""A small CNI driver: run the plugins of a configuration list, cache what they returned.

There is no libcni for Python, so this is the part of it declarund needs, following the CNI
1.0 spec: for ``ADD`` each plugin of the list is executed in order with ``CNI_COMMAND``,
``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME`` and ``CNI_PATH`` in its environment and
its configuration on stdin — the list's ``cniVersion`` and ``name``, the ``runtimeConfig``
entries for the capabilities it declares, and the previous plugin's result as
``prevResult``. ``DEL`` runs the list in reverse with the cached ``ADD`` result as
``prevResult``; ``CHECK`` runs it in order with the same.

The cache (``<state>/cache/<network id>/<container id>.json``) holds the exact list, the
arguments and the result of every attachment. It is written *before* ``ADD`` (an intent)
and again with the result, so after a daemon crash — even one in the middle of an ``ADD`` —
:meth:`CniDriver.cleanup` can ``DEL`` every attachment with what was really configured and
release leases, veths, masquerade and port rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declarun.daemon.networks.cniconf import LOOPBACK_CONFLIST, cni_network_name
from declarun.daemon.networks.errors import CniPluginError, NetworkError

log = logging.getLogger("declarun.daemon.networks")

__all__ = [
    "DEFAULT_PLUGIN_DIRS",
    "AttachResult",
    "CachedAttachment",
    "CniDriver",
]

DEFAULT_PLUGIN_DIRS = ("/usr/lib/cni", "/usr/libexec/cni", "/opt/cni/bin")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class AttachResult:
    """The container side of an attachment, taken from the final CNI result."""

    ifname: str
    mac: str
    address: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address | None
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, result: Mapping[str, Any], ifname: str) -> AttachResult:
        """Find ``ifname``'s address and MAC in a CNI 1.0 result."""
        interfaces = result.get("interfaces") or []
        index = next(
            (
                i
                for i, itf in enumerate(interfaces)
                if itf.get("name") == ifname and itf.get("sandbox")
            ),
            None,
        )
        for entry in result.get("ips") or []:
            if index is not None and entry.get("interface") not in (None, index):
                continue
            address = ipaddress.ip_interface(entry["address"])
            if isinstance(address, ipaddress.IPv4Interface):
                gateway = entry.get("gateway")
                mac = interfaces[index].get("mac", "") if index is not None else ""
                return cls(
                    ifname,
                    mac,
                    address,
                    ipaddress.IPv4Address(gateway) if gateway else None,
                    result,
                )
        raise NetworkError(f"CNI result has no IPv4 address for {ifname}")


@dataclass(frozen=True)
class CachedAttachment:
    """One cache entry: everything needed to ``DEL`` an attachment later."""

    network_id: str
    container_id: str
    netns: str
    ifname: str
    conflist: Mapping[str, Any]
    runtime_config: Mapping[str, Any]
    result: Mapping[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The cache file's content."""
        return {
            "networkId": self.network_id,
            "containerId": self.container_id,
            "netns": self.netns,
            "ifName": self.ifname,
            "config": self.conflist,
            "runtimeConfig": self.runtime_config,
            "result": self.result,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CachedAttachment:
        """Read a cache file's content back."""
        return cls(
            data["networkId"],
            data["containerId"],
            data["netns"],
            data["ifName"],
            data["config"],
            data.get("runtimeConfig") or {},
            data.get("result"),
        )


class CniDriver:
    """Runs CNI plugins for declarund and keeps the attachment cache.

    ``state_dir`` is declarund's networking state under the data root (``<data-root>/
    network``): ``cache/`` for attachments and ``ipam/`` for host-local's leases.
    """

    def __init__(self, state_dir: Path, plugin_dirs: Sequence[str] = DEFAULT_PLUGIN_DIRS):
        self.state_dir = state_dir
        self.plugin_dirs = tuple(plugin_dirs)
        self.cache_dir = state_dir / "cache"
        self.ipam_dir = state_dir / "ipam"

    # -- public API -------------------------------------------------------------------------

    async def add(
        self,
        conflist: Mapping[str, Any],
        *,
        network_id: str,
        container_id: str,
        netns: Path,
        ifname: str,
        runtime_config: Mapping[str, Any] | None = None,
    ) -> AttachResult:
        """Attach the namespace to the network; on failure undo what was done and raise."""
        entry = CachedAttachment(
            network_id, container_id, str(netns), ifname, conflist, runtime_config or {}, None
        )
        self._store(entry)
        result: dict[str, Any] | None = None
        try:
            for plugin in conflist["plugins"]:
                result = await self._exec("ADD", conflist, plugin, entry, result)
            if result is None:
                raise NetworkError("the CNI configuration list has no plugins")
            attached = AttachResult.parse(result, ifname)
        except BaseException:
            # The spec asks the runtime to DEL after a failed ADD; the cache entry already
            # holds the arguments, so a crash here is cleaned at the next start.
            try:
                await self._delete(CachedAttachment(**{**entry.__dict__, "result": result}))
            except NetworkError as exc:  # the ADD's error is the one to report
                log.warning("DEL after a failed ADD of %s: %s", entry.container_id[:12], exc)
            raise
        self._store(CachedAttachment(**{**entry.__dict__, "result": result}))
        return attached

    async def delete(self, network_id: str, container_id: str) -> None:
        """Detach: ``DEL`` from the cached attachment. A missing entry is already detached."""
        entry = self.cached(network_id, container_id)
        if entry is not None:
            await self._delete(entry)

    async def check(self, network_id: str, container_id: str) -> None:
        """``CHECK`` the cached attachment; raises :class:`CniPluginError` if it drifted."""
        entry = self.cached(network_id, container_id)
        if entry is None or entry.result is None:
            raise NetworkError(
                f"container {container_id[:12]} is not attached to {network_id[:12]}"
            )
        for plugin in entry.conflist["plugins"]:
            await self._exec("CHECK", entry.conflist, plugin, entry, dict(entry.result))

    async def setup_loopback(self, netns: Path, container_id: str) -> None:
        """Bring ``lo`` up in the namespace through the ``loopback`` plugin (never cached)."""
        entry = CachedAttachment(
            "loopback", container_id, str(netns), "lo", LOOPBACK_CONFLIST, {}, None
        )
        await self._exec("ADD", LOOPBACK_CONFLIST, LOOPBACK_CONFLIST["plugins"][0], entry, None)

    def cached(self, network_id: str, container_id: str) -> CachedAttachment | None:
        """The cache entry of one attachment, or ``None``."""
        path = self._cache_path(network_id, container_id)
        try:
            return CachedAttachment.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            raise NetworkError(f"corrupt CNI cache entry {path}") from None

    def attachments(self, network_id: str | None = None) -> list[CachedAttachment]:
        """Every cached attachment (readable ones), sorted by network then container; with
        ``network_id``, that network's only (its directory alone is read)."""
        found: list[CachedAttachment] = []
        if network_id is None:
            if not self.cache_dir.is_dir():
                return found
            paths = sorted(self.cache_dir.glob("*/*.json"))
        else:
            paths = sorted(self._network_dir(network_id).glob("*.json"))
        for path in paths:
            with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
                entry = CachedAttachment.from_json(json.loads(path.read_text()))
                if network_id is None or entry.network_id == network_id:
                    found.append(entry)
        return found

    def has_attachments(self, network_id: str) -> bool:
        """Whether anything is attached to the network: the first readable entry of its
        directory answers (asked at every attachment, so it reads neither every cached
        attachment of the daemon nor every one of the network)."""
        try:
            scan = os.scandir(self._network_dir(network_id))
        except OSError:
            return False
        with scan:
            for item in scan:
                if not item.name.endswith(".json"):
                    continue
                with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
                    entry = CachedAttachment.from_json(json.loads(Path(item.path).read_text()))
                    if entry.network_id == network_id:
                        return True
        return False

    async def cleanup(self, keep: frozenset[str] = frozenset()) -> list[NetworkError]:
        """``DEL`` every cached attachment whose container id is not in ``keep``.

        For start-up after a crash. Returns the failures (their entries stay cached, so
        the next start retries) instead of stopping at the first.
        """
        failures: list[NetworkError] = []
        for entry in self.attachments():
            if entry.container_id in keep:
                continue
            try:
                await self._delete(entry)
            except NetworkError as exc:
                failures.append(exc)
        return failures

    async def remove_network(self, network_id: str, bridge: str) -> None:
        """Remove what a network leaves on the host once nothing is attached: its bridge,
        host-local's lease directory and its (empty) cache directory. Idempotent."""
        leftovers = [e.container_id[:12] for e in self.attachments(network_id)]
        if leftovers:
            raise NetworkError(
                f"network {network_id[:12]} still has attachments: {', '.join(leftovers)}"
            )
        if os.path.exists(f"/sys/class/net/{bridge}"):
            proc = await asyncio.create_subprocess_exec(
                "ip",
                "link",
                "delete",
                bridge,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            if proc.returncode != 0 and os.path.exists(f"/sys/class/net/{bridge}"):
                raise NetworkError(
                    f"cannot delete bridge {bridge}: {err.decode(errors='replace').strip()}"
                )
        shutil.rmtree(self.ipam_dir / cni_network_name(network_id), ignore_errors=True)
        with contextlib.suppress(OSError):
            self._network_dir(network_id).rmdir()

    def leases(self, network_id: str) -> dict[ipaddress.IPv4Address, str]:
        """host-local's current leases of a network: address → container id."""
        found: dict[ipaddress.IPv4Address, str] = {}
        directory = self.ipam_dir / cni_network_name(network_id)
        if not directory.is_dir():
            return found
        for path in directory.iterdir():
            try:
                address = ipaddress.IPv4Address(path.name)
            except ValueError:
                continue  # "lock", "last_reserved_ip.0"
            with contextlib.suppress(OSError):
                words = path.read_text().split()
                found[address] = words[0] if words else ""
        return found

    def last_reserved(self, network_id: str) -> ipaddress.IPv4Address | None:
        """The address host-local handed out last on a network (None when unknown)."""
        path = self.ipam_dir / cni_network_name(network_id) / "last_reserved_ip.0"
        try:
            return ipaddress.IPv4Address(path.read_text().strip())
        except (OSError, ValueError):
            return None

    # -- internals --------------------------------------------------------------------------

    async def _delete(self, entry: CachedAttachment) -> None:
        first: NetworkError | None = None
        prev = dict(entry.result) if entry.result is not None else None
        for plugin in reversed(entry.conflist["plugins"]):
            try:
                await self._exec("DEL", entry.conflist, plugin, entry, prev)
            except NetworkError as exc:
                # Keep going: the other plugins' state must still be released.
                first = first or exc
        if first is not None:
            raise first
        self._cache_path(entry.network_id, entry.container_id).unlink(missing_ok=True)

    async def _exec(
        self,
        command: str,
        conflist: Mapping[str, Any],
        plugin: Mapping[str, Any],
        entry: CachedAttachment,
        prev: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        kind = str(plugin["type"])
        config: dict[str, Any] = {
            **plugin,
            "cniVersion": conflist["cniVersion"],
            "name": conflist["name"],
        }
        wanted = {k for k, on in (plugin.get("capabilities") or {}).items() if on}
        runtime = {k: v for k, v in entry.runtime_config.items() if k in wanted}
        if runtime:
            config["runtimeConfig"] = runtime
        if prev is not None:
            config["prevResult"] = prev
        env = {
            "PATH": os.environ.get("PATH", _DEFAULT_PATH),
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": entry.container_id,
            "CNI_NETNS": entry.netns if os.path.exists(entry.netns) else "",
            "CNI_IFNAME": entry.ifname,
            "CNI_PATH": os.pathsep.join(self.plugin_dirs),
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                self._find(kind),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise CniPluginError(kind, command, f"cannot execute: {exc.strerror}") from None
        out, err = await proc.communicate(json.dumps(config).encode())
        if proc.returncode != 0:
            raise _plugin_error(kind, command, out, err)
        if not out.strip():
            return dict(prev or {})
        try:
            parsed = json.loads(out)
        except ValueError:
            raise CniPluginError(kind, command, "printed a result that is not JSON") from None
        return parsed if isinstance(parsed, dict) else dict(prev or {})

    def _find(self, kind: str) -> str:
        if "/" in kind or not kind:
            raise CniPluginError(kind, "find", "invalid plugin type")
        for directory in self.plugin_dirs:
            path = os.path.join(directory, kind)
            if os.access(path, os.X_OK):
                return path
        raise CniPluginError(kind, "find", f"not found in {', '.join(self.plugin_dirs)}")

    def _network_dir(self, network_id: str) -> Path:
        return self._cache_path(network_id, "x").parent

    def _cache_path(self, network_id: str, container_id: str) -> Path:
        for part in (network_id, container_id):
            if not part or "/" in part or part.startswith("."):
                raise NetworkError(f"invalid id {part!r}")
        return self.cache_dir / network_id / f"{container_id}.json"

    def _store(self, entry: CachedAttachment) -> None:
        path = self._cache_path(entry.network_id, entry.container_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            # No fsync: a rename is atomic against a daemon crash, the case this serves;
            # after a power loss the namespaces are gone anyway.
            json.dump(entry.to_json(), handle)
        os.replace(tmp, path)


def _plugin_error(kind: str, command: str, out: bytes, err: bytes) -> CniPluginError:
    """The plugin's JSON error (``code``, ``msg``, ``details``), or its stderr."""
    try:
        data = json.loads(out)
        if isinstance(data, dict) and "msg" in data:
            return CniPluginError(
                kind,
                command,
                str(data["msg"]),
                int(data.get("code") or 0),
                str(data.get("details") or ""),
            )
    except ValueError:
        pass
    text = (err or out).decode(errors="replace").strip() or "exited with an error"
    return CniPluginError(kind, command, text[-2000:])
