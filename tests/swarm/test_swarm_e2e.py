"""``declarun --engine swarm`` on a real three-node Swarm (``tests/swarm/conftest.py``): the
bundled examples deploy and go, replicas spread over the nodes, one changed field updates
exactly that service (rolled by Swarm), a broken health check is rolled back and reported
with the failing task's error and log, configs follow their files' content, exec reaches a
task on a worker, saved plans are refused once the Swarm moved, destroy removes it all, and
a killed worker is healed by Swarm while ``declarun plan`` stays truthful.

The tests of one module share the cluster and run in file order; the node is killed last.
The Swarm example (``examples/swarm``) stays applied from the examples' test to the node
loss, which it rides out beside the six-replica app.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.stacks import unique_stack
from tests.swarm.conftest import REPO, Swarm

pytestmark = pytest.mark.timeout(600)


def _services(swarm: Swarm, stack: str) -> dict[str, dict[str, object]]:
    engine = swarm.engine()
    try:
        found = {}
        for service in engine.list_services():
            if service.labels.get("dev.declarun.stack") != stack:
                continue
            tasks = engine.list_tasks(service.id)
            running = [t for t in tasks if t.state == "running" and t.desired_state == "running"]
            found[service.name] = {
                "version": service.version,
                "spec": service.spec,
                "running": len([t for t in running if t.current]),
                "nodes": sorted({t.node_id for t in running}),
            }
        return found
    finally:
        engine.close()


def _hostnames(swarm: Swarm) -> dict[str, str]:
    engine = swarm.engine()
    try:
        return {n.id: n.hostname for n in engine.list_nodes()}
    finally:
        engine.close()


def _status(swarm: Swarm, stack_file: Path, *args: str) -> dict[str, dict[str, object]]:
    done = swarm.declarun("status", str(stack_file), "--output", "json", *args)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["resources"]
    return {f"{r['kind']}:{r['name']}": r for r in rows}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _app(name: str, image: str, *, mode: str = "one", check: str = "/tmp/ready") -> str:
    return f"""
stack: {name}
images:
  box: {{ref: "{image}"}}
networks:
  mesh: {{}}
containers:
  api:
    image: box
    replicas: 6
    command: ["sh", "-c", "echo api started in mode $MODE; touch /tmp/ready; exec httpd -f -p 8000"]
    env: {{MODE: "{mode}"}}
    networks: [mesh]
    restart: unless-stopped
    stop_grace_period: 1s
    healthcheck: {{test: ["CMD", "test", "-f", "{check}"], interval: 1s, timeout: 1s, retries: 3}}
  worker:
    image: box
    replicas: 2
    command: ["sh", "-c", "while true; do sleep 1; done"]
    networks: [mesh]
    restart: unless-stopped
    stop_grace_period: 1s
    depends_on: {{api: {{condition: healthy}}}}
"""


# -- the bundled examples -------------------------------------------------------------------


def test_the_web_example_deploys_serves_and_is_destroyed(swarm: Swarm) -> None:
    stack_file = REPO / "examples" / "web" / "stack.yaml"
    # The front end's image is built from the example's Dockerfile: on the manager, pushed to
    # the registry every node pulls from (docker compose build + push, then stack deploy).
    built = swarm.declarun("build", str(stack_file), "--push")
    assert built.returncode == 0, built.stdout + built.stderr
    assert "✓ push 127.0.0.1:5000/declarun/webapp-web:1" in built.stdout
    planned = swarm.declarun("plan", str(stack_file))
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "+ create service web (webapp-web)" in planned.stdout
    assert "the nodes pull 127.0.0.1:5000/declarun/webapp-web:1" in planned.stdout
    assert "mode: host" in planned.stdout  # said, not silently dropped: no IPVS here

    applied = swarm.declarun("apply", str(stack_file))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 4 created" in applied.stdout

    rows = _status(swarm, stack_file)
    assert rows["service:migrate"]["actual"] == "1 completed"
    assert rows["service:store"]["actual"] == "1 running"
    web_node = rows["service:web"]["nodes"][0]
    node = next(n for n in swarm.cluster.nodes if n.name == web_node)
    page = swarm.cluster.in_node(node, "curl", "-fsS", "http://127.0.0.1:8080/")
    assert page.strip() == "hello from declarun"  # fetched by name over the overlay network

    again = swarm.declarun("plan", str(stack_file))
    assert again.returncode == 0, again.stdout
    assert "No changes" in again.stdout

    # Off a terminal nobody can say yes to deleting the nodes' volumes: refused, untouched.
    refused = swarm.declarun("destroy", str(stack_file), "--volumes")
    assert refused.returncode == 1 and "give --yes" in refused.stderr, refused.stderr
    assert len(_services(swarm, "webapp")) == 3
    destroyed = swarm.declarun("destroy", str(stack_file), "--volumes", "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert _services(swarm, "webapp") == {}
    # The volume lived on the manager, where placement kept its writer and its reader.
    assert "node1: removed volume webapp-content" in destroyed.stdout
    left = swarm.cluster.manager.docker("volume", "ls", "-q").stdout.split()
    assert "webapp-content" not in left
    assert swarm.declarun("plan", str(stack_file)).returncode == 2


SPREAD = REPO / "examples" / "swarm" / "stack.yaml"


def test_the_other_examples_apply_and_destroy(swarm: Swarm) -> None:
    # Side by side, as three stacks share a cluster: each plan and apply sees only its own.
    files = [REPO / "examples" / name / "stack.yaml" for name in ("hello", "templated")]
    files.append(SPREAD)
    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        applied = list(pool.map(lambda f: swarm.declarun("apply", str(f)), files))
    for stack_file, done in zip(files, applied, strict=True):
        assert done.returncode == 0, f"{stack_file}: {done.stdout}{done.stderr}"
        assert swarm.declarun("plan", str(stack_file)).returncode == 0
    rows = _status(swarm, SPREAD)
    assert rows["service:greet"]["actual"] == "6 running"
    assert len(rows["service:greet"]["nodes"]) == 3  # type: ignore[arg-type]  # two per node
    # The Swarm example stays for the update, the rollback and the node loss below.
    with ThreadPoolExecutor(max_workers=len(files)) as pool:
        destroyed = list(pool.map(lambda f: swarm.declarun("destroy", str(f), "--yes"), files[:-1]))
    assert all(done.returncode == 0 for done in destroyed), destroyed


def test_the_swarm_example_updates_one_service_and_rolls_back_a_broken_one(
    swarm: Swarm, tmp_path: Path
) -> None:
    before = _services(swarm, "spread")
    planned = swarm.declarun("plan", str(SPREAD), "--var", "message=hi", "--output", "json")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    actionable = [c for c in json.loads(planned.stdout)["changes"] if c["action"] != "noop"]
    assert [(c["action"], c["id"]) for c in actionable] == [("update", "service:greet")]
    assert [r["field"] for r in actionable[0]["reasons"]] == ["command"]
    assert "hello from the swarm" in json.dumps(actionable[0]["reasons"][0]["before"])
    text = swarm.declarun("plan", str(SPREAD), "--var", "message=hi").stdout
    assert "~ update service greet (spread-greet)" in text
    assert "Plan: 0 to create, 0 to recreate, 0 to remove, 1 to update." in text
    applied = swarm.declarun("apply", str(SPREAD), "--var", "message=hi")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "1 updated" in applied.stdout
    after = _services(swarm, "spread")
    assert after["spread-front"]["version"] == before["spread-front"]["version"]
    assert after["spread-greet"]["version"] != before["spread-greet"]["version"]
    assert after["spread-greet"]["running"] == 6

    # The same example with a health check that can never pass: Swarm rolls the update back.
    broken = _write(
        tmp_path / "stack.yaml",
        SPREAD.read_text().replace("http://127.0.0.1:8000/", "http://127.0.0.1:8001/"),
    )
    failed = swarm.declarun("apply", str(broken), "--var", "message=hi")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "✗ update service greet" in failed.stdout
    assert "Swarm rolled it back" in failed.stdout
    assert "task spread-greet." in failed.stdout and "exit code" in failed.stdout
    # Rolled back stop-first, the last old task may still be starting when Swarm says the
    # rollback completed: it comes up by itself.
    deadline = time.monotonic() + 60
    while (running := _services(swarm, "spread")["spread-greet"]["running"]) != 6:
        assert time.monotonic() < deadline, f"{running} of 6 greet tasks running"
        time.sleep(0.5)
    assert swarm.declarun("plan", str(SPREAD), "--var", "message=hi").returncode == 0


# -- replicas, updates, rollbacks -----------------------------------------------------------


@pytest.fixture(scope="module")
def app(swarm: Swarm, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A six-replica service and a dependent one, applied once for the tests below."""
    name = unique_stack("sw")
    stack_file = _write(tmp_path_factory.mktemp("app") / "stack.yaml", _app(name, swarm.image))
    applied = swarm.declarun("apply", str(stack_file))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return stack_file


def _name(stack_file: Path) -> str:
    return stack_file.read_text().split("stack: ", 1)[1].split()[0]


def test_replicas_are_spread_over_the_three_nodes(swarm: Swarm, app: Path) -> None:
    services = _services(swarm, _name(app))
    api = services[f"{_name(app)}-api"]
    assert api["running"] == 6
    assert len(api["nodes"]) == 3, api  # type: ignore[arg-type]
    rows = _status(swarm, app)
    assert sorted(rows["service:api"]["nodes"]) == ["node1", "node2", "node3"]  # type: ignore[arg-type]


def test_a_broken_healthcheck_is_rolled_back_and_reported(swarm: Swarm, app: Path) -> None:
    name = _name(app)
    good = app.read_text()
    app.write_text(_app(name, swarm.image, mode="two", check="/tmp/never"))
    applied = swarm.declarun("apply", str(app))
    assert applied.returncode == 1, applied.stdout
    out = applied.stdout
    assert "✗ update service api" in out
    assert "Swarm rolled it back" in out
    assert f"task {name}-api." in out  # the failing task, its node and state
    assert "api started in mode two" in out  # the tail of its log
    # Swarm put the previous spec back: the old tasks serve, and the plan says so.
    services = _services(swarm, name)
    env = services[f"{name}-api"]["spec"]["TaskTemplate"]["ContainerSpec"]["Env"]  # type: ignore[index]
    assert "MODE=one" in env
    assert services[f"{name}-api"]["running"] == 6
    planned = swarm.declarun("plan", str(app))
    assert planned.returncode == 2
    assert "healthcheck.test" in planned.stdout
    app.write_text(good)
    assert swarm.declarun("plan", str(app)).returncode == 0


def test_a_saved_plan_is_refused_once_the_swarm_moved(swarm: Swarm, app: Path) -> None:
    name = _name(app)
    app.write_text(_app(name, swarm.image, mode="three"))
    saved = app.parent / "plan.json"
    assert swarm.declarun("plan", str(app), "-o", str(saved)).returncode == 2
    swarm.cluster.manager.docker("service", "update", "-d", "--label-add", "x=y", f"{name}-worker")
    refused = swarm.declarun("apply", str(saved))
    assert refused.returncode == 1
    assert "changed since the plan was made" in refused.stderr + refused.stdout
    assert swarm.declarun("plan", str(app), "-o", str(saved)).returncode == 2
    applied = swarm.declarun("apply", str(saved))
    assert applied.returncode == 0, applied.stdout + applied.stderr


def test_exec_reaches_a_task_on_a_worker(swarm: Swarm, app: Path) -> None:
    name = _name(app)
    engine = swarm.engine()
    try:
        manager_id = engine.swarm_info().node_id
        tasks = [
            t
            for t in engine.list_tasks(f"{name}-api")
            if t.state == "running" and t.desired_state == "running"
        ]
    finally:
        engine.close()
    remote = next(t for t in tasks if t.node_id != manager_id)
    done = swarm.declarun("exec", str(app), f"api-{remote.slot}", "--", "sh", "-c", "echo $MODE")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "three"
    failed = swarm.declarun("exec", str(app), "api", "--", "sh", "-c", "exit 3")
    assert failed.returncode == 3


def test_logs_merge_every_task_of_every_node(swarm: Swarm, app: Path) -> None:
    done = swarm.declarun("logs", str(app), "api")
    assert done.returncode == 0, done.stderr
    started = [line for line in done.stdout.splitlines() if "api started in mode" in line]
    assert len(started) >= 6  # one per task at least, wherever it ran
    assert all(line.startswith("api | ") for line in started)
    unknown = swarm.declarun("logs", str(app), "nope")
    assert unknown.returncode == 1 and "no service nope" in unknown.stderr


# -- watch -----------------------------------------------------------------------------------


def test_watch_puts_back_a_service_removed_by_hand(swarm: Swarm, tmp_path: Path) -> None:
    name = unique_stack("wt")
    stack_file = _write(
        tmp_path / "stack.yaml",
        f"""
stack: {name}
containers:
  tick:
    image: {swarm.image}
    command: ["sh", "-c", "exec sleep 3600"]
    stop_grace_period: 1s
""",
    )
    watcher = subprocess.Popen(
        [sys.executable, "-m", "declarun", "watch", str(stack_file), "--engine", "swarm",
         "--host", swarm.host],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while f"{name}-tick" not in _services(swarm, name):
            assert time.monotonic() < deadline, "the first apply did not happen"
            time.sleep(0.5)
        swarm.cluster.manager.docker("service", "rm", f"{name}-tick")
        time.sleep(1)
        deadline = time.monotonic() + 120
        while _services(swarm, name).get(f"{name}-tick", {}).get("running") != 1:
            assert time.monotonic() < deadline, "watch did not put the service back"
            time.sleep(0.5)
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err
    assert "Stopped watching." in out
    # The first apply, and the one that put it back (a look may find it mid-way: harmless).
    assert out.count("+ create service tick") >= 2, out
    assert swarm.declarun("destroy", str(stack_file), "--yes").returncode == 0


# -- configs from files ---------------------------------------------------------------------


def test_files_become_configs_and_a_changed_file_rolls_the_service(
    swarm: Swarm, tmp_path: Path
) -> None:
    name = unique_stack("cf")
    _write(tmp_path / "conf" / "app.conf", "colour=blue\n")
    _write(tmp_path / "app.env", "GREETING=hi\n")
    stack_file = _write(
        tmp_path / "stack.yaml",
        f"""
stack: {name}
containers:
  app:
    image: {swarm.image}
    command: ["sh", "-c", "exec sleep 3600"]
    env_file: app.env
    volumes: ["./conf/app.conf:/etc/app.conf:ro"]
    stop_grace_period: 1s
""",
    )
    applied = swarm.declarun("apply", str(stack_file))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    read = swarm.declarun(
        "exec", str(stack_file), "app", "--", "sh", "-c", "cat /etc/app.conf; echo $GREETING"
    )
    assert read.stdout.split() == ["colour=blue", "hi"]

    _write(tmp_path / "conf" / "app.conf", "colour=green\n")
    planned = swarm.declarun("plan", str(stack_file))
    assert planned.returncode == 2
    assert f"~ update service app ({name}-app)" in planned.stdout
    assert "bind-mounted file changed" in planned.stdout
    assert "+ create config" in planned.stdout
    applied = swarm.declarun("apply", str(stack_file))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "cat" not in applied.stderr
    read = swarm.declarun("exec", str(stack_file), "app", "--", "cat", "/etc/app.conf")
    assert read.stdout.strip() == "colour=green"
    # The old content's config went once no service named it any more.
    engine = swarm.engine()
    try:
        configs = [c.name for c in engine.list_configs() if c.name.startswith(name)]
    finally:
        engine.close()
    assert len(configs) == 2  # app.conf (new) and app.env
    assert swarm.declarun("destroy", str(stack_file), "--yes").returncode == 0


# -- destroy, and a node that dies ----------------------------------------------------------


def test_destroy_removes_services_networks_and_configs(swarm: Swarm, tmp_path: Path) -> None:
    name = unique_stack("ds")
    stack_file = _write(tmp_path / "stack.yaml", _app(name, swarm.image))
    assert swarm.declarun("apply", str(stack_file)).returncode == 0
    destroyed = swarm.declarun("destroy", str(stack_file), "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert "Destroy complete: 3 removed" in destroyed.stdout
    assert _services(swarm, name) == {}
    networks = swarm.cluster.manager.docker("network", "ls", "--format", "{{.Name}}").stdout
    assert f"{name}-mesh" not in networks.split()


def test_a_killed_worker_is_healed_by_swarm_and_plan_stays_truthful(
    swarm: Swarm, app: Path
) -> None:
    # Two stacks ride it out: the app (six api tasks, anywhere) and the Swarm example (six
    # greet tasks, at most two per node: with one node gone, four is all Swarm can place).
    name = _name(app)
    victim = swarm.cluster.workers[-1]
    swarm.cluster.kill_node(victim)
    deadline = time.monotonic() + 240
    seen_converging = False
    while True:
        planned = swarm.declarun("plan", str(app))
        # Swarm reschedules by itself: declarun never has anything to do meanwhile.
        assert planned.returncode == 0, planned.stdout
        seen_converging = seen_converging or "Swarm is placing the rest" in planned.stdout
        services = _services(swarm, name)
        api = services[f"{name}-api"]
        hostnames = _hostnames(swarm)
        on = {hostnames.get(str(n), str(n)) for n in api["nodes"]}  # type: ignore[attr-defined]
        if api["running"] == 6 and victim.name not in on:
            break
        assert time.monotonic() < deadline, f"not rescheduled: {api}"
        time.sleep(1)
    rows = _status(swarm, app)
    assert rows["service:api"]["actual"] == "6 running"
    assert set(rows["service:api"]["nodes"]) <= {"node1", "node2"}  # type: ignore[arg-type]
    final = swarm.declarun("plan", str(app))
    assert final.returncode == 0 and "No changes" in final.stdout, final.stdout
    example = swarm.declarun("plan", str(SPREAD), "--var", "message=hi")
    assert example.returncode == 0, example.stdout  # nothing for declarun to do
    assert "4 of 6 tasks running: Swarm is placing the rest" in example.stdout
    assert f"nodes down: {victim.name}" in example.stdout
    assert _status(swarm, SPREAD, "--var", "message=hi")["service:greet"]["actual"] == "4 running"
    assert swarm.declarun("destroy", str(app), "--yes").returncode == 0
    assert swarm.declarun("destroy", str(SPREAD), "--yes").returncode == 0
