"""What every observation does alike, on one engine (``observe.state``) and on a Swarm
(``observe.swarm``): which objects it keeps, and how an engine's failure reaches the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager

from declarun.errdefs import ErrorKind
from declarun.errors import EngineError
from declarun.plan.identity import LABEL_STACK

__all__ = ["failures_as_engine_errors", "owned_or_wanted"]


def owned_or_wanted(
    stack: str, wanted: Collection[tuple[str, str]]
) -> Callable[[str, str, Mapping[str, str]], bool]:
    """The test of an object an observation keeps, given its (kind, name, labels): one that
    belongs to ``stack`` (by its label), or holds a (kind, name) the stack wants (a foreign
    object in the way)."""

    def keep(kind: str, name: str, labels: Mapping[str, str]) -> bool:
        return labels.get(LABEL_STACK) == stack or (kind, name) in wanted

    return keep


@contextmanager
def failures_as_engine_errors(what: str) -> Iterator[None]:
    """Raise an engine's failure inside as :class:`~declarun.errors.EngineError`:
    ``cannot read <what>: <the failure>``."""
    try:
        yield
    except ErrorKind as exc:
        raise EngineError(f"cannot read {what}: {exc}") from exc
