"""schema/stack.schema.json: a valid 2020-12 schema, documented everywhere, strict on field
names, and in agreement with what the normaliser and the unit parsers accept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema" / "stack.schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema)


def _subschemas(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _subschemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _subschemas(value, f"{where}/{index}")


def _def(schema: dict[str, Any], name: str) -> Draft202012Validator:
    return Draft202012Validator({**schema["$defs"][name], "$defs": schema["$defs"]})


def test_schema_is_valid_2020_12(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_property_and_definition_has_a_description(schema: dict[str, Any]) -> None:
    missing: list[str] = []
    for where, node in _subschemas(schema):
        if where.endswith(("/properties", "/patternProperties", "/$defs")):
            for key, sub in node.items():
                if not isinstance(sub, dict) or not sub.get("description"):
                    missing.append(f"{where}/{key}")
    assert missing == []


def test_every_field_object_rejects_unknown_fields(schema: dict[str, Any]) -> None:
    loose = [
        where
        for where, node in _subschemas(schema)
        if "properties" in node and node.get("additionalProperties") is not False
    ]
    assert loose == []


REPRESENTATIVE = """
version: 1
stack: shop
x-common: &common
  restart: unless-stopped
  labels: {team: shop}
vars:
  tag: "1.36"
  replicas: 2
images:
  base: {ref: "busybox:1.36", pull: always, platform: linux/amd64}
  app:
    ref: 127.0.0.1:5000/shop/app:dev
    build: {context: ./app, dockerfile: Dockerfile.dev, args: [A=1], target: runtime,
            labels: {team: shop}}
  tools: {build: ./tools}
volumes:
  data:
  cache: {driver: local, driver_opts: {type: tmpfs}, labels: [a=b], keep: true}
networks:
  front:
  back: {subnet: 172.28.0.0/16, gateway: 172.28.0.1, internal: true, labels: {x: y}}
containers:
  db:
    image: postgres:16
    env: {POSTGRES_PASSWORD: {value: secret, secret: true}, EMPTY: , N: 5}
    env_file: [db.env, {path: secrets.env, secret: true}]
    volumes: [data:/var/lib/postgresql/data, "./init:/docker-entrypoint-initdb.d:ro", /scratch]
    networks: {back: {aliases: [database], ipv4_address: 172.28.0.10}}
    healthcheck:
      test: [CMD, pg_isready]
      interval: 5s
      timeout: 1.5s
      retries: 10
      start_period: 1m30s
    restart: no
    stop_signal: SIGINT
    stop_grace_period: 30s
  migrate:
    image: app
    command: ./migrate --up
    run: once
    restart: on-failure:3
    depends_on: {db: {condition: healthy}}
    networks: [back]
  web:
    <<: *common
    image: base
    entrypoint: [/bin/sh, -c]
    command: ["httpd -f -p 80", 1]
    env: [MODE=prod, "EMPTY="]
    env_file: web.env
    working_dir: /www
    user: 1000
    hostname: web
    ports: [80, "8080:80", "127.0.0.1:8443:443/tcp", "127.0.0.1::9000", "[::1]:7000-7001:7000-7001/udp",
            {target: 53, published: 5353, host_ip: 0.0.0.0, protocol: udp}]
    mounts:
      - {type: tmpfs, target: /tmp, tmpfs: {size: 64m, mode: "1777"}}
      - {type: bind, source: ~/site, target: /www, read_only: true}
    networks: [front, back]
    depends_on: [migrate]
    healthcheck: {test: "wget -q -O- http://localhost/", disable: false}
    resources: {cpus: "0.5", memory: 256m, pids: 100}
    read_only: true
    cap_add: [NET_BIND_SERVICE]
    cap_drop: [ALL]
    replicas: 2
    profiles: [web]
  tools:
    image: busybox
    restart: false
    healthcheck: {disable: true}
    resources: {cpus: 2, memory: 1073741824}
    profiles: [debug]
"""


def test_representative_stack_is_valid(validator: Draft202012Validator) -> None:
    data = yaml.safe_load(REPRESENTATIVE)
    assert data["containers"]["db"]["restart"] is False  # YAML 1.1: `no` is a boolean
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]
    assert errors == []


def test_minimal_stacks_are_valid(validator: Draft202012Validator) -> None:
    assert validator.is_valid({"stack": "a"})
    assert validator.is_valid(
        {
            "stack": "a",
            "vars": None,
            "images": None,
            "volumes": None,
            "networks": None,
            "containers": None,
        }
    )
    assert validator.is_valid({"stack": "a", "containers": {"c": {"image": "busybox"}}})


def _errors(validator: Draft202012Validator, data: Any) -> list[tuple[str, str]]:
    return sorted(
        ("/".join(str(p) for p in e.absolute_path), e.validator)
        for e in validator.iter_errors(data)
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, [("", "required")]),
        ({"stack": "Shop"}, [("stack", "pattern")]),
        ({"stack": "-shop"}, [("stack", "pattern")]),
        ({"stack": "a" * 64}, [("stack", "maxLength")]),
        ({"stack": "s", "version": 2}, [("version", "const")]),
        ({"stack": "s", "contaners": {}}, [("", "additionalProperties")]),
        ({"stack": "s", "x-anything": {"goes": [1]}}, []),
        ({"stack": "s", "vars": {"1x": 1}}, [("vars", "pattern")]),
        ({"stack": "s", "images": {"a": {"pull": "missing"}}}, [("images/a", "anyOf")]),
        (
            {"stack": "s", "images": {"a": {"ref": "x", "pull": "sometimes"}}},
            [("images/a/pull", "enum")],
        ),
        (
            {"stack": "s", "images": {"a": {"ref": "x", "platform": "amd64"}}},
            [("images/a/platform", "pattern")],
        ),
        # build is a context string or a mapping: a mapping without context fails both.
        (
            {"stack": "s", "images": {"a": {"build": {"dockerfile": "D"}}}},
            [("images/a/build", "anyOf")],
        ),
        ({"stack": "s", "images": {"a": {"build": "./app"}}}, []),
        ({"stack": "s", "images": {"a": {"build": ""}}}, [("images/a/build", "anyOf")]),
        ({"stack": "s", "volumes": {"bad name": None}}, [("volumes", "pattern")]),
        ({"stack": "s", "volumes": {"v": {"keep": "yes"}}}, [("volumes/v/keep", "type")]),
        (
            {"stack": "s", "networks": {"n": {"subnet": "10.0.0.0"}}},
            [("networks/n/subnet", "pattern")],
        ),
        ({"stack": "s", "containers": {"c": {}}}, [("containers/c", "required")]),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "depend_on": ["a"]}}},
            [("containers/c", "additionalProperties")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "ports": ["80:80:80:80"]}}},
            [("containers/c/ports/0", "anyOf")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "ports": [{"published": 80}]}}},
            [("containers/c/ports/0", "anyOf")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "restart": "sometimes"}}},
            [("containers/c/restart", "anyOf")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "restart": True}}},
            [("containers/c/restart", "anyOf")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "replicas": -1}}},
            [("containers/c/replicas", "minimum")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "run": "twice"}}},
            [("containers/c/run", "enum")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "stop_grace_period": "10 sec"}}},
            [("containers/c/stop_grace_period", "pattern")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "resources": {"memory": "1 GB!"}}}},
            [("containers/c/resources/memory", "pattern")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "resources": {"cpus": 0}}}},
            [("containers/c/resources/cpus", "exclusiveMinimum")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "env": ["NOVALUE"]}}},
            [("containers/c/env", "anyOf")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "working_dir": "app"}}},
            [("containers/c/working_dir", "pattern")],
        ),
        (
            {"stack": "s", "containers": {"c": {"image": "x", "healthcheck": {"test": []}}}},
            [("containers/c/healthcheck/test", "anyOf")],
        ),
        (
            {
                "stack": "s",
                "containers": {"c": {"image": "x", "depends_on": {"db": {"condition": "ready"}}}},
            },
            [("containers/c/depends_on", "anyOf")],
        ),
        (
            {
                "stack": "s",
                "containers": {
                    "c": {
                        "image": "x",
                        "mounts": [{"type": "tmpfs", "target": "/t", "tmpfs": {"mode": 1777}}],
                    }
                },
            },
            [("containers/c/mounts/0/tmpfs/mode", "type")],
        ),
    ],
)
def test_invalid_stacks_fail_where_expected(
    validator: Draft202012Validator, data: Any, expected: list[tuple[str, str]]
) -> None:
    assert _errors(validator, data) == expected


@pytest.mark.parametrize(
    "text", ["500ms", "1m30s", "90s", "1h", "1.5s", ".5s", "250µs", "1500ns", "0", "30", " 2m "]
)
def test_duration_pattern_accepts_what_parse_duration_accepts(
    schema: dict[str, Any], text: str
) -> None:
    from declarun.stack.units import parse_duration

    parse_duration(text)
    assert _def(schema, "duration").is_valid(text)


@pytest.mark.parametrize("text", ["", "5 s", "1d", "ms", "1m30", "-5s"])
def test_duration_pattern_rejects_what_parse_duration_rejects(
    schema: dict[str, Any], text: str
) -> None:
    from declarun.stack.units import parse_duration

    with pytest.raises(ValueError):
        parse_duration(text)
    assert not _def(schema, "duration").is_valid(text)


@pytest.mark.parametrize("text", ["100", "512k", "256M", "1gb", "1GiB", "1.5g", "10b", "64 m"])
def test_size_pattern_accepts_what_parse_size_accepts(schema: dict[str, Any], text: str) -> None:
    from declarun.stack.units import parse_size

    parse_size(text)
    assert _def(schema, "size").is_valid(text)


@pytest.mark.parametrize("text", ["", "1x", "m", "1.2.3m", "-1m"])
def test_size_pattern_rejects_what_parse_size_rejects(schema: dict[str, Any], text: str) -> None:
    from declarun.stack.units import parse_size

    with pytest.raises(ValueError):
        parse_size(text)
    assert not _def(schema, "size").is_valid(text)


@pytest.mark.parametrize(
    "text",
    [
        "80",
        "8080:80",
        "127.0.0.1:8080:80/udp",
        "127.0.0.1::80",
        "[::1]:8080:80",
        "8080-8081:80-81",
        "80-81/sctp",
    ],
)
def test_port_pattern_accepts_short_forms(schema: dict[str, Any], text: str) -> None:
    assert _def(schema, "portShort").is_valid(text)


@pytest.mark.parametrize("text", ["", "http", "80:80:80:80", "80/http", "a:80", "8080:80/"])
def test_port_pattern_rejects_garbage(schema: dict[str, Any], text: str) -> None:
    assert not _def(schema, "portShort").is_valid(text)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("web", True),
        ("Web.1_x-y", True),
        ("9lives", True),
        ("-x", False),
        (".x", False),
        ("a b", False),
        ("a/b", False),
        ("a:b", False),
    ],
)
def test_resource_name_rule(schema: dict[str, Any], name: str, valid: bool) -> None:
    assert _def(schema, "name").is_valid(name) is valid


def test_every_constrained_shape_says_what_it_expects(schema: dict[str, Any]) -> None:
    """A pattern or a bound makes jsonschema's own message cryptic; ``x-error`` replaces it."""
    constrained = ("pattern", "minimum", "maximum", "exclusiveMinimum")
    missing = [
        where
        for where, node in _subschemas(schema)
        if any(key in node for key in constrained)
        and not str(node.get("x-error", "")).startswith("expected ")
    ]
    assert missing == []
