"""What the engine commands do with ``--engine swarm``: the stack as services on a Swarm.

``plan``, ``apply``, ``destroy``, ``status``, ``logs``, ``exec`` and ``watch`` call in
here when their target is a Swarm manager; the output and exit codes are the same as on
one engine, and so are the stack's lock (held on the manager declarun talks to), the
gentle first Ctrl-C and the confirmation before destroying. ``exec`` runs in a container of one of the service's tasks *on that task's
node*: the manager cannot exec elsewhere, so it is reached at the address its Swarm node
label ``dev.declarun.engine-host`` gives (or the manager itself, for its own tasks).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from declarun.cli.apply_output import live_runner, print_report
from declarun.cli.confirm import confirmation
from declarun.cli.interrupt import interruptible
from declarun.cli.locking import held_lock
from declarun.cli.logs_output import follow_streams, print_logs
from declarun.cli.options import EngineTarget, StackSource
from declarun.cli.output import stderr_console, stdout_console
from declarun.cli.status_output import print_status
from declarun.cli.terminal import exec_attached
from declarun.engine.port import Engine
from declarun.engine.swarm_port import SwarmEngine
from declarun.errors import DeclarunError, EngineError
from declarun.plan.desired import volume_engine_name
from declarun.plan.model import Plan
from declarun.reconcile.apply import ApplyOptions, ApplyReport, PlanRun
from declarun.reconcile.executor import Cancellation
from declarun.reconcile.swarm_apply import (
    apply_saved_swarm_plan,
    apply_swarm,
    destroy_swarm,
    make_swarm_plan,
    swarm_status_rows,
)
from declarun.reconcile.swarm_volumes import remove_node_volumes
from declarun.stack.model import Stack

__all__ = [
    "ENGINE_HOST_LABEL",
    "swarm_apply",
    "swarm_destroy",
    "swarm_exec",
    "swarm_logs",
    "swarm_plan",
    "swarm_status",
    "swarm_watch",
]

#: The Swarm node label that says where a node's own engine answers (for ``exec``).
ENGINE_HOST_LABEL = "dev.declarun.engine-host"
_WATCH_EVERY = 5.0


def swarm_plan(stack: Stack, options: ApplyOptions, target: EngineTarget) -> Plan:
    """The plan on the Swarm ``target`` names."""
    with target.connect_swarm() as engine:
        return make_swarm_plan(engine, stack, options).plan


def swarm_apply(
    stack: Stack,
    saved: Plan | None,
    options: ApplyOptions,
    target: EngineTarget,
    *,
    yes: bool,
    lock_timeout: float,
) -> ApplyReport:
    """Apply ``stack`` (or carry out the ``saved`` plan) on the Swarm, showing progress,
    holding the stack's lock."""
    with (
        target.connect_swarm() as engine,
        held_lock(engine, stack.name, "apply", lock_timeout),
        interruptible(stdout_console) as cancel,
    ):
        if saved is not None:  # reviewed and saved on purpose: applied as it is
            return apply_saved_swarm_plan(engine, stack, saved, options, live_runner(), cancel)
        asked = confirmation("Apply", yes=yes, always=False)
        return apply_swarm(engine, stack, options, live_runner(asked), cancel)


def swarm_destroy(
    stack: Stack,
    parallel: int,
    target: EngineTarget,
    *,
    volumes: bool = False,
    yes: bool = False,
    lock_timeout: float = 0.0,
) -> ApplyReport:
    """Remove what ``stack`` owns on the Swarm; with ``volumes``, its named volumes on every
    node too (each node's engine reached at its ``dev.declarun.engine-host`` label), after
    the same confirmation as on one engine (``yes`` gives it)."""
    doomed = (
        [
            volume_engine_name(stack, name)
            for name, volume in stack.volumes.items()
            if not volume.keep and not volume.external
        ]
        if volumes
        else []
    )
    asked = confirmation("Destroy", yes=yes, always=True, volumes_besides=doomed)
    with (
        target.connect_swarm() as engine,
        held_lock(engine, stack.name, "destroy", lock_timeout),
    ):
        with interruptible(stdout_console) as cancel:
            report = destroy_swarm(
                engine, stack, parallel=parallel, on_plan=live_runner(asked), cancel=cancel
            )
        if not volumes or report.cancelled:
            return report
        if report.nothing_to_do:  # no service left to remove: the volumes are still asked about
            asked(report.remaining)
        own = engine.swarm_info().node_id
        nodes = engine.list_nodes()
        console = stdout_console()
        reachable: list[tuple[str, Engine]] = []
        with contextlib.ExitStack() as opened:
            for node in nodes:
                host = node.labels.get(ENGINE_HOST_LABEL)
                if node.id == own:
                    reachable.append((node.hostname, engine))
                elif host is None or node.state != "ready":
                    why = "it is not ready" if host else f"it has no {ENGINE_HOST_LABEL} label"
                    console.print(f"{node.hostname}: its volumes are left: {why}", markup=False)
                else:
                    try:
                        node_engine = opened.enter_context(EngineTarget(host, "docker").connect())
                    except DeclarunError as exc:
                        console.print(f"{node.hostname}: its volumes are left: {exc}", markup=False)
                        continue
                    reachable.append((node.hostname, node_engine))
            for line in remove_node_volumes(reachable, stack):
                console.print(line, markup=False, highlight=False)
        return report


def swarm_status(stack: Stack, output_format: str, target: EngineTarget) -> None:
    """Print each service (where its tasks run) and the other objects of the stack."""
    with target.connect_swarm() as engine:
        rows = swarm_status_rows(engine, stack)
    print_status(
        stack.name, rows, output_format, detail=("NODES", lambda row: ", ".join(row["nodes"]))
    )


class _ServiceLogs:
    """Service logs read as the log printer reads container logs."""

    def __init__(self, engine: SwarmEngine) -> None:
        self.engine = engine

    def container_logs(
        self, name: str, *, tail: int | None = None, timestamps: bool = False
    ) -> bytes:
        return b"".join(self.engine.service_logs(name, tail=tail, timestamps=timestamps))

    def follow_logs(
        self, name: str, *, tail: int | None = None, timestamps: bool = False
    ) -> Iterator[bytes]:
        return self.engine.service_logs(name, tail=tail, timestamps=timestamps, follow=True)


def _service_names(stack: Stack, wanted: tuple[str, ...]) -> list[str]:
    known = list(stack.containers)
    unknown = [name for name in wanted if name not in stack.containers]
    if unknown:
        raise EngineError(
            f"no service {', '.join(unknown)} in the stack (it has: {', '.join(known) or 'none'})"
        )
    return [f"{stack.name}-{name}" for name in (wanted or tuple(known))]


def swarm_logs(
    stack: Stack,
    services: tuple[str, ...],
    *,
    follow: bool,
    tail: int | None,
    timestamps: bool,
    target: EngineTarget,
) -> None:
    """The logs of the stack's services (every task, on every node), merged by time."""
    names = _service_names(stack, services)
    with target.connect_swarm() as engine:
        source = _ServiceLogs(engine)
        if follow:
            try:
                follow_streams(source, names, f"{stack.name}-", tail=tail, timestamps=timestamps)
            except KeyboardInterrupt:
                return
        else:
            print_logs(source, names, f"{stack.name}-", tail=tail, timestamps=timestamps)


def _task_container(engine: SwarmEngine, service: str, slot: int | None) -> tuple[str, str]:
    """(node id, container id) of a running task of ``service`` (of ``slot`` when given)."""
    tasks = [
        t
        for t in engine.list_tasks(service)
        if t.state == "running" and t.desired_state == "running" and t.container_id
    ]
    if slot is not None:
        tasks = [t for t in tasks if t.slot == slot]
    if not tasks:
        which = f" in slot {slot}" if slot is not None else ""
        raise EngineError(f"no task of {service}{which} is running")
    task = min(tasks, key=lambda t: t.slot or 0)
    return task.node_id, task.container_id


def _replica(stack: Stack, name: str) -> tuple[str, int | None]:
    """``web`` -> (web, None); ``web-2`` (a replica's name on one engine) -> (web, 2)."""
    if name in stack.containers:
        return name, None
    base, _, number = name.rpartition("-")
    if base in stack.containers and number.isdigit():
        return base, int(number)
    raise EngineError(f"no service {name} in the stack (it has: {', '.join(stack.containers)})")


def swarm_exec(
    stack: Stack,
    name: str,
    command: Sequence[str],
    *,
    user: str,
    workdir: str | None,
    env: tuple[str, ...],
    interactive: bool,
    tty: bool,
    target: EngineTarget,
) -> int:
    """Run ``command`` in a task of service ``name`` (``web-2``: the task in slot 2), on the
    node the task runs on, attached here as on one engine; returns its exit code."""
    service, slot = _replica(stack, name)

    def run(engine: Engine, container: str) -> int:
        return exec_attached(engine, container, command, user=user, workdir=workdir, env=env,
                             interactive=interactive, tty=tty)  # fmt: skip

    with target.connect_swarm() as engine:
        node_id, container = _task_container(engine, f"{stack.name}-{service}", slot)
        if node_id == engine.swarm_info().node_id:
            return run(engine, container)
        node = next((n for n in engine.list_nodes() if n.id == node_id), None)
        host = None if node is None else node.labels.get(ENGINE_HOST_LABEL)
        if host is None:
            where = node.hostname if node is not None else node_id
            raise EngineError(
                f"the task runs on node {where}, which does not say where its engine answers: "
                f"label it (docker node update --label-add {ENGINE_HOST_LABEL}=ADDRESS {where}) "
                "or run exec on that node"
            )
    # The task's own node, reached as Docker is (the manager cannot exec elsewhere).
    with EngineTarget(host, "docker").connect() as node_engine:
        return run(node_engine, container)


def swarm_watch(
    file: Path,
    source: StackSource,
    options: ApplyOptions,
    target: EngineTarget,
    lock_timeout: float,
) -> None:
    """Keep the Swarm matching ``file``: apply now, then again whenever the file changes or
    the Swarm drifts (looked at every few seconds: Swarm heals tasks itself, and what is
    left to put right is a changed or removed service). The stack's lock is held meanwhile."""
    from declarun.cli.watch_hooks import watch_hooks
    from declarun.reconcile.watch import watch_stack

    console, errors = stdout_console(), stderr_console()

    def on_report(report: ApplyReport) -> None:
        if not report.nothing_to_do:
            print_report(report, console)

    hooks = watch_hooks(console, errors, on_report, quiet_wakes=("start", "a periodic look"))
    stack = source.load_or_exit(file)  # a broken file at start is an ordinary error exit
    stop = threading.Event()
    with (
        target.connect_swarm() as engine,
        held_lock(engine, stack.name, "watch", lock_timeout),
        interruptible(lambda: console, on_request=stop.set) as cancel,
    ):

        def apply(
            _: Engine,
            stack: Stack,
            opts: ApplyOptions,
            on_plan: PlanRun,
            cancel: Cancellation | None,
        ) -> ApplyReport:
            return apply_swarm(engine, stack, opts, on_plan, cancel)

        console.print(f"Watching {file} on the swarm (Ctrl-C to stop).", markup=False)
        watch_stack(
            engine,
            file,
            source.load,
            options,
            stop,
            hooks,
            apply=apply,
            follow_events=False,
            every=_WATCH_EVERY,
            cancel=cancel,
        )
    console.print("Stopped watching.", markup=False)
