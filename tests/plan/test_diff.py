"""The plan function over constructed snapshots: each action, each reason, ordering, masking."""

from __future__ import annotations

import builtins
import os
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from declarun.frozen import FrozenDict
from declarun.plan.desired import desired_state
from declarun.plan.diff import diff, plan_destroy
from declarun.plan.identity import LABEL_KEEP, LABEL_PROFILES, LABEL_STACK
from declarun.plan.lock import Lock, LockedImage
from declarun.plan.model import Plan
from declarun.plan.observed import ObservedImage, ObservedNetwork, ObservedState, ObservedVolume
from declarun.plan.render import plan_text
from tests.plan.helpers import IMAGE_ID, load, matching_snapshot, with_container, without

SHOP = """
stack: shop
volumes:
  data: {}
  uploads: {keep: true}
networks:
  back: {internal: true}
containers:
  db:
    image: busybox:1.36
    env: {LOG_LEVEL: info, DB_PASSWORD: hunter2, API: {value: sesame, secret: true}}
    volumes: [data:/data]
    networks: [back]
    healthcheck: {test: "true", interval: 1s}
  migrate:
    image: busybox:1.36
    run: once
    depends_on: {db: {condition: healthy}}
    networks: [back]
  web:
    image: busybox:1.36
    command: ["httpd", "-f"]
    ports: ["8080:80"]
    volumes: ["uploads:/up"]
    networks: [back, default]
    depends_on: {migrate: {condition: completed}}
"""


def _plan(stack: Any, snapshot: ObservedState, **options: Any) -> Plan:
    return diff(stack, snapshot, created_at="2024-01-01T00:00:00Z", **options)


def _actions(plan: Plan) -> dict[str, str]:
    return {c.id: c.action for c in plan.changes if c.action != "noop"}


def test_empty_engine_creates_everything_in_dependency_order(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    plan = _plan(stack, ObservedState(stack="shop"))
    assert _actions(plan) == {
        "image:busybox:1.36": "pull",
        "volume:data": "create",
        "volume:uploads": "create",
        "network:back": "create",
        "network:default": "create",
        "container:db": "create",
        "container:migrate": "create",
        "container:web": "create",
    }
    order = [c.id for c in plan.changes]
    for change in plan.changes:
        for needed in change.depends_on:
            assert order.index(needed) < order.index(change.id)
    web = plan.change("container:web")
    assert set(web.depends_on) == {
        "image:busybox:1.36",
        "volume:uploads",
        "network:back",
        "network:default",
        "container:migrate",
    }
    assert [(w.on, w.condition) for w in web.waits] == [("container:migrate", "completed")]
    assert [(w.on, w.condition) for w in plan.change("container:migrate").waits] == [
        ("container:db", "healthy")
    ]
    assert all(c.reasons[0].kind == "missing" for c in plan.actionable)


def test_a_perfectly_applied_stack_plans_nothing(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    plan = _plan(stack, matching_snapshot(stack))
    assert plan.is_empty, plan.actionable


def test_one_field_changed_replaces_that_container_and_says_why(tmp_path: Path) -> None:
    before = load(tmp_path, SHOP)
    snapshot = matching_snapshot(before)
    after = load(
        tmp_path,
        SHOP.replace('"8080:80"', '"8081:80"').replace("LOG_LEVEL: info", "LOG_LEVEL: debug"),
    )
    plan = _plan(after, snapshot)
    assert _actions(plan) == {"container:web": "recreate", "container:db": "recreate"}
    (reason,) = plan.change("container:web").reasons
    assert (reason.kind, reason.field, reason.before, reason.after) == (
        "field_changed",
        "ports",
        ("8080:80/tcp",),
        ("8081:80/tcp",),
    )
    (reason,) = plan.change("container:db").reasons
    assert (reason.field, reason.before, reason.after) == ("env.LOG_LEVEL", "info", "debug")


def test_changes_that_do_not_shape_a_container_do_not_replace_it(tmp_path: Path) -> None:
    before = load(tmp_path, SHOP)
    snapshot = matching_snapshot(before)
    after = load(tmp_path, SHOP.replace("depends_on: {migrate: {condition: completed}}", ""))
    assert _plan(after, snapshot).is_empty


def test_secrets_are_masked_in_reasons_json_and_labels(tmp_path: Path) -> None:
    before = load(tmp_path, SHOP)
    snapshot = matching_snapshot(before)
    labels_text = repr(snapshot.containers["shop-db"].labels)
    assert "hunter2" not in labels_text and "sesame" not in labels_text
    after = load(tmp_path, SHOP.replace("hunter2", "hunter3").replace("sesame", "open"))
    plan = _plan(after, snapshot)
    reasons = {r.field: r for r in plan.change("container:db").reasons}
    assert set(reasons) == {"env.DB_PASSWORD", "env.API"}
    for reason in reasons.values():
        assert str(reason.before).startswith("*** (sha256:")
        assert reason.before != reason.after
    text = plan.to_json()
    for secret in ("hunter2", "hunter3", "sesame", "open"):
        assert f'"{secret}' not in text and f'{secret}"' not in text


def test_env_file_content_change_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "app.env").write_text("MODE=one\n")
    text = SHOP.replace("    command: [", "    env_file: app.env\n    command: [")
    snapshot = matching_snapshot(load(tmp_path, text))
    (tmp_path / "app.env").write_text("# same values, new comment\nMODE=one\n")
    plan = _plan(load(tmp_path, text), snapshot)
    assert _actions(plan) == {"container:web": "recreate"}
    (reason,) = plan.change("container:web").reasons
    assert reason.kind == "input_changed"
    assert reason.field == str(tmp_path / "app.env")
    assert f"env file changed: {tmp_path / 'app.env'} (sha256 " in reason.message


def test_read_only_bind_content_change_recreates_writable_binds_are_data(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.ini").write_text("a=1\n")
    (tmp_path / "scratch").mkdir()
    text = SHOP.replace(
        'volumes: ["uploads:/up"]', 'volumes: ["uploads:/up", "./conf:/etc/app:ro", "./scratch:/s"]'
    )
    stack = load(tmp_path, text)
    snapshot = matching_snapshot(stack)
    (tmp_path / "scratch" / "written-by-the-container").write_text("x")
    assert _plan(stack, replace(snapshot, inputs=matching_snapshot(stack).inputs)).is_empty
    (tmp_path / "conf" / "app.ini").write_text("a=2\n")
    fresh = replace(snapshot, inputs=matching_snapshot(stack).inputs)
    plan = _plan(stack, fresh)
    (reason,) = plan.change("container:web").reasons
    assert reason.kind == "input_changed" and reason.field == str(tmp_path / "conf")
    assert "bind-mounted file changed" in reason.message


def test_image_changed_under_the_same_tag_recreates(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    snapshot = matching_snapshot(stack)
    newer = "sha256:" + "9" * 64
    images = FrozenDict({"busybox:1.36": ObservedImage(ref="busybox:1.36", id=newer)})
    plan = _plan(stack, replace(snapshot, images=images))
    assert set(_actions(plan).values()) == {"recreate"}
    reason = plan.change("container:web").reasons[0]
    assert (reason.kind, reason.before, reason.after) == ("image_changed", IMAGE_ID, newer)


def test_a_locked_digest_not_present_is_pulled_and_replaces_its_containers(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    snapshot = matching_snapshot(stack)
    digest = "sha256:" + "a" * 64
    lock = Lock(
        stack="shop",
        images=FrozenDict(
            {
                "busybox:1.36": LockedImage(
                    "busybox:1.36", "busybox", FrozenDict({"linux/amd64": digest})
                )
            }
        ),
    )
    plan = _plan(stack, snapshot, lock=lock)
    pull = plan.change("image:busybox:1.36")
    assert (pull.action, pull.engine_name) == ("pull", f"busybox@{digest}")
    reason = plan.change("container:db").reasons[0]
    assert (reason.kind, reason.after) == ("image_changed", digest)
    # Once pulled and the containers run it, nothing is left to do.
    locked = matching_snapshot(stack, lock=lock)
    assert _plan(stack, locked, lock=lock).is_empty


def _named_image(pull: str) -> str:
    images = f"images:\n  bb: {{ref: 'busybox:1.36', pull: {pull}}}\n"
    return SHOP.replace("image: busybox:1.36", "image: bb") + images


def test_pull_policies(tmp_path: Path) -> None:
    never = load(tmp_path, _named_image("never"))
    plan = _plan(never, without(matching_snapshot(never), "images", "busybox:1.36"))
    change = plan.change("image:bb")
    assert change.action == "error" and change.reasons[0].kind == "image_missing"
    assert plan.errors == (change,)
    assert _plan(never, matching_snapshot(never)).is_empty
    always = load(tmp_path, _named_image("always"))
    change = _plan(always, matching_snapshot(always)).change("image:bb")
    assert (change.action, change.reasons[0].kind) == ("pull", "pull_policy")
    missing = load(tmp_path, _named_image("missing"))
    plan = _plan(missing, without(matching_snapshot(missing), "images", "busybox:1.36"))
    assert _actions(plan) == {"image:bb": "pull"}


def test_stopped_services_start_and_dead_ones_are_replaced(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    snapshot = with_container(matching_snapshot(stack), "shop-web", state="exited", exit_code=137)
    change = _plan(stack, snapshot).change("container:web")
    assert change.action == "start"
    assert (change.reasons[0].kind, change.reasons[0].message) == (
        "stopped",
        "the container exited with code 137",
    )
    snapshot = with_container(snapshot, "shop-web", state="dead")
    assert _plan(stack, snapshot).change("container:web").action == "recreate"
    snapshot = with_container(snapshot, "shop-web", state="created", exit_code=None)
    assert _plan(stack, snapshot).change("container:web").action == "start"


def test_a_service_that_keeps_dying_is_left_alone_with_the_reason(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    world = matching_snapshot(stack)
    # Exited by itself moments after its start: starting it again would fail the same way.
    dies = with_container(world, "shop-web", state="exited", exit_code=1, ran_for=0.2)
    plan = _plan(stack, dies)
    change = plan.change("container:web")
    assert (change.action, change.reasons[0].kind) == ("noop", "crashing")
    assert "dies at start: it exited with code 1 0.2 s after it started" in (
        change.reasons[0].message
    )
    assert plan.is_empty
    text = plan_text(plan)
    assert "No changes to make." in text and "1 container keeps dying (web)" in text
    assert "The machine matches the stack" not in text
    # Restarted by its policy and restarting again: the engine's back-off is left to work.
    looping = with_container(world, "shop-web", state="restarting", exit_code=4, restart_count=5)
    change = _plan(stack, looping).change("container:web")
    assert (change.action, change.reasons[0].kind) == ("noop", "crashing")
    assert "5 restarts so far" in change.reasons[0].message
    caught_up = with_container(world, "shop-web", state="running", restart_count=3)
    assert _plan(stack, caught_up).change("container:web").reasons[0].kind == "crashing"
    # A stop (SIGTERM/SIGKILL) or a long run is not a crash: the service is started again.
    for stopped in (
        with_container(world, "shop-web", state="exited", exit_code=143, ran_for=0.5),
        with_container(world, "shop-web", state="exited", exit_code=1, ran_for=3600.0),
    ):
        assert _plan(stack, stopped).change("container:web").action == "start"
    # A job that failed quickly still runs again: jobs end by nature.
    job = with_container(world, "shop-migrate", exit_code=3, ran_for=0.1)
    assert _plan(stack, job).change("container:migrate").action == "start"


def test_run_once_jobs_run_again_only_on_change_or_failure(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    done = matching_snapshot(stack)
    assert done.containers["shop-migrate"].state == "exited"
    assert _plan(stack, done).change("container:migrate").action == "noop"
    failed = with_container(done, "shop-migrate", exit_code=3)
    change = _plan(stack, failed).change("container:migrate")
    assert (change.action, change.reasons[0].kind) == ("start", "job_failed")
    running = with_container(done, "shop-migrate", state="running", exit_code=None)
    assert _plan(stack, running).change("container:migrate").action == "noop"
    changed = load(
        tmp_path, SHOP.replace("    run: once\n", "    run: once\n    command: [echo, v2]\n")
    )
    change = _plan(changed, done).change("container:migrate")
    assert (change.action, change.reasons[0].field) == ("recreate", "command")


def test_orphans_are_removed_unless_prune_is_off(tmp_path: Path) -> None:
    full = load(tmp_path, SHOP)
    snapshot = matching_snapshot(full)
    smaller = load(
        tmp_path,
        SHOP.split("  web:")[0].replace("  back: {internal: true}\n", "  back: {internal: true}\n"),
    )
    plan = _plan(smaller, snapshot)
    web = plan.change("container:web")
    assert (web.action, web.reasons[0].kind, web.observed_id) == ("remove", "orphan", "id-shop-web")
    assert plan.change("network:default").action == "remove"
    assert "container:web" in plan.change("network:default").depends_on
    kept = _plan(smaller, snapshot, prune=False)
    assert kept.change("container:web").action == "noop"
    assert kept.change("container:web").reasons[0].kind == "kept"
    assert kept.is_empty


def test_inactive_profile_orphans_say_so(tmp_path: Path) -> None:
    text = SHOP + "  debug:\n    image: busybox:1.36\n    profiles: [debug]\n"
    with_debug = load(tmp_path, text, profiles=frozenset({"debug"}))
    snapshot = matching_snapshot(with_debug)
    assert snapshot.containers["shop-debug"].labels[LABEL_PROFILES] == "debug"
    change = _plan(load(tmp_path, text), snapshot).change("container:debug")
    assert change.action == "remove"
    assert change.reasons[0].message == "its profiles (debug) are not active"


def test_scaled_down_replicas_are_removed(tmp_path: Path) -> None:
    text = SHOP.replace('    ports: ["8080:80"]\n', "    replicas: 3\n")
    snapshot = matching_snapshot(load(tmp_path, text))
    plan = _plan(load(tmp_path, text.replace("replicas: 3", "replicas: 2")), snapshot)
    assert _actions(plan) == {"container:web-3": "remove"}
    assert (
        plan.change("container:web-3").reasons[0].message == "container web has fewer replicas now"
    )


def test_orphan_volumes_need_volumes_and_never_keep(tmp_path: Path) -> None:
    full = load(tmp_path, SHOP)
    snapshot = matching_snapshot(full)
    assert snapshot.volumes["shop-uploads"].labels[LABEL_KEEP] == "true"
    bare = load(tmp_path, "stack: shop\n")
    default = _plan(bare, snapshot)
    assert default.change("volume:data").action == "noop"
    assert "unless --volumes" in default.change("volume:data").reasons[0].message
    wiped = _plan(bare, snapshot, volumes=True)
    assert wiped.change("volume:data").action == "remove"
    assert wiped.change("volume:uploads").action == "noop"
    assert wiped.change("volume:uploads").reasons[0].message.endswith("kept (keep: true)")
    assert "container:db" in wiped.change("volume:data").depends_on


def test_a_name_taken_by_a_foreign_object_is_a_blocking_error(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    snapshot = with_container(
        ObservedState(stack="shop"), "shop-web", id="abc", labels=FrozenDict({"team": "x"})
    )
    snapshot = replace(
        snapshot,
        networks=FrozenDict(
            {
                "shop-back": ObservedNetwork(
                    id="n1", name="shop-back", labels=FrozenDict({LABEL_STACK: "other"})
                )
            }
        ),
    )
    plan = _plan(stack, snapshot)
    web, back = plan.change("container:web"), plan.change("network:back")
    assert (web.action, web.reasons[0].kind) == ("error", "foreign")
    assert "belongs to no declarun stack" in web.reasons[0].message
    assert "belongs to stack 'other'" in back.reasons[0].message
    assert {c.id for c in plan.errors} == {"container:web", "network:back"}
    # A foreign object is never an orphan of ours, even if nothing wants its name any more.
    assert _plan(load(tmp_path, "stack: shop\n"), snapshot).is_empty


def test_network_change_replaces_it_and_its_containers(tmp_path: Path) -> None:
    snapshot = matching_snapshot(load(tmp_path, SHOP))
    plan = _plan(
        load(tmp_path, SHOP.replace("back: {internal: true}", "back: {internal: false}")), snapshot
    )
    assert _actions(plan) == {
        "network:back": "recreate",
        "container:db": "recreate",
        "container:migrate": "recreate",
        "container:web": "recreate",
    }
    assert plan.change("network:back").reasons[0].field == "internal"
    assert plan.change("container:web").reasons[0].kind == "dependency_replaced"


def test_volume_changes_are_reported_never_applied(tmp_path: Path) -> None:
    snapshot = matching_snapshot(load(tmp_path, SHOP))
    plan = _plan(load(tmp_path, SHOP.replace("data: {}", "data: {labels: {tier: db}}")), snapshot)
    change = plan.change("volume:data")
    assert change.action == "noop"
    assert [r.kind for r in change.reasons] == ["field_changed", "not_replaced"]
    assert change.reasons[0].field == "labels.tier"
    assert plan.is_empty


def test_unrecorded_configuration_still_recreates(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    snapshot = matching_snapshot(stack)
    labels = dict(snapshot.containers["shop-web"].labels)
    labels["dev.declarun.config-hash"] = "sha256:old"
    del labels["dev.declarun.config"]
    plan = _plan(stack, with_container(snapshot, "shop-web", labels=FrozenDict(labels)))
    assert plan.change("container:web").reasons[0].kind == "config_changed"


def test_creations_wait_for_orphan_removal(tmp_path: Path) -> None:
    snapshot = matching_snapshot(load(tmp_path, SHOP))
    renamed = load(
        tmp_path,
        SHOP.replace("  web:", "  front:").replace(
            "migrate: {condition: completed}", "migrate: {}"
        ),
    )
    plan = _plan(renamed, snapshot)
    assert plan.change("container:web").action == "remove"
    assert "container:web" in plan.change("container:front").depends_on


def test_destroy_removes_what_is_owned_dependents_first(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    snapshot = matching_snapshot(stack)
    snapshot = replace(
        snapshot,
        volumes=FrozenDict({**snapshot.volumes, "shop-data2": ObservedVolume(name="shop-data2")}),
    )
    plan = plan_destroy(stack, snapshot, created_at="t")
    assert plan.mode == "destroy"
    assert _actions(plan) == {
        "container:db": "remove",
        "container:migrate": "remove",
        "container:web": "remove",
        "network:back": "remove",
        "network:default": "remove",
    }
    assert "container:web" in plan.change("container:migrate").depends_on
    assert "container:migrate" in plan.change("container:db").depends_on
    assert set(plan.change("network:back").depends_on) >= {"container:db", "container:web"}
    wiped = plan_destroy(stack, snapshot, volumes=True, created_at="t")
    assert wiped.change("volume:data").action == "remove"
    assert wiped.change("volume:uploads").action == "noop"
    assert "volume:data2" not in {c.id for c in wiped.changes}  # foreign: not ours


def test_diff_is_pure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    text = SHOP.replace(
        'volumes: ["uploads:/up"]', 'volumes: ["uploads:/up", "./conf:/etc/app:ro"]'
    )
    stack = load(tmp_path, text)
    snapshot = with_container(matching_snapshot(stack), "shop-web", state="exited", exit_code=1)
    expected = _plan(stack, snapshot)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("diff did I/O")

    monkeypatch.setattr(socket, "socket", forbidden)
    monkeypatch.setattr(builtins, "open", forbidden)
    monkeypatch.setattr(os, "stat", forbidden)
    monkeypatch.setattr(os, "lstat", forbidden)
    monkeypatch.setattr(os, "scandir", forbidden)
    monkeypatch.setattr(Path, "read_text", forbidden)
    assert _plan(stack, snapshot) == expected
    assert plan_destroy(stack, snapshot, created_at="t").changes


def test_init_extra_hosts_and_dns_shape_the_container_only_when_set(tmp_path: Path) -> None:
    plain = load(tmp_path, "stack: shop\ncontainers: {web: {image: busybox}}\n")
    config = desired_state(plain).containers["web"].config
    assert not {"init", "extra_hosts", "dns"} & set(config)  # hashes of older stacks hold
    body = desired_state(plain).containers["web"].create_body()["HostConfig"]
    assert not {"Init", "ExtraHosts", "Dns"} & set(body)
    extended = load(
        tmp_path,
        "stack: shop\ncontainers:\n  web:\n    image: busybox\n    init: true\n"
        "    extra_hosts: {db: 10.0.0.5}\n    dns: [1.1.1.1]\n",
    )
    web = desired_state(extended).containers["web"]
    assert (web.config["init"], web.config["extra_hosts"], web.config["dns"]) == (
        True,
        ["db:10.0.0.5"],
        ["1.1.1.1"],
    )
    host = web.create_body()["HostConfig"]
    assert (host["Init"], host["ExtraHosts"], host["Dns"]) == (True, ["db:10.0.0.5"], ["1.1.1.1"])


def test_network_driver_opts_are_options_and_recorded_only_when_set(tmp_path: Path) -> None:
    plain = desired_state(load(tmp_path, "stack: shop\nnetworks: {back: {}}\n"))
    assert "driver_opts" not in plain.networks["back"].config
    assert "Options" not in plain.networks["back"].body
    stack = load(tmp_path, "stack: shop\nnetworks: {back: {driver_opts: [mtu=1400]}}\n")
    back = desired_state(stack).networks["back"]
    assert back.config["driver_opts"] == {"mtu": "1400"}
    assert back.body["Options"] == {"mtu": "1400"}


EXTERNAL = """
stack: shop
volumes:
  data: {external: true}
  cache: {engine_name: shop-cache-v2}
networks:
  proxy: {external: true, engine_name: traefik}
containers:
  web:
    image: busybox
    volumes: ["data:/data", "cache:/cache"]
    networks: [proxy]
"""


def test_external_volumes_and_networks_are_used_never_made(tmp_path: Path) -> None:
    stack = load(tmp_path, EXTERNAL)
    desired = desired_state(stack)
    assert (desired.volumes["data"].engine_name, desired.volumes["data"].external) == ("data", True)
    assert desired.volumes["cache"].engine_name == "shop-cache-v2"
    assert desired.networks["proxy"].engine_name == "traefik"
    web = desired.containers["web"]
    assert [m["Source"] for m in web.create_body()["HostConfig"]["Mounts"]] == [
        "data",
        "shop-cache-v2",
    ]
    assert web.create_body()["HostConfig"]["NetworkMode"] == "traefik"
    assert web.config["engine_names"] == {
        "volume:data": "data",
        "volume:cache": "shop-cache-v2",
        "network:proxy": "traefik",
    }
    missing = {c.id: c for c in _plan(stack, ObservedState(stack="shop")).changes}
    assert missing["volume:data"].action == "error"
    assert missing["network:proxy"].reasons[0].message == (
        "the external network traefik does not exist; declarun uses it but never creates it: "
        "create it yourself (docker network create traefik)"
    )
    assert missing["volume:cache"].action == "create"
    planned = _plan(stack, matching_snapshot(stack))  # the external ones exist, unlabelled
    assert planned.is_empty, [c for c in planned.changes if c.action != "noop"]


def test_waiting_for_health_that_can_never_come_is_an_error(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP.replace('    healthcheck: {test: "true", interval: 1s}\n', ""))
    world = without(matching_snapshot(stack), "containers", "shop-migrate")
    # The image is there and declares no health check: migrate would wait for ever.
    change = _plan(stack, world).change("container:migrate")
    assert (change.action, change.reasons[-1].kind) == ("error", "no_healthcheck")
    assert "db has no health check" in change.reasons[-1].message
    # The image's own health check counts; an image not pulled yet is not judged.
    image = world.images["busybox:1.36"]
    healthy_image = replace(
        world, images=FrozenDict({"busybox:1.36": replace(image, has_healthcheck=True)})
    )
    assert _plan(stack, healthy_image).change("container:migrate").action == "create"
    absent = without(world, "images", "busybox:1.36")
    assert _plan(stack, absent).change("container:migrate").action == "create"
    # With its own health check, as SHOP has it, all is well.
    own = load(tmp_path, SHOP)
    mine = without(matching_snapshot(own), "containers", "shop-migrate")
    assert _plan(own, mine).change("container:migrate").action == "create"
