"""Golden tests: each bad stack in golden/ gives exactly the problems in its .expected file.

To review a change of wording, regenerate with ``DECLARUN_REGOLD=1 pytest tests/stack/test_golden.py``
and read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from declarun.errors import StackError
from declarun.stack.pipeline import LoadOptions, load_stack

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.glob("*.yaml") if not p.name.endswith(".vars.yaml"))


def _options(case: Path) -> LoadOptions:
    """A case's command line, from ``<case>.args`` when it has one: ``vars`` (as --var)
    and ``vars_files``."""
    args = case.with_suffix(".args")
    if not args.exists():
        return LoadOptions(environ={})
    given = yaml.safe_load(args.read_text())
    return LoadOptions(
        environ={},
        var_overrides={str(k): str(v) for k, v in (given.get("vars") or {}).items()},
        vars_files=[Path(p) for p in given.get("vars_files") or ()],
    )


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_golden_errors(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    with pytest.raises(StackError) as caught:
        load_stack(Path(case.name), _options(case))
    actual = "\n".join(str(problem) for problem in caught.value.problems) + "\n"
    expected_file = case.with_suffix(".expected")
    if os.environ.get("DECLARUN_REGOLD"):
        expected_file.write_text(actual)
    assert actual == expected_file.read_text()


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 6
