"""The plan on a Swarm, pure: ``desired_swarm`` + ``diff_swarm`` against observed clusters
made by hand (a perfect apply, then one thing changed), and ``plan_destroy_swarm``."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from declarun.frozen import FrozenDict
from declarun.plan.swarm_desired import DesiredSwarm, HostFile, desired_swarm
from declarun.plan.swarm_diff import diff_swarm, plan_destroy_swarm, swarm_desired_hash
from declarun.plan.swarm_observed import (
    ObservedCluster,
    ObservedNode,
    ObservedService,
    ObservedSwarmObject,
    ObservedTask,
)
from declarun.stack.model import Stack
from tests.plan.helpers import load

STACK = """
stack: shop
networks:
  back: {}
containers:
  db:
    image: busybox:1.36
    replicas: 3
    networks: [back]
    restart: always
    healthcheck: {test: "true", interval: 1s, timeout: 1s, retries: 2}
  migrate:
    image: busybox:1.36
    run: once
    networks: [back]
    depends_on: {db: {condition: healthy}}
  web:
    image: busybox:1.36
    ports: ["8080:80"]
    env: {MODE: one}
    networks: [back]
    depends_on: {migrate: {condition: completed}}
"""

NODES = (
    ObservedNode(id="n1", hostname="node1", role="manager", state="ready", availability="active"),
    ObservedNode(id="n2", hostname="node2", role="worker", state="ready", availability="active"),
)


def _tasks(count: int, *, state: str = "running") -> tuple[ObservedTask, ...]:
    desired = "complete" if state == "complete" else "running"
    return tuple(
        ObservedTask(
            id=f"t{i}",
            slot=i,
            node="node1",
            state=state,
            desired_state=desired,
            current=True,
        )
        for i in range(1, count + 1)
    )


def applied(desired: DesiredSwarm) -> ObservedCluster:
    """The cluster right after a perfect apply of ``desired``."""
    services = {}
    for service in desired.services.values():
        spec = service.spec()
        job = service.run == "once"
        services[service.engine_name] = ObservedService(
            id=f"id-{service.name}",
            name=service.engine_name,
            version=10,
            labels=FrozenDict(spec["Labels"]),
            image=service.image_ref,
            replicas=service.replicas,
            is_job=job,
            tasks=_tasks(service.replicas, state="complete" if job else "running"),
        )
    networks = {
        n.engine_name: ObservedSwarmObject(
            id=f"id-{n.name}", name=n.engine_name, labels=FrozenDict(n.body["Labels"])
        )
        for n in desired.networks.values()
    }
    configs = {
        f.engine_name: ObservedSwarmObject(id=f"id-{f.name}", name=f.engine_name, labels=f.labels)
        for f in desired.files.values()
        if f.kind == "config"
    }
    return ObservedCluster(
        stack=desired.stack,
        services=FrozenDict(services),
        networks=FrozenDict(networks),
        configs=FrozenDict(configs),
        nodes=NODES,
    )


def plan_of(stack: Stack, cluster: ObservedCluster, desired: DesiredSwarm | None = None):  # type: ignore[no-untyped-def]
    wanted = desired or desired_swarm(stack, routing_mesh=False)
    return diff_swarm(stack, cluster, wanted, created_at="2026-01-01T00:00:00Z")


def test_an_empty_swarm_gets_everything_in_order(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    plan = plan_of(stack, ObservedCluster(stack="shop"))
    assert [(c.action, c.id) for c in plan.changes] == [
        ("create", "network:back"),
        ("create", "service:db"),
        ("create", "service:migrate"),
        ("create", "service:web"),
    ]
    web = plan.change("service:web")
    assert web.engine_name == "shop-web"
    assert set(web.depends_on) == {"network:back", "service:migrate"}
    assert [(w.on, w.condition) for w in web.waits] == [("service:migrate", "completed")]
    # Without IPVS the ports are published per node, and the plan says so.
    assert any(r.kind == "adapted" and "mode: host" in r.message for r in web.reasons)


def test_the_spec_is_swarm_s(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    desired = desired_swarm(stack, routing_mesh=False)
    db = desired.services["db"].spec()
    assert db["Mode"] == {"Replicated": {"Replicas": 3}}
    assert db["UpdateConfig"]["FailureAction"] == "rollback"
    assert db["UpdateConfig"]["Order"] == "start-first"
    assert db["UpdateConfig"]["Monitor"] == 5_000_000_000  # at least 5 s
    assert db["TaskTemplate"]["RestartPolicy"] == {"Condition": "any"}
    assert db["TaskTemplate"]["Networks"] == [{"Target": "shop-back", "Aliases": ["db"]}]
    assert db["EndpointSpec"] == {"Mode": "dnsrr", "Ports": []}
    migrate = desired.services["migrate"].spec()
    assert migrate["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert "UpdateConfig" not in migrate
    web = desired.services["web"].spec()
    # A fixed port on each task's node: the new task cannot start beside the old one.
    assert web["UpdateConfig"]["Order"] == "stop-first"
    assert web["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host", "PublishedPort": 8080}
    ]
    meshed = desired_swarm(stack, routing_mesh=True).services["web"].spec()
    assert meshed["EndpointSpec"]["Mode"] == "vip"
    assert meshed["EndpointSpec"]["Ports"][0]["PublishMode"] == "ingress"
    assert meshed["UpdateConfig"]["Order"] == "start-first"


def test_a_matching_swarm_needs_nothing(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    desired = desired_swarm(stack, routing_mesh=False)
    plan = plan_of(stack, applied(desired), desired)
    assert plan.is_empty
    assert all(not c.reasons for c in plan.changes)


def test_one_changed_field_is_an_update_of_that_service_alone(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    cluster = applied(desired_swarm(stack, routing_mesh=False))
    changed = load(tmp_path, STACK.replace("MODE: one", "MODE: two"))
    plan = plan_of(changed, cluster)
    assert [(c.action, c.id) for c in plan.actionable] == [("update", "service:web")]
    (why, *notes) = plan.change("service:web").reasons
    assert (why.kind, why.field, why.before, why.after) == (
        "field_changed",
        "env.MODE",
        "one",
        "two",
    )
    assert all(n.kind == "adapted" for n in notes)


def test_replicas_and_placement_are_part_of_a_service(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    cluster = applied(desired_swarm(stack, routing_mesh=False))
    changed = load(
        tmp_path,
        STACK.replace(
            "    replicas: 3\n",
            "    replicas: 4\n    placement: {constraints: [node.role==worker]}\n",
        ),
    )
    plan = plan_of(changed, cluster)
    db = plan.change("service:db")
    assert db.action == "update"
    assert {r.field for r in db.reasons} == {"replicas", "placement"}


def test_a_service_turned_job_is_replaced(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    cluster = applied(desired_swarm(stack, routing_mesh=False))
    changed = load(
        tmp_path,
        STACK.replace('    ports: ["8080:80"]\n', '    run: once\n    ports: ["8080:80"]\n'),
    )
    change = plan_of(changed, cluster).change("service:web")
    assert change.action == "recreate"
    assert any(r.field == "run" for r in change.reasons)


def test_missing_tasks_are_swarm_s_to_place_and_the_plan_says_so(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    cluster = applied(desired_swarm(stack, routing_mesh=False))
    db = cluster.services["shop-db"]
    down = replace(NODES[1], state="down")
    cluster = replace(
        cluster,
        services=FrozenDict({**cluster.services, "shop-db": replace(db, tasks=_tasks(2))}),
        nodes=(NODES[0], down),
    )
    plan = plan_of(stack, cluster)
    assert plan.is_empty  # nothing for declarun to do: Swarm reschedules
    (note,) = plan.change("service:db").reasons
    assert note.kind == "converging"
    assert note.message == "2 of 3 tasks running: Swarm is placing the rest; nodes down: node2"


def test_a_failed_job_runs_again_and_a_stopped_service_is_started(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    cluster = applied(desired_swarm(stack, routing_mesh=False))
    failed = (
        ObservedTask(
            id="f1",
            slot=1,
            node="node2",
            state="failed",
            desired_state="shutdown",
            current=True,
            error="task: non-zero exit (3)",
            exit_code=3,
        ),
    )
    services = dict(cluster.services)
    services["shop-migrate"] = replace(services["shop-migrate"], tasks=failed)
    services["shop-web"] = replace(services["shop-web"], tasks=_tasks(1, state="complete"))
    plan = plan_of(stack, replace(cluster, services=FrozenDict(services)))
    migrate = plan.change("service:migrate")
    assert migrate.action == "start"
    assert migrate.reasons[0].kind == "job_failed"
    assert "non-zero exit (3)" in migrate.reasons[0].message
    assert plan.change("service:web").action == "start"


def test_foreign_names_and_built_images_are_errors(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    cluster = applied(desired_swarm(stack, routing_mesh=False))
    web = cluster.services["shop-web"]
    services = {**cluster.services, "shop-web": replace(web, labels=FrozenDict({"x": "y"}))}
    plan = plan_of(stack, replace(cluster, services=FrozenDict(services)))
    assert plan.change("service:web").action == "error"
    assert plan.change("service:web").reasons[0].kind == "foreign"
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox:1.36\n")
    built = load(
        tmp_path,
        """
        stack: b
        images:
          mine: {build: ./ctx}
        containers:
          app: {image: mine}
        """,
    )
    change = plan_of(built, ObservedCluster(stack="b")).change("service:app")
    assert change.action == "error"
    assert "has no ref: a Swarm's nodes pull their images" in change.reasons[0].message
    assert "declarun build --push" in change.reasons[0].message
    pushed = load(
        tmp_path,
        """
        stack: b
        images:
          mine: {ref: "registry.test/b/mine:1", build: ./ctx}
        containers:
          app: {image: mine}
        """,
    )
    change = plan_of(pushed, ObservedCluster(stack="b")).change("service:app")
    assert change.action == "create"
    assert desired_swarm(pushed, routing_mesh=False).services["app"].image_ref == (
        "registry.test/b/mine:1"
    )
    assert any("the nodes pull registry.test/b/mine:1" in r.message for r in change.reasons)


def test_orphans_are_removed_after_the_services_that_used_them(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    desired = desired_swarm(stack, routing_mesh=False)
    cluster = applied(desired)
    labels = FrozenDict(
        {"dev.declarun.stack": "shop", "dev.declarun.resource": "config:old.conf-abc"}
    )
    old = ObservedSwarmObject(id="c-old", name="shop-old.conf-abc", labels=labels)
    gone = replace(
        cluster.services["shop-web"],
        name="shop-api",
        labels=FrozenDict({"dev.declarun.stack": "shop", "dev.declarun.resource": "service:api"}),
    )
    cluster = replace(
        cluster,
        configs=FrozenDict({old.name: old}),
        services=FrozenDict({**cluster.services, "shop-api": gone}),
    )
    plan = plan_of(stack, cluster, desired)
    assert plan.change("config:old.conf-abc").action == "remove"
    assert "service:api" in plan.change("config:old.conf-abc").depends_on
    assert plan.change("service:api").action == "remove"
    kept = diff_swarm(stack, cluster, desired, prune=False)
    assert kept.change("service:api").action == "noop"
    assert kept.change("service:api").reasons[0].kind == "kept"


def test_files_become_content_addressed_configs(tmp_path: Path) -> None:
    stack = load(
        tmp_path,
        """
        stack: cf
        containers:
          app:
            image: busybox:1.36
            volumes: ["/etc/app.conf:/etc/app.conf:ro"]
        """,
    )
    files = {"/etc/app.conf": (HostFile(relative="", data=b"colour=blue\n"),)}
    desired = desired_swarm(stack, routing_mesh=False, host_files=files)
    (config,) = desired.files.values()
    assert config.kind == "config"
    assert config.engine_name.startswith("cf-app.conf-")
    refs = desired.services["app"].spec()["TaskTemplate"]["ContainerSpec"]["Configs"]
    assert refs == [
        {
            "File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0", "Mode": 0o444},
            "ConfigName": config.engine_name,
        }
    ]
    other = desired_swarm(
        stack,
        routing_mesh=False,
        host_files={"/etc/app.conf": (HostFile(relative="", data=b"colour=green\n"),)},
    )
    assert next(iter(other.files.values())).engine_name != config.engine_name
    assert swarm_desired_hash(other) != swarm_desired_hash(desired)
    unreadable = desired_swarm(
        stack,
        routing_mesh=False,
        host_files={"/etc/app.conf": (HostFile(relative="", data=None, problem="denied"),)},
    )
    plan = diff_swarm(stack, ObservedCluster(stack="cf"), unreadable)
    assert plan.change("service:app").action == "error"


def test_the_fingerprint_covers_specs_not_tasks(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    cluster = applied(desired_swarm(stack, routing_mesh=False))
    db = cluster.services["shop-db"]
    moved = replace(
        cluster,
        services=FrozenDict({**cluster.services, "shop-db": replace(db, tasks=_tasks(1))}),
    )
    assert moved.fingerprint() == cluster.fingerprint()
    updated = replace(
        cluster,
        services=FrozenDict({**cluster.services, "shop-db": replace(db, version=11)}),
    )
    assert updated.fingerprint() != cluster.fingerprint()


def test_destroy_removes_dependents_first_then_the_rest(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    cluster = applied(desired_swarm(stack, routing_mesh=False))
    plan = plan_destroy_swarm(stack, cluster, created_at="2026-01-01T00:00:00Z")
    order = [c.id for c in plan.changes]
    assert order.index("service:web") < order.index("service:migrate") < order.index("service:db")
    assert order[-1] == "network:back"
    assert all(c.action == "remove" for c in plan.changes)


# -- what the stack language gained: external and renamed objects, init, hosts, DNS ---------

EXTERNAL = """
stack: shop
networks:
  proxy: {external: true}
  back: {engine_name: shop-backend, driver_opts: {encrypted: ""}}
volumes:
  certs: {external: true, engine_name: tls-certs}
  data: {engine_name: shop-data}
containers:
  web:
    image: busybox:1.36
    networks: [proxy, back]
    volumes: ["certs:/certs", "data:/data"]
    init: true
    extra_hosts: ["db.local:10.0.0.5", "v6.local:::1"]
    dns: ["1.1.1.1"]
"""


def test_external_and_renamed_networks_and_volumes_on_a_swarm(tmp_path: Path) -> None:
    stack = load(tmp_path, EXTERNAL)
    desired = desired_swarm(stack, routing_mesh=False)
    spec = desired.services["web"].spec()
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert [n["Target"] for n in spec["TaskTemplate"]["Networks"]] == ["proxy", "shop-backend"]
    mounts = {m["Target"]: m for m in container["Mounts"]}
    assert mounts["/certs"]["Source"] == "tls-certs"
    assert "VolumeOptions" not in mounts["/certs"]  # used as it is: no labels of ours
    assert mounts["/data"]["Source"] == "shop-data"
    assert mounts["/data"]["VolumeOptions"]["Labels"]["dev.declarun.stack"] == "shop"
    assert any("external volume tls-certs" in n for n in desired.services["web"].notes)
    assert desired.networks["back"].body["Options"] == {"encrypted": ""}
    assert desired.networks["proxy"].external
    assert (container["Init"], container["Hosts"], container["DNSConfig"]) == (
        True,
        ["10.0.0.5 db.local", "::1 v6.local"],
        {"Nameservers": ["1.1.1.1"]},
    )

    # The external network missing: an error change, never a create.
    plan = plan_of(stack, ObservedCluster(stack="shop"), desired)
    proxy = plan.change("network:proxy")
    assert proxy.action == "error"
    assert proxy.reasons[0].kind == "external_missing"
    assert plan.change("network:back").action == "create"
    assert plan.change("network:back").engine_name == "shop-backend"

    # Present (someone else's, unlabelled): used as it is, and never removed by destroy.
    cluster = ObservedCluster(
        stack="shop",
        networks=FrozenDict(
            {
                "proxy": ObservedSwarmObject(id="id-proxy", name="proxy", labels=FrozenDict()),
                "shop-backend": ObservedSwarmObject(
                    id="id-back",
                    name="shop-backend",
                    labels=FrozenDict(desired.networks["back"].body["Labels"]),
                ),
            }
        ),
        nodes=NODES,
    )
    plan = plan_of(stack, cluster, desired)
    assert plan.change("network:proxy").action == "noop"
    assert plan.change("network:back").action == "noop"
    assert [c.id for c in plan_destroy_swarm(stack, cluster).changes] == ["network:back"]
