"""Networks in the metadata database, what started containers hold on them, and which
containers use them.

Table ``networks``: one row per network (the built-ins included) with its name and its
record as JSON (owned by the networks area, :mod:`declarun.daemon.networks.store`).
Table ``network_states``: what one started container holds on the networks -- namespace,
attachments, published host ports -- as JSON, written after its start and at every
connect or disconnect, deleted at the end of its run; crash recovery reads it. Table
``network_endpoints`` lists the networks of each state, written with it, so which
containers are attached to a network is :meth:`NetworkTables.network_users`, the one
answer behind ``network rm``'s "active endpoints", the ``dangling`` filter and prune.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from declarun.daemon.metadata.database import Database

__all__ = ["NetworkRow", "NetworkStateRow", "NetworkTables"]


@dataclass(frozen=True)
class NetworkRow:
    """A network as the database keeps it."""

    id: str
    name: str
    builtin: bool
    created: str
    record: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkStateRow:
    """What a started container holds on the networks (its state document, and the ids of
    the networks it is attached to)."""

    container_id: str
    state: Mapping[str, Any]
    network_ids: tuple[str, ...] = ()


class NetworkTables(Database):
    """Network rows, container network states and their endpoints (part of
    :class:`~declarun.daemon.metadata.Metadata`)."""

    # -- networks ----------------------------------------------------------------------

    def put_network(self, network: NetworkRow) -> None:
        """Insert or replace a network row."""
        with self.transaction():
            self._conn().execute(
                "INSERT INTO networks (id, name, builtin, created, record) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, builtin=excluded.builtin, "
                "created=excluded.created, record=excluded.record",
                _network_columns(network),
            )

    def add_network(self, network: NetworkRow) -> bool:
        """Insert a network row unless its id exists (importing old stores); True if new."""
        with self.transaction():
            cur = self._conn().execute(
                "INSERT OR IGNORE INTO networks (id, name, builtin, created, record) "
                "VALUES (?, ?, ?, ?, ?)",
                _network_columns(network),
            )
            return cur.rowcount > 0

    def list_networks(self) -> list[NetworkRow]:
        """Every network row, by id."""
        rows = (
            self._conn()
            .execute("SELECT id, name, builtin, created, record FROM networks ORDER BY id")
            .fetchall()
        )
        return [NetworkRow(r[0], r[1], bool(r[2]), r[3], json.loads(r[4])) for r in rows]

    def delete_network(self, network_id: str) -> bool:
        """Forget a network row; True if it existed."""
        with self.transaction():
            cur = self._conn().execute("DELETE FROM networks WHERE id = ?", (network_id,))
            return cur.rowcount > 0

    # -- what started containers hold ----------------------------------------------------

    def put_network_state(self, state: NetworkStateRow, *, replace: bool = True) -> None:
        """Store a container's network state and its endpoints (``replace=False``: only if
        it has none yet, when importing old stores)."""
        with self.transaction():
            conn = self._conn()
            on_conflict = "DO UPDATE SET state=excluded.state" if replace else "DO NOTHING"
            cur = conn.execute(
                "INSERT INTO network_states (container_id, state) VALUES (?, ?) "
                f"ON CONFLICT(container_id) {on_conflict}",
                (state.container_id, json.dumps(dict(state.state), sort_keys=True)),
            )
            if cur.rowcount == 0:
                return
            conn.execute(
                "DELETE FROM network_endpoints WHERE container_id = ?", (state.container_id,)
            )
            conn.executemany(
                "INSERT OR IGNORE INTO network_endpoints (container_id, network_id) VALUES (?, ?)",
                [(state.container_id, n) for n in _unique(state.network_ids)],
            )

    def get_network_state(self, container_id: str) -> NetworkStateRow | None:
        """A container's stored network state, or None."""
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT state FROM network_states WHERE container_id = ?", (container_id,)
            ).fetchone()
            if row is None:
                return None
            ids = conn.execute(
                "SELECT network_id FROM network_endpoints WHERE container_id = ? ORDER BY 1",
                (container_id,),
            ).fetchall()
        return NetworkStateRow(container_id, json.loads(row[0]), tuple(i[0] for i in ids))

    def list_network_states(self) -> list[NetworkStateRow]:
        """Every stored network state, by container id."""
        with self._snapshot() as conn:
            rows = conn.execute(
                "SELECT container_id, state FROM network_states ORDER BY 1"
            ).fetchall()
            ids: dict[str, list[str]] = {}
            for cid, network_id in conn.execute(
                "SELECT container_id, network_id FROM network_endpoints ORDER BY 1, 2"
            ):
                ids.setdefault(cid, []).append(network_id)
        return [NetworkStateRow(c, json.loads(s), tuple(ids.get(c, ()))) for c, s in rows]

    def delete_network_state(self, container_id: str) -> bool:
        """Forget a container's network state and endpoints; True if it existed."""
        with self.transaction():
            cur = self._conn().execute(
                "DELETE FROM network_states WHERE container_id = ?", (container_id,)
            )
            return cur.rowcount > 0

    def network_users(self, network_id: str) -> list[str]:
        """IDs of the containers attached to network ``network_id`` (by id)."""
        rows = (
            self._conn()
            .execute(
                "SELECT container_id FROM network_endpoints WHERE network_id = ? ORDER BY 1",
                (network_id,),
            )
            .fetchall()
        )
        return [r[0] for r in rows]


def _network_columns(network: NetworkRow) -> tuple[Any, ...]:
    return (
        network.id,
        network.name,
        int(network.builtin),
        network.created,
        json.dumps(dict(network.record), sort_keys=True),
    )


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
