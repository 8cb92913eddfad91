"""``declarun daemon check``: is the data root consistent, and ``--repair`` what is not.

The invariants (see ``specs/reliability.md``): every blob an image references exists and
hashes to its digest; every image has its layers' snapshots; nothing is left without an
owner -- no snapshot, mount, lease, ingest, network namespace, CNI attachment or address,
iptables rule, conmon process or runtime container; each container record matches the
runtime's view; each volume a running container uses exists; logs are readable.

Modules: :mod:`.model` (findings, the report), :mod:`.context` (what is checked, for a
running daemon or over a stopped one's data root), :mod:`.host` (mounts, runtime
containers, conmon processes, iptables rules, read from the host), one module per area
(:mod:`.containers`, :mod:`.networking`, :mod:`.volumes`, :mod:`.storage`), and
:mod:`.run`, which runs them and the repairs. The daemon serves it as
``POST /declarun/check`` (``api/check.py``); with the daemon stopped, the CLI runs it
through :func:`declarun.daemon.main.check_data_root` under the data-root lock.
"""

from __future__ import annotations

from declarun.daemon.check.context import CheckContext, offline_context
from declarun.daemon.check.model import CheckReport, Finding, Repaired
from declarun.daemon.check.run import run_check

__all__ = ["CheckContext", "CheckReport", "Finding", "Repaired", "offline_context", "run_check"]
