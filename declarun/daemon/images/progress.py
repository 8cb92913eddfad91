"""Docker's JSON progress messages, as ``docker pull``/``push``/``load`` render them.

Each message is one JSON object (``jsonmessage.JSONMessage`` in the docker CLI):

* ``{"status": "Pulling from library/busybox", "id": "latest"}`` -- a line per ``id``;
* ``{"status": "Downloading", "progressDetail": {"current": 1, "total": 9}, "progress":
  "[=====>   ]  1B/9B", "id": "<12 hex>"}`` -- the CLI redraws the line of that ``id``;
* ``{"errorDetail": {"message": m}, "error": m}`` -- the CLI prints ``m`` and exits 1;
* ``{"progressDetail": {}, "aux": {...}}`` -- extra data (the pushed digest).

The ``progress`` text is what the CLI shows on a terminal: a 50-column bar and the sizes
in decimal units with four significant digits (``2.798MB``), as ``JSONProgress.String``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "Emit",
    "ProgressThrottle",
    "aux_message",
    "error_message",
    "human_size",
    "progress_bar",
    "progress_message",
    "short_id",
    "status_message",
]

# Where a long operation sends its messages (a queue's put_nowait, a list's append).
Emit = Callable[[dict[str, Any]], None]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BAR_WIDTH = 50


def short_id(digest: str) -> str:
    """The 12 hex digits Docker shows for a digest or ID (``sha256:`` dropped)."""
    return digest.split(":", 1)[-1][:12]


def human_size(size: float) -> str:
    """``units.HumanSize``: decimal units, four significant digits (``1.23kB``)."""
    value = float(size)
    unit = 0
    while value >= 1000.0 and unit < len(_UNITS) - 1:
        value /= 1000.0
        unit += 1
    return f"{value:.4g}{_UNITS[unit]}"


def progress_bar(current: int, total: int) -> str:
    """The bar and sizes of a progress line: ``[===>    ]  1.2MB/3.4MB``."""
    if total <= 0:
        return f"{human_size(current):>8}"
    filled = min(_BAR_WIDTH, int(current / total * _BAR_WIDTH))
    bar = "[" + "=" * filled + ">" + " " * (_BAR_WIDTH - filled) + "] "
    return bar + f"{human_size(current):>8}/{human_size(total)}"


def status_message(status: str, id_: str | None = None, *, detail: bool = False) -> dict[str, Any]:
    """A status line (``detail`` adds the empty ``progressDetail`` Docker sends per layer)."""
    message: dict[str, Any] = {"status": status}
    if detail:
        message["progressDetail"] = {}
    if id_ is not None:
        message["id"] = id_
    return message


def progress_message(status: str, id_: str, current: int, total: int) -> dict[str, Any]:
    """A ``Downloading``/``Extracting``/``Pushing`` line with its bar."""
    return {
        "status": status,
        "progressDetail": {"current": current, "total": total},
        "progress": progress_bar(current, total),
        "id": id_,
    }


def error_message(text: str) -> dict[str, Any]:
    """An error in the middle of a stream; the docker CLI exits non-zero on it."""
    return {"errorDetail": {"message": text}, "error": text}


def aux_message(aux: dict[str, Any]) -> dict[str, Any]:
    """An ``aux`` message (the result of a push)."""
    return {"progressDetail": {}, "aux": aux}


class ProgressThrottle:
    """Decides when a growing byte count is worth another message (every ~1% or 512 KiB),
    so a fast transfer does not flood the client with lines."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._step = max(512 * 1024, total // 100) if total > 0 else 512 * 1024
        self._last = -1

    def due(self, current: int) -> bool:
        """True when ``current`` moved far enough since the last message (or is the end)."""
        if self._last < 0 or current - self._last >= self._step or current == self.total:
            self._last = current
            return True
        return False
