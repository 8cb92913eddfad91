"""Generated requests against a live declarund, from the repository's copy of the Swagger file.

Schemathesis reads ``tests/reference/docker-engine-api-v1.45.yaml`` (Swagger 2.0) and,
through Hypothesis, generates requests for every operation declarund routes (the routes are
read from the daemon's own composition root, so a new area is fuzzed as soon as it exists):
*positive* cases that match the schema and *negative* ones that break it. Each request is
sent over the daemon's Unix socket and its answer judged by :func:`judge`:

* no 5xx, except where the cause is a real server-side condition the Swagger file documents
  (today only: a registry that cannot be reached, for operations that talk to one);
* every error answer (4xx/5xx, 304 aside) is Docker's JSON ``{"message": ...}``;
* the connection is answered, never dropped, within the client's timeout.

Requests are adjusted in a few documented ways so that the run stays on this machine and
ends: operations that reach a registry are pointed at ``127.0.0.1:1`` (a closed port),
``/build``'s ``remote`` and ``/images/create``'s URL ``fromSrc`` are dropped, and
endless streams are asked for one answer (``/events`` gets ``until``, logs ``follow=0``,
stats ``stream=0``). Half of the read-only requests name an object that exists (a running
container, its exec instance, an image, a network and a volume made by :func:`seed`) so
that the handlers' deeper paths are reached, not only "No such ...".

Used by ``tests/hostile/test_api_fuzz.py`` (a bounded run) and ``tests/hostile/fuzz.py``
(a longer run that prints its figures).
"""

from __future__ import annotations

import json
import random
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import requests
import schemathesis
from docker.transport import UnixHTTPAdapter
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.support.swagger import SWAGGER_PATH

__all__ = [
    "FuzzReport",
    "Seeded",
    "daemon_tracebacks",
    "implemented_operations",
    "judge",
    "run_fuzz",
    "seed",
    "unix_session",
]

_BASE = "http://localhost"
_REQUEST_TIMEOUT = 30.0
# Operations whose handler talks to a registry: a 5xx naming the unreachable registry is a
# real server-side condition (dockerd answers 500 for it too).
_REACHES_REGISTRY = {
    ("POST", "/images/create"),
    ("POST", "/images/{name}/push"),
    ("GET", "/distribution/{name}/json"),
    ("POST", "/auth"),
}
_UNREACHABLE = re.compile(r"127\.0\.0\.1:1\b|connect|refused|unreachable", re.I)
_CLOSED_REGISTRY = "127.0.0.1:1"
_REFUSED_FEATURE = re.compile(r"declarund does not support ")
_NO_SWARM = re.compile(
    r"This node is not a swarm manager|This node is not part of a swarm|"
    r"declarund does not support swarm mode"
)
# Archive and raw-stream bodies are bytes on the wire, like application/octet-stream.
for _media_type in ("application/x-tar", "application/vnd.docker.raw-stream"):
    schemathesis.serializer.alias(_media_type, "application/octet-stream")


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def implemented_operations() -> set[tuple[str, str]]:
    """(METHOD, path with ``{}`` for parameters) of every route declarund serves.

    The routes come from the daemon's composition root; the services behind them are
    never called here, so a stand-in object is enough to list them.
    """
    from declarun.daemon.wiring import api_routes

    routes = api_routes(mock.MagicMock())
    return {(r.method.upper(), re.sub(r"\{[a-z_]+(:[^}]*)?\}", "{}", r.path)) for r in routes}


def unix_session(socket_path: Path) -> requests.Session:
    """A requests session whose ``http://`` URLs all go to ``socket_path``."""
    session = requests.Session()
    session.mount("http://", UnixHTTPAdapter(f"http+unix://{socket_path}", timeout=60))
    return session


@dataclass(frozen=True)
class Seeded:
    """Objects that exist in the fuzzed daemon, substituted into path parameters."""

    container: str
    exec_id: str
    image: str
    network: str
    volume: str

    def for_path(self, path: str) -> str | None:
        """The existing object a ``{...}`` parameter of ``path`` may name."""
        if path.startswith("/containers/"):
            return self.container
        if path.startswith("/exec/"):
            return self.exec_id
        if path.startswith(("/images/", "/distribution/")):
            return self.image
        if path.startswith("/networks/"):
            return self.network
        if path.startswith("/volumes/"):
            return self.volume
        return None


def seed(client: Any, image: str) -> Seeded:
    """Create the objects fuzzed read requests may name (docker-py ``client``, image present)."""
    container = client.containers.run(image, ["sleep", "3600"], name="fuzz-c", detach=True)
    exec_id = client.api.exec_create(container.id, ["true"])["Id"]
    client.networks.create("fuzz-net")
    client.volumes.create("fuzz-vol")
    return Seeded("fuzz-c", exec_id, image, "fuzz-net", "fuzz-vol")


@dataclass
class FuzzReport:
    """What a run sent and what came back."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    seconds_by_operation: Counter[str] = field(default_factory=Counter)  # waiting for answers
    unsendable: int = 0  # cases the HTTP client itself refused to put on the wire
    ungenerated: list[str] = field(default_factory=list)  # nothing to negate, say
    documented_5xx: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """One paragraph of figures."""
        five = sum(n for s, n in self.by_status.items() if s >= 500)
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.by_status.items()))
        return (
            f"{self.requests} requests over {len(self.by_operation)} operations in "
            f"{self.seconds:.0f} s; 5xx: {five} ({len(self.documented_5xx)} documented, "
            f"unreachable registry); failures: {len(self.failures)}; "
            f"not sendable by the client: {self.unsendable}; statuses: {statuses}"
        )


def judge(method: str, path: str, response: requests.Response) -> str | None:
    """Why ``response`` is wrong for a request to ``method path`` (None when it is fine)."""
    status = response.status_code
    if status >= 400 and method != "HEAD":
        try:
            body = json.loads(response.content)
        except ValueError:
            return f"{status} whose body is not JSON: {response.content[:200]!r}"
        if not isinstance(body, dict) or not isinstance(body.get("message"), str):
            return f"{status} without Docker's {{'message': ...}}: {response.content[:200]!r}"
    if status >= 500:
        message = response.content.decode(errors="replace")[:300]
        if (method, path) in _REACHES_REGISTRY and _UNREACHABLE.search(message):
            return None
        if status == 503 and _NO_SWARM.search(message):
            # The Swagger file's 503 "node is not part of a swarm": dockerd's own answer on a
            # node outside a swarm, which declarund always is.
            return None
        if status == 501 and _REFUSED_FEATURE.search(message):
            # Docker's NotImplemented: a feature declarund refuses by design (plugins), listed
            # as refused in specs/daemon.md's endpoint table -- not a server fault.
            return None
        return f"{status}: {message}"
    return None


class _Query:
    """A request's query as ordered pairs, whatever shape the generator gave it."""

    def __init__(self, raw: Any) -> None:
        if isinstance(raw, str):
            self.pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
        elif isinstance(raw, dict):
            self.pairs = [
                (str(k), item)
                for k, v in raw.items()
                for item in (v if isinstance(v, list) else [v])
            ]
        else:
            self.pairs = list(raw or [])

    def get(self, key: str) -> Any:
        return next((v for k, v in self.pairs if k == key), None)

    def set(self, key: str, value: str) -> None:
        self.pop(key)
        self.pairs.append((key, value))

    def pop(self, key: str) -> None:
        self.pairs = [(k, v) for k, v in self.pairs if k != key]


def _adjust(method: str, path: str, kwargs: dict[str, Any], seeded: Seeded | None) -> None:
    """Keep the request on this machine and finite (see the module docstring)."""
    query = _Query(kwargs.get("params"))
    if path == "/events":
        query.set("until", str(int(time.time())))
    elif path == "/containers/{id}/logs":
        query.set("follow", "0")
    elif path == "/containers/{id}/stats":
        query.set("stream", "0")
    elif path == "/build":
        query.pop("remote")
    elif path == "/images/create":
        image = query.get("fromImage")
        if image is not None:
            query.set("fromImage", f"{_CLOSED_REGISTRY}/{image}")
        query.pop("fromSrc")
    elif path == "/auth":
        body = kwargs.get("json")
        if isinstance(body, dict):
            body["serveraddress"] = _CLOSED_REGISTRY
    elif path == "/containers/{id}/attach":
        # A successful attach to the seeded container would hold the connection open.
        query.set("stream", "0")
        query.set("logs", "1")
    kwargs["params"] = query.pairs
    if path in ("/images/{name}/push", "/distribution/{name}/json"):
        kwargs["url"] = re.sub(
            r"^(http://localhost/(?:images|distribution)/)",
            rf"\g<1>{_CLOSED_REGISTRY}/",
            kwargs["url"],
        )
    if seeded is not None and method in ("GET", "HEAD") and "{" in path:
        name = seeded.for_path(path)
        if name is not None:
            prefix = re.escape(path.split("{", 1)[0])
            suffix = path.split("}", 1)[1]
            tail = re.escape(suffix) + r"$" if suffix else r"$"
            kwargs["url"] = re.sub(
                rf"(http://localhost{prefix}).*?({tail})",
                lambda m: m.group(1) + name + m.group(2),
                kwargs["url"],
                count=1,
            )


def run_fuzz(
    socket_path: Path,
    *,
    examples_per_operation: int,
    seeded: Seeded | None = None,
    deadline: float | None = None,
    seed_value: int = 0,
    on_case: Callable[[str, str, int], None] | None = None,
) -> FuzzReport:
    """Fuzz every implemented operation, positive then negative cases, and report.

    ``examples_per_operation`` bounds each (operation, mode); ``deadline`` (a
    ``time.monotonic()`` value) stops early. ``seed_value`` makes a run repeatable.
    """
    schema = schemathesis.openapi.from_path(str(SWAGGER_PATH))
    implemented = implemented_operations()
    operations = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), _shape(operation.path)) in implemented:
            operations.append(operation)
    report = FuzzReport()
    session = unix_session(socket_path)
    chooser = random.Random(seed_value)
    started = time.monotonic()
    try:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for operation in operations:
                if deadline is not None and time.monotonic() > deadline:
                    break
                _fuzz_operation(
                    operation,
                    mode,
                    session,
                    report,
                    examples_per_operation,
                    seeded,
                    chooser,
                    seed_value,
                    on_case,
                )
    finally:
        session.close()
        report.seconds = time.monotonic() - started
    return report


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    session: requests.Session,
    report: FuzzReport,
    examples: int,
    seeded: Seeded | None,
    chooser: random.Random,
    seed_value: int,
    on_case: Callable[[str, str, int], None] | None,
) -> None:
    method = operation.method.upper()
    path = operation.path
    label = f"{method} {path}"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @fixed_seed(seed_value)
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        try:
            kwargs = case.as_transport_kwargs(base_url=_BASE)
        except Exception:  # a body schemathesis cannot serialise (x-tar, ...): send raw bytes
            kwargs = {"method": method, "url": _BASE + case.formatted_path, "data": b"\0"}
            kwargs["params"] = dict(case.query or {})
        kwargs.pop("cookies", None)
        _adjust(method, path, kwargs, seeded if chooser.random() < 0.5 else None)
        if not str(kwargs.get("url", "")).startswith(_BASE + "/"):
            kwargs["url"] = _BASE + "/" + str(kwargs.get("url", "")).lstrip("/")
        sent = time.monotonic()
        try:
            response = session.request(timeout=_REQUEST_TIMEOUT, **kwargs)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            report.requests += 1
            report.failures.append(f"{label}: no answer ({exc}) for {kwargs!r:.300}")
            return
        except (requests.exceptions.InvalidHeader, ValueError, UnicodeError):
            report.unsendable += 1
            return
        report.seconds_by_operation[label] += time.monotonic() - sent
        report.requests += 1
        report.by_status[response.status_code] += 1
        report.by_operation[label] += 1
        problem = judge(method, path, response)
        if problem is not None:
            report.failures.append(f"{label} [{mode.value}]: {problem} -- sent {kwargs!r:.400}")
        elif response.status_code >= 500:
            report.documented_5xx.append(label)
        if on_case is not None:
            on_case(method, path, response.status_code)

    try:
        one()
    except Unsatisfiable:
        report.ungenerated.append(f"{label} [{mode.value}]")


def daemon_tracebacks(log: str) -> list[str]:
    """The tracebacks in a daemon log (each from its ``Traceback`` line, shortened)."""
    return [chunk[:2000] for chunk in log.split("Traceback (most recent call last)")[1:]]
