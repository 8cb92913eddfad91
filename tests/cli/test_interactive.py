"""Interactive where people expect it, on each engine: ``exec`` on a terminal is a shell
(tested through a pseudo-terminal), piped input reaches the command, exit codes pass through;
``run`` makes a one-off copy with the container's networks and volumes; ``start``, ``stop``,
``restart`` and ``pull`` by name; ``logs -f`` follows a container across its replacement."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import StackCli
from tests.support.engine_fixtures import Engine
from tests.support.stacks import wait_until

STACK = """\
stack: {name}
vars:
  mode: one
volumes:
  data: {{}}
containers:
  app:
    image: {image}
    command: ["sh", "-c", "echo app says $MODE; echo stored > /data/f; exec sleep 3600"]
    env:
      MODE: "{{{{ vars.mode }}}}"
    volumes: ["data:/data"]
    stop_grace_period: 1s
  peer:
    image: {image}
    command: ["sleep", "3600"]
    depends_on: [app]
    stop_grace_period: 1s
"""


@pytest.fixture
def applied(engine: Engine, tmp_path: Path) -> Iterator[StackCli]:
    cli = StackCli(engine, tmp_path, STACK)
    done = cli.run("apply", "stack.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    yield cli
    cli.clean()


class _Terminal:
    """The user's side of a pseudo-terminal: type, and read until something shows.

    It answers as a terminal would: busybox's shell asks where the cursor is (ESC [6n)
    before each prompt and waits for the answer."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = bytearray()
        self.read_to = 0  # what the last expect() matched ends here

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def expect(self, wanted: bytes, limit: float = 30) -> None:
        deadline = time.monotonic() + limit
        while (found := self.seen.find(wanted, self.read_to)) < 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"never saw {wanted!r} in {bytes(self.seen)!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # the other side closed
                chunk = b""
            if not chunk:
                raise AssertionError(f"output ended before {wanted!r}: {bytes(self.seen)!r}")
            self.seen += chunk
            for _ in range(chunk.count(b"\x1b[6n")):
                os.write(self.fd, b"\x1b[10;5R")
        self.read_to = found + len(wanted)


def test_exec_on_a_terminal_is_an_interactive_shell(applied: StackCli) -> None:
    leader, follower = pty.openpty()
    shell = subprocess.Popen(
        applied.command("exec", "stack.yaml", "app", "--", "sh"),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=applied.tmp,
        env=applied.env(),
    )
    os.close(follower)
    terminal = _Terminal(leader)
    try:
        terminal.expect(b"# ")  # the shell's prompt: it waits for us
        terminal.type(b"echo hi-$((40+2))\n")
        terminal.expect(b"hi-42")
        terminal.expect(b"# ")
        terminal.type(b"tty; echo $MODE-mode\n")
        terminal.expect(b"one-mode")
        terminal.expect(b"# ")
        assert b"/dev/pts/" in terminal.seen  # a TTY was allocated for it
        terminal.type(b"exit 5\n")
        assert shell.wait(60) == 5, bytes(terminal.seen)
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        os.close(leader)
    assert b"Traceback" not in terminal.seen


def test_exec_passes_piped_input_and_the_exit_code(applied: StackCli) -> None:
    piped = applied.run("exec", "stack.yaml", "app", "--", "sh", "-c", "tr a-z A-Z; exit 3",
                        input="shout this\n")  # fmt: skip
    assert piped.returncode == 3, piped.stderr
    assert piped.stdout == "SHOUT THIS\n"
    apart = applied.run("exec", "-T", "stack.yaml", "app", "--", "sh", "-c",
                        "echo out; echo err >&2", input="")  # fmt: skip
    assert (apart.returncode, apart.stdout, apart.stderr) == (0, "out\n", "err\n")
    # No FILE: stack.yaml in the current directory, as Compose finds its file.
    found = applied.run("exec", "app", "--", "echo", "found", input="")
    assert (found.returncode, found.stdout) == (0, "found\n"), found.stderr


def test_run_makes_a_one_off_copy_with_networks_and_volumes(applied: StackCli) -> None:
    ran = applied.run("run", "stack.yaml", "app", "--", "sh", "-c",
                      "cat /data/f; echo $MODE; ping -c1 -W5 peer >/dev/null && echo reached; "
                      "exit 4", input="")  # fmt: skip
    assert ran.returncode == 4, ran.stdout + ran.stderr
    assert ran.stdout.splitlines() == ["stored", "one", "reached"]
    names = [c["Names"][0] for c in applied.engine.client.api.containers(all=True)]
    assert not [n for n in names if "-run-" in n and applied.name in n]  # --rm by default
    kept = applied.run("run", "--no-rm", "--name", f"{applied.name}-oneoff", "stack.yaml", "app",
                       "--", "true", input="")  # fmt: skip
    assert kept.returncode == 0, kept.stderr
    assert applied.inspect("oneoff") is not None
    # A one-off is not the stack's: no plan ever prunes or counts it.
    assert applied.run("plan", "stack.yaml").returncode == 0
    applied.engine.client.api.remove_container(f"{applied.name}-oneoff", force=True)
    unknown = applied.run("run", "stack.yaml", "nope", "--", "true", input="")
    assert unknown.returncode == 1 and "no container nope in the stack" in unknown.stderr


def test_run_before_apply_says_to_apply_first(engine: Engine, tmp_path: Path) -> None:
    cli = StackCli(engine, tmp_path, STACK)
    refused = cli.run("run", "stack.yaml", "app", "--", "true", input="")
    assert refused.returncode == 1
    assert "does not exist: run 'declarun apply' first" in refused.stderr


def test_start_stop_restart_and_pull_by_name(applied: StackCli) -> None:
    stopped = applied.run("stop", "stack.yaml", "app")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "✓ stop container app" in stopped.stdout and "Stopped 1 container." in stopped.stdout
    assert not (applied.inspect("app") or {})["State"]["Running"]
    assert (applied.inspect("peer") or {})["State"]["Running"]
    started = applied.run("start", "stack.yaml")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "Started 2 containers." in started.stdout
    before = (applied.inspect("app") or {})["State"]["StartedAt"]
    restarted = applied.run("restart", "stack.yaml", "app")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert (applied.inspect("app") or {})["State"]["StartedAt"] != before
    pulled = applied.run("pull", "stack.yaml", "peer")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "Pulled 1 image." in pulled.stdout
    unknown = applied.run("stop", "stack.yaml", "nope")
    assert unknown.returncode == 1 and "no container nope in the stack" in unknown.stderr


def test_logs_follow_a_container_across_its_replacement(applied: StackCli) -> None:
    follower = applied.popen("logs", "stack.yaml", "app", "-f")
    lines: list[str] = []

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until("the first log line", lambda: any("app says one" in x for x in lines), 60)
        replaced = applied.run("apply", "stack.yaml", "--var", "mode=two")
        assert replaced.returncode == 0, replaced.stdout + replaced.stderr
        wait_until("the new container's line", lambda: any("app says two" in x for x in lines))
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.communicate(timeout=30)
    assert any("(recreated; following the new one)" in x for x in lines), lines
