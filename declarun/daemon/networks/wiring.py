"""Containers on networks: namespaces, CNI attachments, name records, published ports.

:class:`ContainerNetworking` implements the container service's networking seam
(:mod:`declarun.daemon.containers.lifecycle.networking`):

``setup`` at start
    ``host``: nothing (runc stays in the host namespace). ``container:<id>``: join the
    other container's namespace path and share its ``/etc/hosts`` and ``resolv.conf``.
    Otherwise a namespace ``<data-root>/network/netns/<id>`` with ``lo`` up; ``none`` stops
    there. Each network — the primary one (``NetworkMode``) first, then the other
    ``EndpointsConfig`` entries and ``network connect`` additions — is attached through
    CNI as ``eth0``, ``eth1``… The primary one carries the published ports: the host ports
    are bound first (refusing ports in use, choosing random ones), then ``portmap`` is
    given the bound ports and a fixed container address picked here, so the proxy and the
    DNAT rules agree. On user networks the container's name, aliases and short id are
    registered with the embedded DNS, which then serves ``127.0.0.11`` in the namespace;
    the default ``bridge`` has no name resolution, as in Docker. Any failure undoes all.
``teardown`` at every end of a run
    DNS records and listener, host ports, CNI ``DEL`` of every cached attachment of the
    container, the namespace, the stored state. Idempotent, and driven by the CNI cache, so
    it also cleans what a crash left half-done.

What a started container holds is also stored in the metadata database (through
:class:`~declarun.daemon.networks.store.NetworkStore`, which also answers which containers
use a network), from which :meth:`ContainerNetworking.recover` re-registers names,
re-serves DNS and re-binds the same host ports after a daemon restart, and deletes
everything that belongs to no running container (CNI attachments, namespaces, stored
states).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from declarun.daemon import failpoints
from declarun.daemon.containers.lifecycle.networking import NetworkSetup
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.networks import netns as netns_mod
from declarun.daemon.networks.cniconf import build_conflist, runtime_config
from declarun.daemon.networks.configured import (
    Wanted,
    endpoint_settings,
    endpoints_config,
    wanted_networks,
)
from declarun.daemon.networks.errors import NetworkError, PortAllocatedError
from declarun.daemon.networks.ipam_pool import next_free_address
from declarun.daemon.networks.links import legacy_env, legacy_hosts_line, parse_link
from declarun.daemon.networks.ports import Publication, PublishedPort, publish
from declarun.daemon.networks.portspec import published_ports
from declarun.daemon.networks.resolvconf import container_resolv_conf, host_resolv_conf
from declarun.daemon.networks.service import NetworkService
from declarun.daemon.networks.store import AttachedNetwork, LiveState, NetworkRecord
from declarun.daemon.networks.views import network_settings, port_summary
from declarun.errdefs import Conflict, Forbidden, InvalidArgument, NotFound, SystemFailure

__all__ = ["ContainerNetworking"]

log = logging.getLogger("declarun.daemon.networks")


_MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")


def _check_mac(raw: Any) -> None:
    mac = raw.get("MacAddress") if isinstance(raw, Mapping) else None
    if mac and (not isinstance(mac, str) or not _MAC.match(mac)):
        raise InvalidArgument(f"invalid MAC address: {mac}")


class ContainerNetworking:
    """The networking of every container of one daemon (see the module docstring)."""

    def __init__(self, networks: NetworkService, containers: Any) -> None:
        self.networks = networks
        self.containers = containers
        self._live: dict[str, LiveState] = {}
        self._publications: dict[str, Publication] = {}
        self._net_locks: dict[str, asyncio.Lock] = {}
        # Serialises namespace creation with the release of the namespace directory's
        # mount, which happens when the last namespace goes.
        self._netns_lock = asyncio.Lock()

    # -- configuration ---------------------------------------------------------------------

    def wanted(self, rec: ContainerRecord) -> list[Wanted]:
        """The networks of a bridge-mode container, primary first (unknown ones skipped)."""
        return wanted_networks(self.networks, rec)

    def validate(self, rec: ContainerRecord) -> None:
        """Docker's create-time checks of ``NetworkMode`` and ``EndpointsConfig``."""
        mode = rec.host_config.network_mode
        if mode.startswith("container:"):
            self.containers.get(mode.partition(":")[2])
            if rec.host_config.port_bindings or rec.host_config.publish_all_ports:
                raise Conflict(
                    "conflicting options: port publishing and the container type network mode"
                )
            return
        if mode not in ("host", "none"):
            record = self.networks.get(mode)
            if record.driver != "bridge":
                raise InvalidArgument(f"network mode {mode!r} is not valid")
        if mode == "bridge":
            for spec in rec.host_config.links:
                name, _alias = parse_link(spec)
                try:
                    self.containers.get(name)
                except NotFound as exc:
                    raise InvalidArgument(f"could not get container for {name}: {exc}") from None
        for key, raw in endpoints_config(rec).items():
            record = self.networks.get(key)
            _aliases, ip = endpoint_settings(raw)
            if ip:
                self._check_ip(record, ip)
            _check_mac(raw)
        _check_mac({"MacAddress": rec.config.mac_address})
        if mode == "host" and (rec.host_config.port_bindings or rec.host_config.publish_all_ports):
            log.info("published ports are discarded in host network mode (container %s)", rec.id)

    def _check_ip(self, record: NetworkRecord, ip: str) -> ipaddress.IPv4Address:
        if record.builtin or not record.configured:
            raise InvalidArgument(
                "user specified IP address is supported only when connecting to networks "
                "with user configured subnets"
            )
        try:
            address = ipaddress.IPv4Address(ip)
        except ValueError:
            raise InvalidArgument(f"invalid IPv4 address: {ip}") from None
        assert record.subnet is not None
        if address not in record.subnet:
            raise InvalidArgument(f"no configured subnet contains IP address {ip}")
        return address

    # -- start -----------------------------------------------------------------------------

    def netns_path(self, container_id: str) -> Path:
        """Where a container's namespace is pinned."""
        return netns_mod.netns_dir(self.networks.run_dir) / container_id

    async def setup(self, rec: ContainerRecord) -> NetworkSetup:
        """Attach a starting container (see the module docstring)."""
        mode = rec.host_config.network_mode
        if mode == "host":
            return NetworkSetup()
        if mode.startswith("container:"):
            return self._join(rec, mode.partition(":")[2])
        await self.teardown(rec)  # leftovers of a run the daemon did not see end
        link_hosts, link_env = self._legacy_links(rec)
        path = self.netns_path(rec.id)
        async with self._netns_lock:
            await asyncio.to_thread(netns_mod.create_netns, self.networks.run_dir, rec.id)
        state = LiveState(rec.id, str(path))
        self._live[rec.id] = state
        try:
            await self.networks.cni.setup_loopback(path, rec.id)
            wanted = self.wanted(rec) if mode != "none" else []
            for index, want in enumerate(wanted):
                ports: list[PublishedPort] = []
                if index == 0:
                    ports = published_ports(
                        rec.host_config.port_bindings,
                        rec.config.exposed_ports,
                        rec.host_config.publish_all_ports,
                    )
                await self._attach(rec, state, want, ports)
            self.networks.dns.set_links(rec.id, self._endpoint_links(wanted))
            await self._serve_dns(rec, state)
            self.networks.store.save_live(state)
        except BaseException:
            try:
                await self.teardown(rec)
            except Exception:  # the setup's own error is the one to report; log this one
                log.exception("undoing the network of %s after a failed setup", rec.id[:12])
            raise
        return dataclasses.replace(
            self._setup_of(rec, state), link_hosts=link_hosts, link_env=link_env
        )

    def _legacy_links(self, rec: ContainerRecord) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``/etc/hosts`` lines and variables of the legacy links (default bridge only);
        every linked container must run (dockerd's message otherwise)."""
        hc = rec.host_config
        bridge = self.networks.find("bridge")
        if not hc.links or hc.network_mode != "bridge" or bridge is None:
            return (), ()
        hosts: list[str] = []
        env: list[str] = []
        for spec in hc.links:
            name, alias = parse_link(spec)
            child = self.containers.get(name)
            state = self._live.get(child.id)
            attached = state.networks.get(bridge.id) if state is not None else None
            if not child.state.running or attached is None:
                raise SystemFailure(
                    f"Cannot link to a non running container: /{child.name} AS /{rec.name}/{alias}"
                )
            ip = str(attached.address.ip)
            hosts.append(legacy_hosts_line(ip, alias, child.config.hostname, child.name))
            env += legacy_env(alias, f"/{rec.name}/{alias}", ip, child.config.exposed_ports,
                              child.config.env)  # fmt: skip
        return tuple(hosts), tuple(env)

    def _endpoint_links(self, wanted: list[Wanted]) -> dict[str, str]:
        """Link alias -> linked container id, from the endpoints' ``Links`` (user networks;
        a link to a container that does not exist is ignored, as dockerd ignores it)."""
        links: dict[str, str] = {}
        for want in wanted:
            for spec in want.links:
                name, alias = parse_link(spec)
                try:
                    links[alias] = self.containers.get(name).id
                except NotFound:
                    continue
        return links

    def _join(self, rec: ContainerRecord, ref: str) -> NetworkSetup:
        other = self.containers.get(ref)
        if not other.state.running:
            raise Conflict(f"cannot join network of a non running container: {other.id}")
        if other.host_config.network_mode == "host":
            raise Conflict(f"cannot join the network of container {other.id}: it uses the host's")
        state = self._live.get(other.id)
        if state is None:
            raise Conflict(f"cannot join network of container {other.id}: it has no namespace")
        return NetworkSetup(
            netns=state.netns,
            resolv_conf=_read(other.etc_file("resolv.conf")),
            hosts=_read(other.etc_file("hosts")),
        )

    def _setup_of(self, rec: ContainerRecord, state: LiveState) -> NetworkSetup:
        addresses = tuple(str(n.address.ip) for n in state.networks.values())
        resolv = None
        if self._embedded(state):
            hc = rec.host_config
            resolv = container_resolv_conf(
                host_resolv_conf(), embedded=True, dns=hc.dns, dns_search=hc.dns_search,
                dns_options=hc.dns_options,
            )  # fmt: skip
        return NetworkSetup(netns=state.netns, addresses=addresses, resolv_conf=resolv)

    def _embedded(self, state: LiveState) -> bool:
        for net_id in state.networks:
            record = self.networks.find(net_id)
            if record is not None and not record.is_default_bridge:
                return True
        return False

    def _pick_ip(self, record: NetworkRecord) -> ipaddress.IPv4Address:
        assert record.subnet is not None
        pool = record.ip_range or record.subnet
        taken = set(self.networks.cni.leases(record.id))
        taken.update((record.subnet.network_address, record.subnet.broadcast_address))
        if record.gateway is not None:
            taken.add(record.gateway)
        taken.update(ipaddress.IPv4Address(a) for a in record.aux_addresses.values())
        # In rotation after host-local's last address, not lowest-first: see next_free_address.
        address = next_free_address(pool, taken, self.networks.cni.last_reserved(record.id))
        if address is not None:
            return address
        raise NetworkError(f"no available IPv4 addresses on network {record.name}")

    async def _attach(
        self,
        rec: ContainerRecord,
        state: LiveState,
        want: Wanted,
        ports: list[PublishedPort],
    ) -> AttachedNetwork:
        record = want.network
        used = {n.ifname for n in state.networks.values()}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        ip = self._check_ip(record, want.ip) if want.ip else None
        lock = self._net_locks.setdefault(record.id, asyncio.Lock())
        publication: Publication | None = None
        async with lock:
            record = await self.networks.claim_subnet(record)
            await self.networks.ensure_outbound_nat(record)
            spec = self.networks.spec(record)
            if ip is None and (ports or record.aux_addresses):
                # host-local cannot skip single addresses: the daemon picks around them.
                ip = self._pick_ip(record)
            try:
                if ports:
                    assert ip is not None
                    publication = await publish(ports, ip)
                conflist = build_conflist(
                    spec, self.networks.cni.ipam_dir, port_mappings=bool(ports),
                    firewall=self.networks.firewall,
                )  # fmt: skip
                mappings = publication.port_mappings() if publication else []
                result = await self.networks.cni.add(
                    conflist, network_id=record.id, container_id=rec.id,
                    netns=Path(state.netns), ifname=ifname,
                    runtime_config=runtime_config(mappings, ip, record.subnet, want.mac),
                )  # fmt: skip
            except PortAllocatedError as exc:
                raise NetworkError(
                    f"driver failed programming external connectivity on endpoint {rec.name} "
                    f"({rec.id}): {exc}"
                ) from None
            except BaseException:
                if publication is not None:
                    await publication.close()
                raise
        attached = AttachedNetwork(
            network_id=record.id, ifname=ifname, address=result.address,
            gateway=result.gateway or record.gateway, mac=result.mac,
            endpoint_id=secrets.token_hex(32), aliases=want.aliases, requested_ip=want.ip,
        )  # fmt: skip
        state.networks[record.id] = attached
        if publication is not None:
            self._publications[rec.id] = publication
            state.ports = [
                (p.container_port, p.protocol, p.host_ip, p.host_port) for p in publication.ports
            ]
            state.ports_network = record.id
        self._register(rec, attached)
        self.networks.events.publish(
            "network", "connect", record.id,
            {"container": rec.id, "name": record.name, "type": record.driver},
        )  # fmt: skip
        return attached

    def _register(self, rec: ContainerRecord, attached: AttachedNetwork) -> None:
        self.networks.members.setdefault(attached.network_id, {})[rec.id] = (rec.name, attached)
        record = self.networks.find(attached.network_id)
        if record is not None and not record.is_default_bridge:
            names = (rec.name, *attached.aliases, rec.short_id)
            self.networks.dns.set_endpoint(record.id, rec.id, names, attached.address.ip)

    async def _serve_dns(self, rec: ContainerRecord, state: LiveState) -> None:
        if not self._embedded(state):
            return
        forward = any(not (r := self.networks.find(n)) or not r.internal for n in state.networks)
        upstreams = tuple((ns, 53) for ns in rec.host_config.dns) or None
        await self.networks.dns.serve(
            rec.id, Path(state.netns), forward=forward, upstreams=upstreams
        )

    # -- stop ------------------------------------------------------------------------------

    async def teardown(self, rec: ContainerRecord) -> None:
        """Release everything the container's run holds (idempotent)."""
        await self._release(rec.id, rec.host_config.network_mode)

    async def _release(self, container_id: str, mode: str = "") -> None:
        if mode.startswith("container:") or mode == "host":
            return
        state = self._live.pop(container_id, None) or self.networks.store.load_live(container_id)
        publication = self._publications.pop(container_id, None)
        if publication is not None:
            await publication.close()
        await self.networks.dns.stop(container_id)
        self.networks.dns.set_links(container_id, {})
        network_ids = set(state.networks) if state is not None else set()
        network_ids.update(
            p.parent.name for p in self.networks.cni.cache_dir.glob(f"*/{container_id}.json")
        )
        for net_id in network_ids:
            await self._detach(container_id, net_id)
        path = self.netns_path(container_id)
        if path.exists():
            await asyncio.to_thread(netns_mod.remove_netns, path)
            await self._release_netns_dir()
        self.networks.store.delete_live(container_id)

    async def _release_netns_dir(self) -> None:
        """Unmount the namespace directory once it is empty: a daemon without running
        containers keeps no mount under its data root."""
        async with self._netns_lock:
            if netns_mod.no_netns(self.networks.run_dir):
                with contextlib.suppress(NetworkError):
                    await asyncio.to_thread(netns_mod.release_netns_dir, self.networks.run_dir)

    async def _detach(self, container_id: str, network_id: str) -> None:
        self.networks.dns.remove_endpoint(network_id, container_id)
        members = self.networks.members.get(network_id)
        if members is not None:
            members.pop(container_id, None)
        try:
            await self.networks.cni.delete(network_id, container_id)
        except NetworkError as exc:
            log.warning("detaching %s from %s: %s", container_id[:12], network_id[:12], exc)
        record = self.networks.find(network_id)
        if record is not None:
            self.networks.events.publish(
                "network", "disconnect", network_id,
                {"container": container_id, "name": record.name, "type": record.driver},
            )  # fmt: skip

    # -- connect / disconnect --------------------------------------------------------------

    async def connect(self, record: NetworkRecord, rec: ContainerRecord, raw: Any) -> None:
        """``POST /networks/{id}/connect``: now if the container runs, else at its start."""
        mode = rec.host_config.network_mode
        if record.driver != "bridge" or mode in ("host", "none") or mode.startswith("container:"):
            raise InvalidArgument(
                "container cannot be disconnected from host network or connected to host network"
                if "host" in (record.name, mode)
                else f"container sharing network namespace with another container or "
                f"in network mode {mode!r} cannot be connected to network {record.name}"
            )
        configured = any(w.network.id == record.id for w in self.wanted(rec))
        if configured and rec.state.running:
            raise Forbidden(
                f"endpoint with name {rec.name} already exists in network {record.name}"
            )
        aliases, ip = endpoint_settings(raw)
        if ip:
            self._check_ip(record, ip)
        _check_mac(raw)
        # A container that does not run only has its endpoint configuration replaced
        # (dockerd's answer to a second connect before the start).
        if record.id in rec.detached_networks:
            rec.detached_networks.remove(record.id)
        state = self._live.get(rec.id)
        if rec.state.running and state is not None:
            mac = raw.get("MacAddress") if isinstance(raw, Mapping) else ""
            await self._attach(rec, state, Wanted(record, aliases, ip, mac=str(mac or "")), [])
            failpoints.hit("network-connect-midway")
            await self._serve_dns(rec, state)
            self.networks.store.save_live(state)
        endpoints = {
            k: v for k, v in endpoints_config(rec).items() if self.networks.find(k) is not record
        }
        endpoints[record.name] = dict(raw) if isinstance(raw, Mapping) else {}
        self._store_endpoints(rec, endpoints)

    async def disconnect(self, record: NetworkRecord, rec: ContainerRecord) -> None:
        """``POST /networks/{id}/disconnect``."""
        configured = any(w.network.id == record.id for w in self.wanted(rec))
        state = self._live.get(rec.id)
        live = state is not None and record.id in state.networks
        if not configured and not live:
            raise Forbidden(f"container {rec.id} is not connected to network {record.name}")
        if state is not None and live:
            state.networks.pop(record.id, None)
            if state.ports_network == record.id:
                publication = self._publications.pop(rec.id, None)
                if publication is not None:
                    await publication.close()
                state.ports, state.ports_network = [], ""
            await self._detach(rec.id, record.id)
            failpoints.hit("network-disconnect-midway")
            if not self._embedded(state):
                await self.networks.dns.stop(rec.id)
            self.networks.store.save_live(state)
        endpoints = {
            k: v for k, v in endpoints_config(rec).items() if self.networks.find(k) is not record
        }
        primary = self.networks.find(rec.host_config.network_mode)
        if primary is not None and primary.id == record.id:
            # The NetworkMode network stays the container's mode (inspect shows it), but
            # the container is off it -- now and at later starts -- until connected again,
            # as with dockerd (docker-compose disconnects and connects it before a start).
            rec.detached_networks.append(record.id)
        self._store_endpoints(rec, endpoints)

    def _store_endpoints(self, rec: ContainerRecord, endpoints: dict[str, Any]) -> None:
        networking = rec.request.get("NetworkingConfig")
        if not isinstance(networking, dict):
            networking = {}
            rec.request["NetworkingConfig"] = networking
        networking["EndpointsConfig"] = endpoints
        self.containers.store.save(rec)

    # -- views -----------------------------------------------------------------------------

    def settings(self, rec: ContainerRecord, *, summary: bool) -> dict[str, Any]:
        """``NetworkSettings`` as Docker shows them."""
        state = self._live.get(rec.id) if rec.state.running else None
        return network_settings(self.networks, rec, state, summary=summary)

    def port_summary(self, rec: ContainerRecord) -> list[dict[str, Any]]:
        """``Ports`` of ``docker ps``."""
        state = self._live.get(rec.id) if rec.state.running else None
        return port_summary(rec, state)

    def live(self, container_id: str) -> LiveState | None:
        """A running container's live state."""
        return self._live.get(container_id)

    # -- daemon start ----------------------------------------------------------------------

    async def recover(self, running: Iterable[ContainerRecord]) -> None:
        """After the containers were restored: keep what running containers hold, re-serve
        their names and ports, and delete every other leftover (see the module docstring)."""
        by_id = {rec.id: rec for rec in running}
        kept: set[str] = set()
        # Read once (a restart with 1,000 running containers would otherwise read every
        # cached attachment once per container); a release below only drops the released
        # container's own entries, so the others' stay true.
        attached_to: dict[str, set[str]] = {}
        for entry in self.networks.cni.attachments():
            attached_to.setdefault(entry.container_id, set()).add(entry.network_id)
        for state in self.networks.store.all_live():
            rec = by_id.get(state.container_id)
            if rec is None or not Path(state.netns).exists():
                await self._release(state.container_id)
                continue
            kept.add(rec.id)
            self._settle_cut_short(state, attached_to.get(state.container_id, set()))
            self._live[rec.id] = state
            for attached in state.networks.values():
                self._register(rec, attached)
            try:
                await self._serve_dns(rec, state)
                if state.ports and state.ports_network in state.networks:
                    ip = state.networks[state.ports_network].address.ip
                    wanted = [
                        PublishedPort(c, proto, hip, hport) for c, proto, hip, hport in state.ports
                    ]
                    self._publications[rec.id] = await publish(wanted, ip)
            except (NetworkError, OSError) as exc:  # a port taken meanwhile: the rest goes on
                log.error("restoring the network of container %s: %s", rec.id[:12], exc)
            except Exception:  # a daemon fault: logged, the other containers are restored
                log.exception("restoring the network of container %s failed", rec.id[:12])
        for failure in await self.networks.cni.cleanup(keep=frozenset(kept)):
            log.warning("cleaning a leftover CNI attachment: %s", failure)
        # A connect cut short attached a running container that its live state does not
        # list: detach it (the connect, tried again, attaches it afresh).
        for entry in self.networks.cni.attachments():
            holder = self._live.get(entry.container_id)
            if holder is not None and entry.network_id not in holder.networks:
                try:
                    await self.networks.cni.delete(entry.network_id, entry.container_id)
                except NetworkError as exc:
                    log.warning("detaching a connect cut short: %s", exc)
        for path in netns_mod.list_netns(self.networks.run_dir):
            if path.name not in kept:
                with contextlib.suppress(NetworkError):
                    await asyncio.to_thread(netns_mod.remove_netns, path)
        await self._release_netns_dir()

    def _settle_cut_short(self, state: LiveState, cached: set[str]) -> None:
        """Forget the networks a disconnect cut short had already detached (CNI has no
        attachment for them any more: ``cached`` holds the networks it has one for), and
        save the state so."""
        gone = [network_id for network_id in state.networks if network_id not in cached]
        if not gone:
            return
        for network_id in gone:
            state.networks.pop(network_id, None)
            if state.ports_network == network_id:
                state.ports, state.ports_network = [], ""
        self.networks.store.save_live(state)

    async def close(self) -> None:
        """Daemon shutdown: stop serving DNS and proxying; containers keep their network."""
        await self.networks.dns.close()
        for publication in self._publications.values():
            await publication.close()
        self._publications.clear()


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
