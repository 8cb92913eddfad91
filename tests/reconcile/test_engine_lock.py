"""The stack lock the engine arbitrates, on each engine: one holder at a time, the holder
named to whoever waits or is refused, a heartbeat, stale locks taken over safely."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from declarun.reconcile.engine_lock import (
    Holder,
    StackLocked,
    hold_stack_lock,
    lock_volume_name,
)
from tests.support.engine_fixtures import Engine
from tests.support.stacks import unique_stack


@pytest.fixture
def stack(engine: Engine) -> Iterator[str]:
    name = unique_stack("lk")
    yield name
    for volume in engine.client.api.volumes().get("Volumes") or ():
        if volume["Name"].startswith(lock_volume_name(name)):
            engine.client.api.remove_volume(volume["Name"])


def _lock_volumes(engine: Engine, stack: str) -> list[str]:
    return sorted(
        v["Name"]
        for v in engine.client.api.volumes().get("Volumes") or ()
        if v["Name"].startswith(lock_volume_name(stack))
    )


def test_one_holder_at_a_time_and_the_others_are_told_who(engine: Engine, stack: str) -> None:
    with hold_stack_lock(engine.adapter, stack, "apply") as me:
        assert _lock_volumes(engine, stack) == [lock_volume_name(stack)]
        labels = engine.client.api.inspect_volume(lock_volume_name(stack))["Labels"]
        assert Holder.from_labels(labels) == me
        with (
            pytest.raises(StackLocked) as refused,
            hold_stack_lock(engine.adapter, stack, "destroy", timeout=0),
        ):
            pytest.fail("a second holder got the lock")
        message = str(refused.value)
        assert f"stack '{stack}' is locked on this engine by 'declarun apply'" in message
        assert f"pid {os.getpid()} on host {os.uname().nodename}" in message
    assert _lock_volumes(engine, stack) == []  # released, beats and all


def test_a_waiter_gets_the_lock_when_it_is_released(engine: Engine, stack: str) -> None:
    order: list[str] = []
    told: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with hold_stack_lock(engine.adapter, stack, "apply"):
            first_holds.set()
            time.sleep(1.5)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    assert first_holds.wait(30)
    with hold_stack_lock(engine.adapter, stack, "apply", timeout=60, on_wait=told.append):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    assert len(told) == 1 and "waiting for it" in told[0] and "'declarun apply'" in told[0]


def test_heartbeats_show_the_holder_alive_and_are_cleaned_up(engine: Engine, stack: str) -> None:
    with hold_stack_lock(engine.adapter, stack, "watch", heartbeat=0.3):
        time.sleep(1.5)
        beats = [n for n in _lock_volumes(engine, stack) if ".beat." in n]
        assert len(beats) == 1  # each beat replaces the one before
    assert _lock_volumes(engine, stack) == []


def _plant(engine: Engine, stack: str, **fields: object) -> None:
    holder = Holder(
        **{
            "token": "f" * 32,
            "host": os.uname().nodename,
            "boot": Holder.me("x").boot,
            "pid": 999_999_999,  # no such process
            "pid_start": "12345",
            "user": "someone",
            "command": "apply",
            "since": time.time(),
            **fields,
        }  # type: ignore[arg-type]
    )
    engine.client.api.create_volume(lock_volume_name(stack), labels=holder.labels(stack))


def test_a_lock_whose_process_is_gone_is_taken_over(engine: Engine, stack: str) -> None:
    _plant(engine, stack)
    told: list[str] = []
    with hold_stack_lock(engine.adapter, stack, "apply", timeout=0, on_wait=told.append) as me:
        labels = engine.client.api.inspect_volume(lock_volume_name(stack))["Labels"]
        assert Holder.from_labels(labels).token == me.token
    assert told and "its process (pid 999999999) is gone" in told[0]


def test_a_remote_holder_is_trusted_until_its_heartbeat_expires(engine: Engine, stack: str) -> None:
    _plant(engine, stack, host="elsewhere", boot="another-boot", since=time.time() - 5)
    with (
        pytest.raises(StackLocked, match="on host elsewhere"),
        hold_stack_lock(engine.adapter, stack, "apply", timeout=0),
    ):
        pass
    engine.client.api.remove_volume(lock_volume_name(stack))
    _plant(engine, stack, host="elsewhere", boot="another-boot", since=time.time() - 3600)
    told: list[str] = []
    with hold_stack_lock(engine.adapter, stack, "apply", timeout=0, on_wait=told.append):
        pass
    assert told and "no sign of life for" in told[0]


def test_racing_takeovers_leave_exactly_one_holder(engine: Engine, stack: str) -> None:
    _plant(engine, stack)
    inside = 0
    peak = 0
    guard = threading.Lock()
    errors: list[BaseException] = []

    def contender() -> None:
        nonlocal inside, peak
        try:
            with hold_stack_lock(engine.adapter, stack, "apply", timeout=60):
                with guard:
                    inside += 1
                    peak = max(peak, inside)
                time.sleep(0.2)
                with guard:
                    inside -= 1
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=contender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert peak == 1
    assert _lock_volumes(engine, stack) == []
