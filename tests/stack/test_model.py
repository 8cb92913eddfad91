"""The model is immutable and hashable, and stack_to_data renders it as plain, stable data."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from declarun.errors import SourceLocation
from declarun.frozen import FrozenDict, freeze, thaw
from declarun.stack.model import Container, EnvValue, Healthcheck, Mount, Stack, stack_to_data
from declarun.stack.normalize import normalize


def _stack(tmp_path: Path) -> Stack:
    (tmp_path / "s.env").write_text("TOKEN=abc\n", encoding="utf-8")
    doc: dict[str, Any] = {
        "stack": "demo",
        "vars": {"n": 2, "l": [1, {"a": None}]},
        "volumes": {"data": None},
        "containers": {
            "web": {
                "image": "busybox:1.36",
                "env": {"A": "1", "P": {"value": "pw", "secret": True}},
                "env_file": {"path": "s.env", "secret": True},
                "healthcheck": {"test": "true", "interval": 90},
                "mounts": [
                    {"type": "tmpfs", "target": "/t", "tmpfs": {"size": "1m", "mode": "1777"}}
                ],
                "volumes": ["./src:/src"],
                "resources": {"memory": "1g"},
            }
        },
    }
    return normalize(doc, lambda p: SourceLocation("t.yaml", 1, 1), base_dir=tmp_path)


def test_objects_are_frozen(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stack.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        stack.containers["x"] = stack.containers["web"]  # type: ignore[index]
    assert isinstance(stack.containers["web"].ports, tuple)


def test_stack_is_hashable_and_equal_to_itself_rebuilt(tmp_path: Path) -> None:
    assert hash(_stack(tmp_path)) == hash(_stack(tmp_path))
    assert _stack(tmp_path) == _stack(tmp_path)
    assert {_stack(tmp_path), _stack(tmp_path)} == {_stack(tmp_path)}


def test_frozen_dict_behaves_like_a_read_only_dict() -> None:
    a = FrozenDict({"x": 1, "y": 2})
    b = FrozenDict([("y", 2), ("x", 1)])
    assert a == b == {"x": 1, "y": 2}
    assert hash(a) == hash(b)
    assert list(a) == ["x", "y"] and len(a) == 2 and a["x"] == 1
    assert "FrozenDict" in repr(a)
    assert thaw(freeze({"a": [1, {"b": (2,)}]})) == {"a": [1, {"b": [2]}]}


def test_stack_to_data_is_plain_json_without_locations(tmp_path: Path) -> None:
    data = stack_to_data(_stack(tmp_path))
    text = json.dumps(data)
    assert "location" not in text
    assert json.loads(text) == data
    assert list(data) == [
        "name",
        "vars",
        "images",
        "volumes",
        "networks",
        "containers",
        "source_file",
    ]
    web = data["containers"]["web"]
    assert list(web)[:3] == ["name", "image", "command"]
    assert data["vars"] == {"n": 2, "l": [1, {"a": None}]}
    assert web["healthcheck"]["interval"] == "1m30s"
    assert web["stop_grace_period"] == "10s"
    assert web["resources"]["memory"] == 1024**3
    assert web["mounts"][0]["source"] == str(tmp_path / "src")
    assert web["mounts"][1]["tmpfs_mode"] == "1777"
    assert web["mounts"][1]["tmpfs_size"] == 1024**2
    assert web["env_files"][0]["path"] == str(tmp_path / "s.env")
    assert data["images"]["busybox:1.36"]["implicit"] is True
    assert data["networks"]["default"]["implicit"] is True


def test_secrets_are_masked_unless_revealed(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    masked = stack_to_data(stack)["containers"]["web"]["env"]
    assert masked == {
        "TOKEN": {"value": "***", "secret": True},
        "A": "1",
        "P": {"value": "***", "secret": True},
    }
    revealed = stack_to_data(stack, reveal_secrets=True)["containers"]["web"]["env"]
    assert revealed["P"] == {"value": "pw", "secret": True}
    assert revealed["TOKEN"] == {"value": "abc", "secret": True}
    assert "pw" not in repr(stack)


def test_model_objects_can_be_built_directly_with_defaults() -> None:
    c = Container(name="c", image="i")
    assert c.healthcheck is None and c.replicas == 1
    assert Healthcheck().interval == timedelta(seconds=30)
    assert Mount(type="tmpfs", target="/t").source is None
    assert EnvValue(value="x").secret is False
