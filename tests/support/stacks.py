"""The small web stack the reconciler's end-to-end tests apply, and helpers around it.

``db`` (health-checked, on a named volume) ← ``migrate`` (``run: once``, writes a file into
the volume) ← ``web`` (busybox httpd serving that file on a loopback-published port); all on
a user network. Variables: ``mode`` (web's env), ``port``, ``db_check`` (the health check
command), ``with_migrate`` (drop the job to make it an orphan).
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["WEB_STACK", "fetch", "unique_stack", "wait_until", "write_stack"]

WEB_STACK = """\
stack: {name}
vars:
  mode: one
  port: {port}
  db_check: "test -e /tmp/ok"
  with_migrate: true
volumes:
  data:
  keepme: {{keep: true}}
networks:
  back:
containers:
  db:
    image: {image}
    command: ["sh", "-c", "touch /tmp/ok; echo db up; exec sleep 3600"]
    networks: [back]
    volumes: ["data:/data", "keepme:/keep"]
    stop_grace_period: 1s
    healthcheck:
      test: "{{{{ vars.db_check }}}}"
      interval: 300ms
      timeout: 2s
      retries: 2
{migrate}
  web:
    image: {image}
    command: ["sh", "-c", "cp /data/migrated /var/www/index.html 2>/dev/null || echo no-migration > /var/www/index.html; exec httpd -f -p 80 -h /var/www"]
    env:
      MODE: "{{{{ vars.mode }}}}"
    ports: ["127.0.0.1:{{{{ vars.port }}}}:80"]
    volumes: ["data:/data"]
    networks: [back]
    stop_grace_period: 1s
    depends_on:
{web_deps}
"""

_MIGRATE = """\
  migrate:
    image: {image}
    command: ["sh", "-c", "echo migrated > /data/migrated; echo migration done"]
    run: once
    volumes: ["data:/data"]
    networks: [back]
    depends_on:
      db: {{condition: healthy}}
"""


def unique_stack(prefix: str) -> str:
    """A stack name no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def write_stack(path: Path, name: str, image: str, port: int, *, with_migrate: bool = True) -> Path:
    """Write the web stack to ``path``; returns it."""
    deps = ["      db: {condition: healthy}"]
    if with_migrate:
        deps.append("      migrate: {condition: completed}")
    text = WEB_STACK.format(
        name=name,
        image=image,
        port=port,
        migrate=_MIGRATE.format(image=image) if with_migrate else "",
        web_deps="\n".join(deps),
    )
    path.write_text(text)
    return path


def fetch(port: int) -> str:
    """GET http://127.0.0.1:<port>/ (loopback only) and return the body."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        return str(response.read().decode())


def wait_until(what: str, check: Callable[[], bool], limit: float = 60.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``limit`` seconds.

    A bound on waiting for an outcome, not a timing assertion: it only turns a hang into a
    readable failure.
    """
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)
