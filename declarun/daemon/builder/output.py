"""A build's output, message by message, as dockerd's classic builder streams it.

Every message is one JSON object (the docker CLI's ``jsonmessage``):

* ``{"stream": "Step 2/5 : RUN make"}`` then ``{"stream": "\\n"}`` (two writes, as dockerd
  makes them), ``{"stream": " ---> Running in 0123456789ab\\n"}``, the command's output as
  it comes (standard error wrapped in ``ESC[91m`` ... ``ESC[0m``, red on a terminal),
  ``{"stream": "Removing intermediate container 0123456789ab\\n"}``, ``{"stream": " --->
  ab12cd34ef56\\n"}``, ``{"stream": " ---> Using cache\\n"}``;
* ``{"aux": {"ID": "sha256:..."}}`` after each stage (the CLI keeps the last);
* pull progress of a base image, passed through as the image service writes it.

With ``quiet`` (``q=1``) everything is held back: a successful build shows only its image
ID (``{"stream": "sha256:...\\n"}``); a failed one shows what was held back, then the error.
:class:`BuildOutput` is where the executor writes; ``emit`` is the API area's sink.
"""

from __future__ import annotations

import codecs
from typing import Any

from declarun.daemon.images.progress import Emit

__all__ = [
    "STDERR_PREFIX",
    "STDERR_SUFFIX",
    "BuildOutput",
    "CommandOutput",
    "StageSequencer",
    "short_id",
]

STDERR_PREFIX = "\x1b[91m"
STDERR_SUFFIX = "\x1b[0m"


def short_id(image_id: str) -> str:
    """Docker's 12-digit form of an ID (``sha256:`` dropped)."""
    return image_id.split(":", 1)[-1][:12]


class BuildOutput:
    """The messages of one build (see the module docstring)."""

    def __init__(self, emit: Emit, *, quiet: bool = False) -> None:
        self._emit = emit
        self.quiet = quiet
        self._held: list[dict[str, Any]] = []

    def message(self, message: dict[str, Any]) -> None:
        """Send (or, when quiet, hold back) one message."""
        if self.quiet:
            self._held.append(message)
        else:
            self._emit(message)

    def stream(self, text: str) -> None:
        """A ``stream`` message."""
        if text:
            self.message({"stream": text})

    def step(self, number: int, total: int, text: str) -> None:
        """``Step N/M : <instruction as written>`` and its newline."""
        self.stream(f"Step {number}/{total} : {text}")
        self.stream("\n")

    def arrow(self, text: str) -> None:
        """`` ---> text`` on a line of its own."""
        self.stream(f" ---> {text}\n")

    def aux_id(self, image_id: str) -> None:
        """The ``aux`` message naming a stage's image."""
        self.message({"aux": {"ID": image_id}})

    def command_output(self) -> CommandOutput:
        """A decoder for one command's standard output and error."""
        return CommandOutput(self)

    def finish(self, image_id: str) -> None:
        """A quiet build's only visible message: its image ID."""
        if self.quiet:
            self._emit({"stream": image_id + "\n"})

    def release_held(self) -> None:
        """Send what quiet mode held back (before an error is reported)."""
        held, self._held = self._held, []
        for message in held:
            self._emit(message)


class CommandOutput:
    """Bytes a ``RUN`` writes, decoded as UTF-8 across chunk boundaries, with a tail kept."""

    _TAIL = 4096

    def __init__(self, output: BuildOutput) -> None:
        self._output = output
        self._decoders = {
            1: codecs.getincrementaldecoder("utf-8")("replace"),
            2: codecs.getincrementaldecoder("utf-8")("replace"),
        }
        self._tail = ""

    def write(self, stream: int, data: bytes) -> None:
        """A chunk of standard output (1) or standard error (2)."""
        text = self._decoders[stream].decode(data)
        if not text:
            return
        self._tail = (self._tail + text)[-self._TAIL :]
        if stream == 2:
            self._output.stream(STDERR_PREFIX + text + STDERR_SUFFIX)
        else:
            self._output.stream(text)

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines written."""
        return "\n".join(self._tail.rstrip("\n").splitlines()[-lines:])


class StageSequencer:
    """Keeps the output of stages built concurrently in Dockerfile order.

    The stages of one level run at once, but a terminal shows one stream: the first
    unfinished stage (in ``order``) streams live, the others are held back and shown, in
    order, as the stages before them finish -- the output reads as dockerd's classic
    builder writes it, one stage after the other.
    """

    def __init__(self, output: BuildOutput, order: list[int]) -> None:
        self._output = output
        self._order = list(order)
        self._held: dict[int, list[dict[str, Any]]] = {index: [] for index in order}
        self._finished: set[int] = set()

    def _current(self) -> int | None:
        for index in self._order:
            if index not in self._finished:
                return index
        return None

    def stage_output(self, index: int) -> BuildOutput:
        """The output stage ``index`` writes to."""

        def emit(message: dict[str, Any]) -> None:
            if self._current() == index:
                self._output.message(message)
            else:
                self._held[index].append(message)

        return BuildOutput(emit)

    def finished(self, index: int) -> None:
        """Stage ``index`` ended: show what the stages after it held back, up to the next
        unfinished one (which streams live from then on)."""
        self._finished.add(index)
        for stage in self._order:
            for message in self._held[stage]:
                self._output.message(message)
            self._held[stage] = []
            if stage not in self._finished:
                return
