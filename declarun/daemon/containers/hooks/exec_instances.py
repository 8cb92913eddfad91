"""Exec instances (``docker exec``): created, started, inspected; kept in memory like dockerd's.

``POST /containers/{id}/exec`` makes an :class:`ExecInstance` (nothing runs yet);
``POST /exec/{id}/start`` starts it through :func:`declarun.daemon.containers.runtime.exec_session.start_exec`
(one conmon per session). Instances are not persisted -- dockerd forgets them at restart as
well -- and finished ones are dropped after :data:`FINISHED_TTL` seconds or when their
container is removed.

A process that cannot start (``exec: "nope": executable file not found in $PATH``) gets
dockerd's exit codes: 127 when the executable does not exist, 126 otherwise; its message
is prefixed like dockerd's (``OCI runtime exec failed: ...: unknown``).

The process spec is the container's own ``process`` from its ``config.json`` with the
exec's args, env, working directory, user and terminal, so capabilities, rlimits and
``noNewPrivileges`` are the container's; ``Privileged`` grants every capability.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declarun.daemon.containers.config.caps import effective_capabilities
from declarun.daemon.containers.runtime.exec_session import (
    ExecSession,
    ExecStartError,
    exec_process_spec,
    start_exec,
)
from declarun.daemon.containers.runtime.syncpipe import MonitorError
from declarun.daemon.containers.runtime.users import resolve_user
from declarun.errdefs import Conflict, InvalidArgument, NotFound

__all__ = [
    "FINISHED_TTL",
    "ExecConfig",
    "ExecInstance",
    "ExecManager",
    "ExecStartFailed",
    "build_process",
    "exec_dir",
    "start_failure",
]

log = logging.getLogger("declarun.daemon.exec")

FINISHED_TTL = 600.0


class ExecStartFailed(Conflict):
    """The exec'd process could not start; ``exit_code`` is 126 or 127 as in dockerd."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_EXEC_CONFIG_FIELDS = ("Cmd", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "Env",
                       "WorkingDir", "User", "Privileged", "DetachKeys")  # fmt: skip


def _fold_keys(body: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``body`` with its keys matched to ``fields`` as Go's JSON decoder matches them: an
    exact name first, else case-insensitively (docker-py sends ``detachKeys``)."""
    out = dict(body)
    for name in fields:
        if name not in out:
            for key, value in body.items():
                if key.lower() == name.lower():
                    out[name] = value
                    break
    return out


@dataclass(frozen=True)
class ExecConfig:
    """What ``POST /containers/{id}/exec`` asked for."""

    cmd: tuple[str, ...]
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    tty: bool = False
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    privileged: bool = False
    detach_keys: str = ""

    @classmethod
    def from_api(cls, body: Any) -> ExecConfig:
        """Validate an ``ExecConfig`` body (400 with dockerd's wording)."""
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON body: expected an object")
        body = _fold_keys(body, _EXEC_CONFIG_FIELDS)
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
            raise InvalidArgument("No exec command specified")
        env = body.get("Env") or []
        if not isinstance(env, list) or not all(isinstance(e, str) and "=" in e for e in env):
            raise InvalidArgument("invalid value for Env: expected a list of KEY=value")
        working_dir = body.get("WorkingDir") or ""
        if not isinstance(working_dir, str) or (working_dir and not working_dir.startswith("/")):
            raise InvalidArgument(
                f"the working directory '{working_dir}' is invalid, it needs to be an absolute path"
            )
        user = body.get("User") or ""
        if not isinstance(user, str):
            raise InvalidArgument("invalid value for User: expected a string")
        keys = body.get("DetachKeys") or ""
        return cls(
            cmd=tuple(cmd),
            attach_stdin=bool(body.get("AttachStdin")),
            attach_stdout=bool(body.get("AttachStdout")),
            attach_stderr=bool(body.get("AttachStderr")),
            tty=bool(body.get("Tty")),
            env=tuple(env),
            working_dir=working_dir,
            user=user,
            privileged=bool(body.get("Privileged")),
            detach_keys=keys if isinstance(keys, str) else "",
        )


@dataclass
class ExecInstance:
    """One exec: its configuration and, once started, its state."""

    id: str
    container_id: str
    config: ExecConfig
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    finished_at: float = 0.0
    session: ExecSession | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def to_inspect(self) -> dict[str, Any]:
        """``GET /exec/{id}/json``."""
        cmd = self.config.cmd
        return {
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": self.config.detach_keys,
            "ExitCode": self.exit_code,
            "ID": self.id,
            "OpenStderr": self.config.attach_stderr,
            "OpenStdin": self.config.attach_stdin,
            "OpenStdout": self.config.attach_stdout,
            "ProcessConfig": {
                "arguments": list(cmd[1:]),
                "entrypoint": cmd[0],
                "privileged": self.config.privileged,
                "tty": self.config.tty,
                "user": self.config.user,
            },
            "Running": self.running,
            "Pid": self.pid,
        }


def exec_dir(record: Any, exec_id: str) -> Path:
    """Where the session files of ``exec_id`` live (removed when it ends)."""
    return Path(record.bundle_dir) / "exec" / exec_id[:16]


def build_process(record: Any, config: ExecConfig) -> dict[str, Any]:
    """The OCI process of an exec in ``record``'s container (see module docstring)."""
    try:
        base = json.loads((Path(record.bundle_dir) / "config.json").read_text())["process"]
    except (OSError, ValueError, KeyError) as exc:
        raise Conflict(f"container {record.id} has no runtime configuration: {exc}") from None
    user_spec: dict[str, Any] | None = None
    env = list(config.env)
    if config.user:
        if record.rootfs_path is None:
            raise Conflict(f"Container {record.id} is not running")
        user = resolve_user(Path(record.rootfs_path), config.user)  # UnknownUserError: 400
        user_spec = {"uid": user.uid, "gid": user.gid,
                     "additionalGids": list(user.additional_gids)}  # fmt: skip
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
    process = exec_process_spec(base, config.cmd, env=env, cwd=config.working_dir or None,
                                user=user_spec, terminal=config.tty)  # fmt: skip
    if config.tty and not any(e.startswith("TERM=") for e in process.get("env", [])):
        process.setdefault("env", []).append("TERM=xterm")
    if config.privileged:
        caps = list(effective_capabilities((), (), privileged=True))
        process["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    return process


def start_failure(error: ExecStartError) -> ExecStartFailed:
    """dockerd's message and exit code for an exec the runtime refused."""
    text = str(error)
    _, sep, reason = text.partition(": ")
    reason = reason if sep and text.startswith("cannot exec in ") else text
    reason = reason.strip() or "unknown error"
    lowered = reason.lower()
    code = 127 if ("not found" in lowered or "no such file" in lowered) else 126
    return ExecStartFailed(f"OCI runtime exec failed: {reason}: unknown", code)


class ExecManager:
    """Every exec instance of the daemon, by ID."""

    def __init__(self) -> None:
        self._execs: dict[str, ExecInstance] = {}

    def create(self, record: Any, config: ExecConfig) -> ExecInstance:
        """A new, not yet started exec in ``record``'s container (409 unless it runs)."""
        if not record.state.running:
            raise Conflict(f"Container {record.id} is not running")
        if record.state.paused:
            raise Conflict(f"Container {record.id} is paused, unpause the container before exec")
        if record.state.restarting:
            raise Conflict(
                f"Container {record.id} is restarting, wait until the container is running"
            )
        self._sweep()
        instance = ExecInstance(secrets.token_hex(32), record.id, config)
        self._execs[instance.id] = instance
        return instance

    def get(self, exec_id: str) -> ExecInstance:
        """The exec with this ID (or unique prefix); 404 ``No such exec instance: ID``."""
        found = self._execs.get(exec_id)
        if found is None and len(exec_id) >= 4:
            matches = [e for key, e in self._execs.items() if key.startswith(exec_id)]
            found = matches[0] if len(matches) == 1 else None
        if found is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return found

    def forget_container(self, container_id: str) -> None:
        """Drop the execs of a removed container."""
        for key in [k for k, e in self._execs.items() if e.container_id == container_id]:
            del self._execs[key]

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self._execs.items()
                    if e.finished_at and now - e.finished_at > FINISHED_TTL]:  # fmt: skip
            del self._execs[key]

    def check_startable(self, record: Any, instance: ExecInstance) -> None:
        """Conflict, with dockerd's messages, unless ``instance`` can start now (checked
        before a client's connection is taken over, while errors are still HTTP answers)."""
        if instance.started:
            state = "is already running" if instance.running else "has already run"
            raise Conflict(f"Error: Exec command {instance.id} {state}")
        if not record.state.running:
            raise Conflict(f"Container {record.id} is not running")

    async def start(self, record: Any, instance: ExecInstance) -> ExecSession:
        """Start ``instance``; :class:`ExecStartFailed` (exit code recorded) on refusal."""
        if instance.started:
            raise Conflict(f"Error: Exec command {instance.id} has already run")
        if not record.state.running:
            raise Conflict(f"Container {record.id} is not running")
        instance.started = True
        process = build_process(record, instance.config)
        try:
            session = await start_exec(
                record.runtime, record.id, exec_dir(record, instance.id), process,
                exec_id=instance.id[:16], stdin=instance.config.attach_stdin,
            )  # fmt: skip
        except ExecStartError as exc:
            failure = start_failure(exc)
            self.finish(instance, failure.exit_code)
            raise failure from None
        instance.session = session
        instance.pid = session.pid
        instance.running = True
        return session

    def finish(self, instance: ExecInstance, exit_code: int) -> None:
        """Record the end of ``instance``."""
        instance.running = False
        instance.exit_code = exit_code
        instance.pid = 0
        instance.finished_at = time.monotonic()
        instance.done.set()

    async def wait_and_close(self, instance: ExecInstance) -> int:
        """Wait for a started exec's status, record it and release its session."""
        session = instance.session
        assert session is not None
        try:
            code = await session.wait()
        except (MonitorError, OSError) as exc:  # a lost conmon: report like a kill
            log.warning("exec %s: %s", instance.id[:12], exc)
            code = 137
        finally:
            session.close()
        self.finish(instance, code)
        return code

    def commands(self) -> Sequence[ExecInstance]:
        """All known execs (inspect lists them as ``ExecIDs``)."""
        return list(self._execs.values())
