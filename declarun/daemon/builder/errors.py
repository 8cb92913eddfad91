"""The builder's errors, each of an error kind (:mod:`declarun.errdefs`).

A failing ``RUN`` is the Dockerfile's fault (an invalid argument); its message is dockerd's
(``The command '/bin/sh -c exit 3' returned a non-zero code: 3``), and it carries the exit
code (which the API sends as the error's ``code``, as dockerd does) and the last lines of
the step's output.
"""

from __future__ import annotations

from declarun.errdefs import InvalidArgument
from declarun.errors import DaemonError

__all__ = ["BuildContextError", "BuildError", "RunStepFailed"]


class BuildError(DaemonError):
    """Base of the builder's own errors."""


class BuildContextError(BuildError, InvalidArgument):
    """The build context cannot be used: hostile, too large, or not a tar archive."""


class RunStepFailed(BuildError, InvalidArgument):
    """A ``RUN`` step's command exited with a non-zero code."""

    def __init__(self, command: str, exit_code: int, output_tail: str = "") -> None:
        super().__init__(f"The command '{command}' returned a non-zero code: {exit_code}")
        self.exit_code = exit_code
        #: The last lines the command wrote (stdout and stderr together).
        self.output_tail = output_tail
