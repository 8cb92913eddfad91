"""Confinement checked from inside: the same probe in a container on declarund and on dockerd.

``confinement_probe.sh`` (busybox sh, /proc reads, harmless attempts inside the container's
own namespaces) reports capabilities, seccomp mode, no_new_privs, ids, how /, /proc, /sys and
their sensitive parts are mounted, which paths are masked, whether mount, unshare, raw
sockets, mknod and device access, hostname and clock changes work, and what the container
sees of /dev, processes and network interfaces. Each flag set runs with ``--network none``
on both engines (the session's); the reports must be equal, except for the differences
listed in ``KNOWN_DIFFERENCES`` (each with its reason).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.engine_fixtures import Engine

PROBE = (Path(__file__).parent / "confinement_probe.sh").read_text()

FLAG_SETS: dict[str, list[str]] = {
    "default": [],
    "cap-add-sys-admin": ["--cap-add", "SYS_ADMIN"],
    "cap-add-net-admin-drop-net-raw": ["--cap-add", "NET_ADMIN", "--cap-drop", "NET_RAW"],
    "cap-drop-all": ["--cap-drop", "ALL"],
    "read-only": ["--read-only"],
    "no-new-privileges": ["--security-opt", "no-new-privileges"],
    "no-new-privileges-false": ["--security-opt", "no-new-privileges:false"],
    "user": ["--user", "1000:1000"],
    "privileged": ["--privileged"],
}

# (flag set or "*", probe key) -> why the engines differ on purpose.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    ("*", "NoNewPrivs"): (
        "declarund sets no_new_privs unless --security-opt no-new-privileges:false "
        "(declarun/daemon/containers/runtime/bundle.py); dockerd only with no-new-privileges"
    ),
    ("privileged", "dev-entries"): (
        "dockerd gives a privileged container every host device node; declarund keeps "
        "the default /dev"
    ),
}


def probe(engine: Engine, flags: list[str]) -> dict[str, str] | str:
    """The probe's report on ``engine`` with ``flags``, or the engine's refusal message."""
    done = engine.docker(
        "run", "--rm", "--network", "none", *flags, engine.image, "sh", "-c", PROBE, check=False
    )
    if done.returncode != 0:
        return done.stderr.strip()
    report = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert len(report) > 40, done.stdout
    return report


def _differences(name: str, ours: dict[str, str], theirs: dict[str, str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) == theirs.get(key):
            continue
        if ("*", key) in KNOWN_DIFFERENCES or (name, key) in KNOWN_DIFFERENCES:
            continue
        out[key] = {"declarund": ours.get(key), "dockerd": theirs.get(key)}
    return out


@pytest.mark.parametrize("name", list(FLAG_SETS))
def test_probe_reports_match_dockerd(
    declarund_engine: Engine, dockerd_engine: Engine, name: str
) -> None:
    flags = FLAG_SETS[name]
    ours = probe(declarund_engine, flags)
    theirs = probe(dockerd_engine, flags)
    assert isinstance(ours, dict), f"declarund refused {flags}: {ours}"
    if isinstance(theirs, str):
        # dockerd asks runc for every capability it knows under --privileged; where this
        # machine's bounding set lacks one (a container-in-container CI runner), runc
        # refuses. Then declarund's report must at least be the privileged profile.
        assert name == "privileged" and "apply caps" in theirs, theirs
        assert ours["CapEff"] == ours["CapBnd"] == ours["CapPrm"], ours
        assert ours["Seccomp"] == "0" and ours["mount:/proc/sys"] == "rw", ours
        assert ours["masked:/proc/keys"] in ("no", "absent"), ours
        pytest.skip(f"dockerd cannot run --privileged on this machine: {theirs[:200]}")
    assert _differences(name, ours, theirs) == {}


def test_default_confinement_is_dockers(declarund_engine: Engine) -> None:
    """The checks that matter most, stated outright (not only "same as dockerd")."""
    report = probe(declarund_engine, [])
    assert isinstance(report, dict), report
    assert report["CapEff"] == "00000000a80425fb"  # Docker's 14 default capabilities
    assert report["Seccomp"] == "2"  # a filter: Docker's default profile
    for key in ("mount-tmpfs", "unshare-mount-ns", "unshare-user-ns", "read-kmsg", "sethostname"):
        assert report[key] == "denied", key
    assert report["mount:/proc/sys"] == "ro"
    assert report["mount:/sys"] == "ro"
    assert report["open-made-block"] == "denied"  # the device cgroup
    assert report["pids-visible"] == "few" and report["net-interfaces"] == "lo,"
    assert report["masked:/proc/keys"] in ("yes", "absent")
