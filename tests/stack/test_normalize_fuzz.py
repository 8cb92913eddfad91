"""normalize() on odd but schema-valid stacks: a Stack or a located StackError, nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from declarun.errors import SourceLocation, StackError
from declarun.stack.model import Stack
from declarun.stack.normalize import normalize

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schema" / "stack.schema.json").read_text("utf-8")
)
VALIDATOR = Draft202012Validator(SCHEMA)
DEFS = SCHEMA["$defs"]


def _pattern(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    return st.from_regex(schema["pattern"], fullmatch=True)


NAMES = st.sampled_from(["a", "web", "db", "x.1", "default", "busybox"])
TEXT = st.text(max_size=12)
SCALAR = st.one_of(
    TEXT, st.integers(-5, 10**6), st.booleans(), st.none(), st.floats(allow_nan=False)
)
DURATION = st.one_of(_pattern(DEFS["duration"]), st.integers(0, 10**6))
SIZE = st.one_of(_pattern(DEFS["size"]), st.integers(0, 2**40))
PORT = st.one_of(
    st.integers(1, 65535),
    _pattern(DEFS["portShort"]),
    st.fixed_dictionaries(
        {"target": st.one_of(st.integers(1, 65535), _pattern(DEFS["portRange"]))},
        optional={
            "published": st.one_of(st.integers(1, 65535), _pattern(DEFS["portRange"])),
            "host_ip": st.sampled_from(["127.0.0.1", "::1", "", "x", "0.0.0.0"]),
            "protocol": st.sampled_from(["tcp", "udp", "sctp"]),
        },
    ),
)
MOUNT = st.one_of(
    _pattern(DEFS["mountShort"]),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["volume", "bind", "tmpfs"]),
            "target": st.sampled_from(["/a", "/b", "/"]),
        },
        optional={
            "source": st.sampled_from(["v", "./x", "/abs", "~/h", "a b"]),
            "read_only": st.booleans(),
            "tmpfs": st.fixed_dictionaries(
                {}, optional={"size": SIZE, "mode": st.sampled_from(["1777", "0755", "777"])}
            ),
        },
    ),
)
COMMAND = st.one_of(TEXT, st.lists(st.one_of(TEXT, st.integers())))
CONTAINER = st.fixed_dictionaries(
    {"image": st.one_of(NAMES, st.sampled_from(["redis:7", "r/x@sha256:" + "a" * 64, "a b"]))},
    optional={
        "command": COMMAND,
        "entrypoint": COMMAND,
        "env": st.one_of(
            st.dictionaries(
                st.sampled_from(["A", "B"]),
                st.one_of(
                    SCALAR,
                    st.fixed_dictionaries({"value": SCALAR}, optional={"secret": st.booleans()}),
                ),
            ),
            st.lists(st.sampled_from(["A=1", "B=", "C=x=y"])),
        ),
        "ports": st.lists(PORT, max_size=3),
        "volumes": st.lists(MOUNT, max_size=3),
        "networks": st.one_of(
            st.lists(NAMES, max_size=3),
            st.dictionaries(
                NAMES,
                st.one_of(
                    st.none(),
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "aliases": st.lists(st.just("al")),
                            "ipv4_address": st.sampled_from(["10.0.0.1", "999.1.1.1"]),
                        },
                    ),
                ),
            ),
        ),
        "depends_on": st.one_of(
            st.lists(NAMES, max_size=3),
            st.dictionaries(
                NAMES,
                st.one_of(
                    st.none(),
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "condition": st.sampled_from(["started", "healthy", "completed"])
                        },
                    ),
                ),
            ),
        ),
        "healthcheck": st.fixed_dictionaries(
            {},
            optional={
                "test": st.one_of(
                    TEXT.filter(bool),
                    st.lists(st.sampled_from(["CMD", "NONE", "CMD-SHELL", "x"]), min_size=1),
                ),
                "interval": DURATION,
                "retries": st.integers(0, 5),
                "disable": st.booleans(),
            },
        ),
        "restart": st.one_of(
            st.just(False),
            st.sampled_from(["no", "always", "on-failure", "on-failure:0", "unless-stopped"]),
        ),
        "resources": st.fixed_dictionaries(
            {},
            optional={
                "cpus": st.one_of(
                    st.floats(0.001, 1e9),
                    _pattern(DEFS["container"]["properties"]["resources"]["properties"]["cpus"]),
                ),
                "memory": SIZE,
                "pids": st.integers(1, 10),
            },
        ),
        "labels": st.one_of(
            st.dictionaries(TEXT.filter(bool), SCALAR, max_size=2),
            st.lists(st.sampled_from(["a=b", "c="])),
        ),
        "stop_signal": st.one_of(
            st.integers(1, 64), _pattern(DEFS["container"]["properties"]["stop_signal"])
        ),
        "stop_grace_period": DURATION,
        "replicas": st.integers(0, 3),
        "run": st.sampled_from(["service", "once"]),
        "cap_add": st.lists(_pattern(DEFS["capability"]), max_size=2),
    },
)
DOC = st.fixed_dictionaries(
    {"stack": st.just("s")},
    optional={
        "images": st.dictionaries(
            NAMES,
            st.fixed_dictionaries(
                {"ref": st.just("busybox")},
                optional={
                    "build": st.fixed_dictionaries(
                        {"context": st.sampled_from([".", "~/x", "/abs"])}
                    )
                },
            ),
        ),
        "networks": st.dictionaries(
            NAMES,
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "subnet": _pattern(DEFS["network"]["properties"]["subnet"]),
                        "gateway": _pattern(DEFS["network"]["properties"]["gateway"]),
                    },
                ),
            ),
        ),
        "containers": st.dictionaries(NAMES, CONTAINER, max_size=3),
    },
)


@settings(
    max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(DOC)
def test_schema_valid_stacks_normalise_or_fail_with_located_problems(doc: dict[str, Any]) -> None:
    assume(VALIDATOR.is_valid(doc))
    try:
        stack = normalize(doc, lambda p: SourceLocation("t.yaml", 1, 1), base_dir=Path("/srv"))
    except StackError as exc:
        assert exc.problems
        assert all(p.location.line >= 1 and p.message for p in exc.problems)
        return
    assert isinstance(stack, Stack)
    hash(stack)
    for container in stack.containers.values():
        assert container.image in stack.images
        assert container.networks
