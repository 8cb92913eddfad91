"""The OCI runtime wrapper against the real runc (and crun's refusal on this machine)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.daemon.containers.runtime.exitwatch import wait_for_exit_file
from declarun.daemon.containers.runtime.monitor import (
    MonitorError,
    create_container,
    start_container,
)
from declarun.daemon.containers.runtime.oci import (
    ContainerNotFoundError,
    OciRuntime,
    OciRuntimeError,
    clean_message,
    runtime_state_root,
)
from declarun.errors import DaemonError
from tests.daemon.containers.conmon_support import (
    CGROUP_PARENT,
    RUNC,
    Env,
    monitor_env,
    needs_conmon,
    run,
)

pytestmark = [needs_conmon, pytest.mark.root]
CGROUP_V1 = Path("/sys/fs/cgroup")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with monitor_env(tmp_path) as e:
        yield e


def test_state_root_is_under_the_data_root(tmp_path: Path) -> None:
    runtime = OciRuntime.for_data_root(tmp_path, "runc")
    assert runtime.root == runtime_state_root(tmp_path, "runc") == tmp_path / "runtime" / "runc"
    assert runtime.global_args() == [f"--root={tmp_path / 'runtime' / 'runc'}"]
    with pytest.raises(DaemonError, match="unknown runtime 'kata'"):
        OciRuntime.for_data_root(tmp_path, "kata")


def test_unknown_container_is_not_found(env: Env) -> None:
    with pytest.raises(ContainerNotFoundError, match="no such container: nope"):
        run(env.runtime.state("nope"))
    run(env.runtime.delete("nope"))  # deleting what is not there is no error
    assert run(env.runtime.list_containers()) == []
    assert run(env.runtime.version()).startswith("runc version")


def test_lifecycle_pause_ps_update_stats(env: Env) -> None:
    cid, layout = env.bundle(["sleep", "1000"])

    async def go() -> None:
        created = await create_container(env.runtime, layout, cid)
        state = await env.runtime.state(cid)
        assert (state.status, state.pid, state.bundle) == (
            "created",
            created.pid,
            str(layout.bundle),
        )
        await start_container(env.runtime, cid)
        assert (await env.runtime.state(cid)).status == "running"
        assert await env.runtime.ps(cid) == [created.pid]
        if (CGROUP_V1 / "freezer").is_dir():
            await env.runtime.pause(cid)
            assert (await env.runtime.state(cid)).status == "paused"
            await env.runtime.resume(cid)
            assert (await env.runtime.state(cid)).status == "running"
        await env.runtime.update(cid, {"pids": {"limit": 42}})
        pids_max = CGROUP_V1 / "pids" / CGROUP_PARENT / cid / "pids.max"
        if pids_max.exists():
            assert pids_max.read_text().strip() == "42"
        stats = await env.runtime.stats(cid)
        assert stats["pids"]["current"] == 1
        with pytest.raises(OciRuntimeError) as raised:
            await env.runtime.start(cid)  # already running: runc's own reason comes back
        assert "level=error" not in raised.value.message and raised.value.message
        await env.runtime.kill(cid, "SIGKILL")
        assert (await wait_for_exit_file(layout.exit_file(cid), 60)).code == 137
        assert (await env.runtime.state(cid)).status == "stopped"
        await env.runtime.delete(cid)
        with pytest.raises(ContainerNotFoundError):
            await env.runtime.state(cid)

    run(go())


def test_our_containers_do_not_mix_with_other_runc_users(env: Env, tmp_path: Path) -> None:
    cid, layout = env.bundle(["sleep", "1000"])
    other = OciRuntime(runtime_state_root(tmp_path / "other", "runc").name, RUNC,
                       runtime_state_root(tmp_path / "other", "runc"))  # fmt: skip

    async def go() -> None:
        await create_container(env.runtime, layout, cid)
        assert [s.id for s in await env.runtime.list_containers()] == [cid]
        assert await other.list_containers() == []
        with pytest.raises(ContainerNotFoundError):
            await other.state(cid)
        await env.runtime.delete(cid, force=True)

    run(go())
    default = subprocess.run([RUNC, "list", "-q"], capture_output=True, text=True, check=False)
    assert cid not in default.stdout.split()  # never in runc's default /run/runc
    shutil.rmtree(tmp_path / "other", ignore_errors=True)


@pytest.mark.skipif(not os.path.exists("/usr/bin/crun"), reason="crun is not installed")
def test_crun_is_selectable_and_its_refusal_is_clear(env: Env) -> None:
    cid, layout = env.bundle(["true"])
    crun = OciRuntime.for_data_root(env.root, "crun")
    assert crun.binary == "/usr/bin/crun" and crun.root == env.root / "runtime" / "crun"

    async def go() -> None:
        try:
            await create_container(crun, layout, cid)
        except MonitorError as exc:
            # crun 1.8 refuses this machine's hybrid cgroup layout, and says so.
            assert "cgroup" in str(exc)
            assert await crun.list_containers() == []
            return
        await start_container(crun, cid)
        assert (await wait_for_exit_file(layout.exit_file(cid), 60)).code == 0
        await crun.delete(cid)

    run(go())
    shutil.rmtree(crun.root, ignore_errors=True)


def test_clean_message_keeps_runcs_words() -> None:
    stderr = 'time="2026-01-01T00:00:00Z" level=error msg="container \\"x\\" is not running"\n'
    assert clean_message(stderr) == 'container "x" is not running'
    assert clean_message("plain failure\n") == "plain failure"
    assert clean_message("") == "the OCI runtime failed without a message"
