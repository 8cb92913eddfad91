"""Golden tests: each bad stack in golden/ gives exactly the problems in its .expected file.

To review a change of wording, regenerate with ``DECLARUN_REGOLD=1 pytest tests/stack/test_golden.py``
and read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from declarun.errors import StackError
from declarun.stack.pipeline import LoadOptions, load_stack

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(GOLDEN.glob("*.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_golden_errors(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDEN)
    with pytest.raises(StackError) as caught:
        load_stack(Path(case.name), LoadOptions(environ={}))
    actual = "\n".join(str(problem) for problem in caught.value.problems) + "\n"
    expected_file = case.with_suffix(".expected")
    if os.environ.get("DECLARUN_REGOLD"):
        expected_file.write_text(actual)
    assert actual == expected_file.read_text()


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 6
