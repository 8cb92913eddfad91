"""Throw random and mutated Compose files at the Compose front end.

Whatever comes in, only declarun's own StackError may come out, and every problem it carries
must point at a real line and column. The strategies are the stack language's
(``tests/stack/test_fuzz.py``), with Compose's own hostile values mixed in, and the seeds
are the corpus.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from declarun.compose.pipeline import load_compose
from declarun.compose.project import ComposeOptions
from declarun.errors import StackError
from tests.compose.helpers import CORPUS
from tests.stack.test_fuzz import _mutate, _paths
from tests.stack.test_fuzz import values as stack_values

SEEDS = {
    p.name: yaml.safe_load((p / "compose.yaml").read_text())
    for p in sorted(CORPUS.iterdir())
    if (p / "compose.yaml").is_file()
}
OPTIONS = ComposeOptions(
    project_name="fuzz",
    environ={"REGISTRY": "r.example", "TAG": "1", "GREETING": "hi", "HOME": "/root"},
    profiles=frozenset({"debug", "tools"}),
)
compose_scalars = st.sampled_from(
    [
        "${UNSET}",
        "${A",
        "${A:?boom}",
        "${A:-${B:-${C}}}",
        "$$",
        "${}",
        "service_healthy",
        "service_completed_successfully",
        "./site:/www:z",
        "/data:ro,nocopy",
        "127.0.0.1::80/udp",
        "[::1]:80:80",
        "host=::1",
        "on-failure:x",
        "1m30s",
        "256M",
        "build",
        "..",
        "~/x",
        "extends",
        "web",
        "db",
    ]
)
values = st.one_of(stack_values, compose_scalars)


@pytest.fixture(scope="module")
def corpus_copy() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="compose-fuzz-"))
    try:
        shutil.copytree(CORPUS, directory / "corpus")
        yield directory / "corpus"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _check(directory: Path, text: bytes) -> None:
    path = directory / "fuzz.yaml"
    path.write_bytes(text)
    try:
        load_compose(path, OPTIONS)
    except StackError as exc:
        assert exc.problems, "a StackError must carry at least one problem"
        for problem in exc.problems:
            assert problem.location.line >= 1 and problem.location.column >= 1, problem
            if problem.location.file == str(path):
                assert problem.location.line <= text.count(b"\n") + 2, problem
            assert str(problem)


def _apply(seed: Any, picks: list[tuple[int, str, Any, str]]) -> Any:
    data = copy.deepcopy(seed)
    for index, operation, new, word in picks:
        paths = list(_paths(data))
        data = _mutate(data, paths[index % len(paths)], operation, new, word)
    return data


edits = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.sampled_from(["replace", "delete", "rename", "insert"]),
        values,
        st.text(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.sampled_from(sorted(SEEDS)), edits)
def test_mutated_corpus_files_fail_cleanly(
    corpus_copy: Path, project: str, picks: list[tuple[int, str, Any, str]]
) -> None:
    data = _apply(SEEDS[project], picks)
    _check(corpus_copy / project, yaml.safe_dump(data, sort_keys=False).encode())


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_random_input_fails_cleanly(corpus_copy: Path, text: bytes) -> None:
    _check(corpus_copy / "webapp", text)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=4))
def test_random_services_fail_cleanly(corpus_copy: Path, service: dict[str, Any]) -> None:
    document = {"services": {"web": service, "db": {"image": "busybox"}}}
    _check(corpus_copy / "webapp", yaml.safe_dump(document).encode())
