"""A bounded schemathesis run against a live declarund (see ``tests/hostile/apifuzz.py``).

Every operation declarund implements gets positive and negative generated requests
(``EXAMPLES`` each, so ~2,400 requests in all). Afterwards: no undocumented 5xx and every
error is Docker's JSON, no traceback in the daemon's log, the daemon still answers
``/_ping``, and nothing outside its data root changed (the directory around it, a decoy
tree beside it, the host's ``/`` and ``/etc``, mounts outside the data root).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.daemon.containers.daemon_fixtures import mounts_under
from tests.hostile.apifuzz import daemon_tracebacks, run_fuzz
from tests.hostile.conftest import HostileDaemon
from tests.support.daemon import http_request

EXAMPLES = 20


def _host_state(tmp: Path, data_root: Path) -> dict[str, object]:
    decoy = tmp / "decoy"
    return {
        "around the data root": sorted(p.name for p in tmp.iterdir()),
        "decoy": sorted((str(p), p.stat().st_mtime_ns) for p in decoy.rglob("*")),
        "/": sorted(os.listdir("/")),
        "/etc": sorted(os.listdir("/etc")),
        "mounts": [m for m in mounts_under(tmp) if not m.startswith(str(data_root))],
    }


@pytest.mark.parametrize(
    ("ps_args", "status"),
    [("a", 200), ("-ef", 200), ("--no-such-option", 400), ("'unbalanced", 400)],
)
def test_top_answers_what_the_fuzzer_found(
    hostile_daemon: HostileDaemon, ps_args: str, status: int
) -> None:
    # "ps a" selects no process (exit 1, header only): an empty list, not a 500.
    path = f"/containers/{hostile_daemon.seeded.container}/top?ps_args={quote(ps_args)}"
    answer = http_request(hostile_daemon.daemon.socket_path, "GET", path)
    assert answer.status == status, answer.body


@pytest.mark.timeout(600)
def test_generated_requests_get_documented_answers(hostile_daemon: HostileDaemon) -> None:
    daemon = hostile_daemon.daemon
    decoy = hostile_daemon.tmp / "decoy"
    (decoy / "sub").mkdir(parents=True, exist_ok=True)
    (decoy / "sub" / "file").write_text("host data")
    before = _host_state(hostile_daemon.tmp, daemon.data_root)
    log_before = len(daemon.log())

    report = run_fuzz(
        daemon.socket_path, examples_per_operation=EXAMPLES, seeded=hostile_daemon.seeded
    )
    print(report.summary())

    assert report.requests > 1500, report.summary()
    assert report.failures == [], "\n".join(report.failures[:20])
    assert daemon_tracebacks(daemon.log()[log_before:]) == []
    ping = http_request(daemon.socket_path, "GET", "/_ping")
    assert (ping.status, ping.body) == (200, b"OK")
    assert _host_state(hostile_daemon.tmp, daemon.data_root) == before
