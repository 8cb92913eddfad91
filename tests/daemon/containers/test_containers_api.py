"""The container lifecycle through the real docker CLI and docker-py against declarund.

Every container runs for real: runc under conmon, busybox pulled from a test registry.
"""

from __future__ import annotations

import json
import struct
import subprocess
import time
from collections.abc import Iterator

import docker as docker_py
import jsonschema
import pytest
import yaml

from tests.daemon.containers.daemon_fixtures import leftovers, needs_runtime, remove_all
from tests.daemon.images.daemon_support import docker
from tests.support.daemon import DaemonProcess, http_request
from tests.support.swagger import SWAGGER_PATH, definitions

pytestmark = needs_runtime


def run_d(daemon: DaemonProcess, *args: str) -> str:
    """``docker run -d ARGS``; the new container's id."""
    return docker(daemon, "run", "-d", *args).stdout.strip()


def inspect(daemon: DaemonProcess, ref: str) -> dict:  # type: ignore[type-arg]
    doc: list[dict] = json.loads(docker(daemon, "inspect", ref).stdout)  # type: ignore[type-arg]
    return doc[0]


def wait_for_log(daemon: DaemonProcess, ref: str, text: str) -> str:
    """Follow the logs of ``ref`` until ``text`` appeared (no timing assumptions)."""
    proc = subprocess.Popen(
        ["/usr/local/bin/docker", "logs", "-f", ref],
        env=daemon.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    seen = ""
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen += line
            if text in line:
                return seen
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    raise AssertionError(f"{text!r} never appeared in the logs of {ref}: {seen!r}")


# Go pointer fields dockerd leaves nil (null) unless set.
_POINTERS = frozenset({"MemorySwappiness", "OomKillDisable", "PidsLimit", "Init"})


def _nullable(node: object, key: str = "") -> object:
    """Allow null for arrays, objects and pointer fields: dockerd writes nil Go slices, maps
    and pointers as null (``"CapAdd": null``); the Swagger file does not mark them nullable."""
    if isinstance(node, dict):
        out = {k: _nullable(v, k) for k, v in node.items()}
        kind = out.get("type")
        if isinstance(kind, str) and (
            out.get("x-nullable") is True or kind in ("array", "object") or key in _POINTERS
        ):
            out["type"] = [kind, "null"]
        return out
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


def validate_like_dockerd(doc: object, schema: object) -> None:
    """Check ``doc`` against a Swagger schema, with dockerd's nulls allowed."""
    converted = _nullable(schema)
    assert isinstance(converted, dict)
    full = {**converted, "definitions": _nullable(definitions())}
    jsonschema.Draft4Validator(full).validate(doc)


def validate_inspect(doc: object) -> None:
    """Check ``doc`` against the inline 200 schema of ``GET /containers/{id}/json``."""
    spec = yaml.safe_load(SWAGGER_PATH.read_text())
    validate_like_dockerd(
        doc, spec["paths"]["/containers/{id}/json"]["get"]["responses"][200]["schema"]
    )


@pytest.fixture(autouse=True)
def _clean(cdaemon: DaemonProcess) -> Iterator[None]:
    """Each test starts and ends with no containers, even when it fails half-way."""
    yield
    remove_all(cdaemon)


@pytest.fixture
def client(cdaemon: DaemonProcess) -> Iterator[docker_py.DockerClient]:
    c = docker_py.DockerClient(base_url=cdaemon.url, version="1.45")
    try:
        yield c
    finally:
        c.close()


def test_run_detached_logs_and_wait_exit_code(cdaemon: DaemonProcess, image: str) -> None:
    cid = run_d(cdaemon, "--name", "hello", image, "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert len(cid) == 64
    assert docker(cdaemon, "wait", cid).stdout.strip() == "3"
    logs = docker(cdaemon, "logs", "hello")
    assert logs.stdout == "hi\n"
    assert logs.stderr == "oops\n"
    state = inspect(cdaemon, "hello")["State"]
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 3
    assert state["Running"] is False
    assert state["FinishedAt"] > state["StartedAt"]
    docker(cdaemon, "rm", "hello")
    missing = docker(cdaemon, "inspect", "hello", check=False)
    assert missing.returncode != 0
    assert "No such" in missing.stderr


def test_inspect_and_list_match_the_swagger_definitions(cdaemon: DaemonProcess, image: str) -> None:
    run_d(cdaemon, "--name", "shape", "--label", "team=a", "-e", "X=1", image, "sleep", "30")
    found = http_request(cdaemon.socket_path, "GET", "/v1.45/containers/shape/json")
    assert found.status == 200
    doc = json.loads(found.body)
    validate_inspect(doc)
    assert doc["Name"] == "/shape"
    assert doc["Config"]["Labels"] == {"team": "a"}
    assert "X=1" in doc["Config"]["Env"]
    assert doc["Config"]["Hostname"] == doc["Id"][:12]
    assert doc["State"]["Running"] is True and doc["State"]["Pid"] > 0
    listed = http_request(cdaemon.socket_path, "GET", "/v1.45/containers/json")
    entries = json.loads(listed.body)
    for entry in entries:
        validate_like_dockerd(entry, {"$ref": "#/definitions/ContainerSummary"})
    mine = [e for e in entries if e["Names"] == ["/shape"]]
    assert mine and mine[0]["State"] == "running" and mine[0]["Status"].startswith("Up ")
    docker(cdaemon, "rm", "-f", "shape")


def test_ps_filters_and_formats(cdaemon: DaemonProcess, image: str) -> None:
    run_d(cdaemon, "--name", "ps-up", "--label", "role=web", image, "sleep", "30")
    done = run_d(cdaemon, "--name", "ps-done", "--label", "role=job", image, "true")
    docker(cdaemon, "wait", done)
    names = docker(cdaemon, "ps", "--format", "{{.Names}}").stdout.split()
    assert "ps-up" in names and "ps-done" not in names
    all_names = docker(cdaemon, "ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout
    assert "ps-done Exited (0)" in all_names
    web = docker(cdaemon, "ps", "-a", "--filter", "label=role=web", "--format", "{{.Names}}")
    assert web.stdout.split() == ["ps-up"]
    exited = docker(cdaemon, "ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}")
    assert "ps-done" in exited.stdout.split() and "ps-up" not in exited.stdout.split()
    by_name = docker(cdaemon, "ps", "-a", "--filter", "name=ps-d", "--format", "{{.Names}}")
    assert by_name.stdout.split() == ["ps-done"]
    docker(cdaemon, "rm", "-f", "ps-up", "ps-done")


def test_name_conflict_uses_dockers_message(cdaemon: DaemonProcess, image: str) -> None:
    cid = docker(cdaemon, "create", "--name", "twin", image, "true").stdout.strip()
    again = docker(cdaemon, "create", "--name", "twin", image, "true", check=False)
    assert again.returncode != 0
    assert (
        f'Conflict. The container name "/twin" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    ) in again.stderr
    assert inspect(cdaemon, "twin")["State"]["Status"] == "created"
    docker(cdaemon, "rm", "twin")


def test_stop_kill_and_remove_running(cdaemon: DaemonProcess, image: str) -> None:
    trap = "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done"
    run_d(cdaemon, "--name", "stopper", image, "sh", "-c", trap)
    wait_for_log(cdaemon, "stopper", "ready")  # the trap is set before the stop
    docker(cdaemon, "stop", "-t", "30", "stopper")
    assert inspect(cdaemon, "stopper")["State"]["ExitCode"] == 7
    run_d(cdaemon, "--name", "killme", image, "sleep", "60")
    docker(cdaemon, "kill", "killme")
    state = inspect(cdaemon, "killme")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137
    run_d(cdaemon, "--name", "busy", image, "sleep", "60")
    refused = docker(cdaemon, "rm", "busy", check=False)
    assert refused.returncode != 0
    assert 'cannot remove container "/busy": container is running' in refused.stderr
    docker(cdaemon, "rm", "-f", "busy", "stopper", "killme")
    assert docker(cdaemon, "ps", "-aq").stdout.strip() == ""


def test_logs_tail_timestamps_since_and_follow(cdaemon: DaemonProcess, image: str) -> None:
    cid = run_d(
        cdaemon, "--name", "talker", image, "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"
    )
    docker(cdaemon, "wait", cid)
    assert docker(cdaemon, "logs", "--tail", "2", "talker").stdout == "line4\nline5\n"
    stamped = docker(cdaemon, "logs", "-t", "talker").stdout.splitlines()
    assert len(stamped) == 5
    stamp, _, text = stamped[0].partition(" ")
    assert text == "line1" and stamp.endswith("Z") and "T" in stamp
    future = docker(cdaemon, "logs", "--since", "2100-01-01T00:00:00Z", "talker")
    assert future.stdout == ""
    # follow ends by itself when the container ends
    run_d(cdaemon, "--name", "follower", image, "sh", "-c", "echo first; sleep 1; echo last")
    followed = docker(cdaemon, "logs", "-f", "follower")
    assert followed.stdout == "first\nlast\n"
    docker(cdaemon, "rm", "-f", "talker", "follower")


def test_logs_api_framing_multiplexed_and_raw(cdaemon: DaemonProcess, image: str) -> None:
    plain = run_d(cdaemon, image, "sh", "-c", "echo out; echo err >&2")
    docker(cdaemon, "wait", plain)
    got = http_request(cdaemon.socket_path, "GET", f"/containers/{plain}/logs?stdout=1&stderr=1")
    assert got.headers["Content-Type"] == "application/vnd.docker.multiplexed-stream"
    frames = []
    body = got.body
    while body:
        stream, size = struct.unpack(">BxxxI", body[:8])
        frames.append((stream, body[8 : 8 + size]))
        body = body[8 + size :]
    assert sorted(frames) == [(1, b"out\n"), (2, b"err\n")]
    tty = run_d(cdaemon, "-t", image, "sh", "-c", "echo tty")
    docker(cdaemon, "wait", tty)
    raw = http_request(cdaemon.socket_path, "GET", f"/containers/{tty}/logs?stdout=1")
    assert raw.headers["Content-Type"] == "application/vnd.docker.raw-stream"
    assert raw.body == b"tty\r\n"
    docker(cdaemon, "rm", plain, tty)


def test_rename_pause_unpause_top_stats(cdaemon: DaemonProcess, image: str) -> None:
    run_d(cdaemon, "--name", "old-name", image, "sleep", "60")
    docker(cdaemon, "rename", "old-name", "new-name")
    assert inspect(cdaemon, "new-name")["Name"] == "/new-name"
    assert docker(cdaemon, "inspect", "old-name", check=False).returncode != 0
    docker(cdaemon, "pause", "new-name")
    state = inspect(cdaemon, "new-name")["State"]
    assert state["Status"] == "paused" and state["Paused"] is True
    status = docker(cdaemon, "ps", "--filter", "name=new-name", "--format", "{{.Status}}")
    assert status.stdout.strip().endswith("(Paused)")
    docker(cdaemon, "unpause", "new-name")
    assert inspect(cdaemon, "new-name")["State"]["Status"] == "running"
    top = docker(cdaemon, "top", "new-name").stdout
    assert "PID" in top.splitlines()[0] and "sleep 60" in top
    stats = docker(cdaemon, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "new-name")
    assert stats.stdout.split() == ["new-name", "1"]
    docker(cdaemon, "rm", "-f", "new-name")


def test_prune_removes_only_stopped(cdaemon: DaemonProcess, image: str) -> None:
    done = run_d(cdaemon, "--name", "prune-me", image, "true")
    docker(cdaemon, "wait", done)
    run_d(cdaemon, "--name", "keep-me", image, "sleep", "60")
    out = docker(cdaemon, "container", "prune", "-f").stdout
    assert done in out
    names = docker(cdaemon, "ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert "keep-me" in names and "prune-me" not in names
    docker(cdaemon, "rm", "-f", "keep-me")


def test_user_workdir_env_hostname_and_etc_files(cdaemon: DaemonProcess, image: str) -> None:
    cid = run_d(
        cdaemon, "--user", "nobody", "-w", "/tmp", "-e", "GREETING=hey", "--hostname", "box",
        "--add-host", "db:10.1.2.3", image, "sh", "-c",
        'id -u; pwd; echo "$GREETING"; hostname; cat /etc/hostname; grep db /etc/hosts;'
        " grep -c nameserver /etc/resolv.conf",
    )  # fmt: skip
    docker(cdaemon, "wait", cid)
    lines = docker(cdaemon, "logs", cid).stdout.splitlines()
    assert lines[:5] == ["65534", "/tmp", "hey", "box", "box"]
    assert lines[5].split() == ["10.1.2.3", "db"]
    assert int(lines[6]) >= 1
    docker(cdaemon, "rm", cid)


def test_unknown_user_and_missing_command_fail_to_start(cdaemon: DaemonProcess, image: str) -> None:
    bad_user = docker(cdaemon, "run", "-d", "--user", "ghost", image, "true", check=False)
    assert bad_user.returncode != 0
    assert "unable to find user ghost" in bad_user.stderr
    missing = docker(cdaemon, "run", "-d", "--name", "nocmd", image, "/no/such/binary", check=False)
    assert missing.returncode == 127, missing.stderr
    assert inspect(cdaemon, "nocmd")["State"]["ExitCode"] == 127
    assert leftovers(cdaemon.data_root)["mounts"] == []
    docker(cdaemon, "container", "prune", "-f")


def test_readonly_rootfs(cdaemon: DaemonProcess, image: str) -> None:
    cid = run_d(
        cdaemon,
        "--read-only",
        image,
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo wrote || echo refused",
    )
    docker(cdaemon, "wait", cid)
    assert docker(cdaemon, "logs", cid).stdout == "refused\n"
    assert inspect(cdaemon, cid)["HostConfig"]["ReadonlyRootfs"] is True
    docker(cdaemon, "rm", cid)


def test_memory_limit_oom_kills(cdaemon: DaemonProcess, image: str) -> None:
    # A shell variable that doubles until it exceeds 8 MiB of memory.
    script = 'a=xxxxxxxxxxxxxxxx; while :; do a="$a$a"; done'
    cid = run_d(cdaemon, "--memory", "8m", "--memory-swap", "8m", image, "sh", "-c", script)
    assert docker(cdaemon, "wait", cid).stdout.strip() == "137"
    state = inspect(cdaemon, cid)["State"]
    assert state["OOMKilled"] is True or state["ExitCode"] == 137
    docker(cdaemon, "rm", cid)


def test_pids_limit(cdaemon: DaemonProcess, image: str) -> None:
    loop = "for i in $(seq 1 16); do (sleep 5 &) 2>/dev/null || echo refused; done"
    cid = run_d(cdaemon, "--pids-limit", "8", image, "sh", "-c", loop)
    docker(cdaemon, "wait", cid)
    assert "refused" in docker(cdaemon, "logs", cid).stdout + docker(cdaemon, "logs", cid).stderr
    assert inspect(cdaemon, cid)["HostConfig"]["PidsLimit"] == 8
    docker(cdaemon, "rm", cid)


def test_docker_py_lifecycle(client: docker_py.DockerClient, image: str) -> None:
    container = client.containers.run(image, ["sh", "-c", "echo from-py; exit 4"], detach=True,
                                      labels={"via": "docker-py"})  # fmt: skip
    result = container.wait()
    assert result["StatusCode"] == 4
    assert container.logs() == b"from-py\n"
    listed = client.containers.list(all=True, filters={"label": "via=docker-py"})
    assert [c.id for c in listed] == [container.id]
    container.reload()
    assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 4
    container.remove()
    assert client.containers.list(all=True, filters={"label": "via=docker-py"}) == []


def test_wait_conditions(cdaemon: DaemonProcess, image: str) -> None:
    cid = docker(cdaemon, "create", image, "sh", "-c", "exit 5").stdout.strip()
    # not-running answers at once for a created container, with its (zero) exit code
    now = http_request(cdaemon.socket_path, "POST", f"/containers/{cid}/wait")
    assert json.loads(now.body)["StatusCode"] == 0
    docker(cdaemon, "start", cid)
    docker(cdaemon, "wait", cid)
    assert inspect(cdaemon, cid)["State"]["ExitCode"] == 5
    bad = http_request(cdaemon.socket_path, "POST", f"/containers/{cid}/wait?condition=never")
    assert bad.status == 400
    docker(cdaemon, "rm", cid)


def test_nothing_leaks_after_removal(cdaemon: DaemonProcess, image: str) -> None:
    cid = run_d(cdaemon, image, "sleep", "60")
    docker(cdaemon, "rm", "-f", cid)
    left = leftovers(cdaemon.data_root)
    assert left == {"runtime": [], "processes": [], "mounts": []}
    assert not (cdaemon.data_root / "containers" / cid).exists()
    assert not (cdaemon.data_root / "snapshots" / "containers" / cid).exists()


def test_missing_image_is_404_with_dockers_message(cdaemon: DaemonProcess, image: str) -> None:
    body = json.dumps({"Image": "no-such-image:nope"}).encode()
    got = http_request(cdaemon.socket_path, "POST", "/v1.45/containers/create", body,
                       {"Content-Type": "application/json"})  # fmt: skip
    assert got.status == 404
    assert json.loads(got.body)["message"] == "No such image: no-such-image:nope"


def test_auto_remove_and_restart(cdaemon: DaemonProcess, image: str) -> None:
    gone = run_d(cdaemon, "--rm", image, "true")
    waited = http_request(cdaemon.socket_path, "POST", f"/containers/{gone}/wait?condition=removed")
    assert waited.status in (200, 404)  # 404 when it was removed before the wait arrived
    assert docker(cdaemon, "inspect", gone, check=False).returncode != 0
    cid = run_d(cdaemon, "--name", "again", image, "sh", "-c", "echo run; sleep 60")
    first_start = inspect(cdaemon, "again")["State"]["StartedAt"]
    docker(cdaemon, "restart", "-t", "0", "again")
    state = inspect(cdaemon, cid)["State"]
    assert state["Running"] is True and state["StartedAt"] > first_start
    docker(cdaemon, "rm", "-f", cid)


def test_events_report_the_lifecycle(cdaemon: DaemonProcess, image: str) -> None:
    since = str(int(time.time()) - 1)
    cid = run_d(cdaemon, "--name", "evented", image, "sh", "-c", "exit 9")
    docker(cdaemon, "wait", cid)
    docker(cdaemon, "rm", cid)
    out = docker(cdaemon, "events", "--since", since, "--until", str(int(time.time()) + 1),
                 "--filter", f"container={cid}", "--format", "{{json .}}").stdout  # fmt: skip
    events = [json.loads(line) for line in out.splitlines()]
    actions = [e["Action"] for e in events]
    assert actions == ["create", "start", "die", "destroy"]
    die = events[2]["Actor"]["Attributes"]
    assert die["exitCode"] == "9" and die["name"] == "evented"


def test_concurrent_creates_get_distinct_names_and_one_wins_a_taken_name(
    client: docker_py.DockerClient, image: str
) -> None:
    """Fifty creates at once: generated names never collide; a shared explicit name goes to
    exactly one of them and the others get Docker's conflict (409), not a server error."""
    from concurrent.futures import ThreadPoolExecutor

    def create(name: str | None) -> str | int:
        try:
            return str(client.api.create_container(image, ["true"], name=name)["Id"])
        except docker_py.errors.APIError as exc:
            return int(exc.status_code or 0)

    with ThreadPoolExecutor(max_workers=16) as pool:
        generated = list(pool.map(create, [None] * 30))
        contested = list(pool.map(create, ["contested"] * 8))
    created = [c for c in generated + contested if isinstance(c, str)]
    try:
        assert all(isinstance(c, str) for c in generated), generated
        names = {client.api.inspect_container(c)["Name"] for c in generated}
        assert len(names) == 30
        assert sum(isinstance(c, str) for c in contested) == 1
        assert sorted(c for c in contested if isinstance(c, int)) == [409] * 7
    finally:
        for cid in created:
            client.api.remove_container(cid, force=True)
