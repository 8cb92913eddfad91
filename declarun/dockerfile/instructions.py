"""Typed, frozen Dockerfile instructions as the parser produces them (before substitution).

Every instruction carries its :class:`Location` (file, first and last line) and ``original``,
the instruction as written (continuation lines joined, heredoc bodies included). Values are
raw: ``$var`` references are still there, quotes in ``ENV``/``LABEL`` values too; the
evaluator (:mod:`declarun.dockerfile.evaluate`) expands the instructions Docker expands and
returns copies of these values with the expanded text.

Shell-form commands keep their text as one string in ``command`` with ``shell_form=True``;
exec-form (JSON) commands keep their argv and ``shell_form=False``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from declarun.dockerfile.mounts import Mount

__all__ = [
    "Add",
    "Arg",
    "ArgDefinition",
    "Cmd",
    "Copy",
    "Entrypoint",
    "Env",
    "Expose",
    "From",
    "Healthcheck",
    "Heredoc",
    "Instruction",
    "KeyValue",
    "Label",
    "Location",
    "Maintainer",
    "Onbuild",
    "Run",
    "Shell",
    "StopSignal",
    "User",
    "Volume",
    "Workdir",
]


@dataclass(frozen=True)
class Location:
    """Where an instruction is: file name and 1-based first/last line."""

    file: str
    start_line: int
    end_line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.start_line}"


@dataclass(frozen=True)
class Heredoc:
    """A here-document: ``<<EOF`` (``expand``), ``<<'EOF'`` (not), ``<<-EOF`` (``chomp``).

    ``content`` is the body as written; :attr:`data` is what the instruction uses (leading
    tabs stripped from every line when ``chomp``). ``fd`` is the file descriptor for
    ``3<<EOF`` forms (0 otherwise).
    """

    name: str
    content: str
    expand: bool = True
    chomp: bool = False
    fd: int = 0

    @property
    def data(self) -> str:
        """The body with ``<<-`` tab stripping applied."""
        if not self.chomp:
            return self.content
        return "".join(line.lstrip("\t") for line in self.content.splitlines(keepends=True))


@dataclass(frozen=True)
class KeyValue:
    """One ``key=value`` of ``ENV`` or ``LABEL``."""

    key: str
    value: str

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


@dataclass(frozen=True)
class ArgDefinition:
    """One ``name`` or ``name=default`` of ``ARG``."""

    key: str
    default: str | None = None

    def __str__(self) -> str:
        return self.key if self.default is None else f"{self.key}={self.default}"


@dataclass(frozen=True)
class Instruction:
    """Base of every instruction."""

    keyword: ClassVar[str] = ""
    location: Location
    original: str


@dataclass(frozen=True)
class From(Instruction):
    """``FROM [--platform=P] base [AS name]``; ``name`` is lower-cased as Docker does."""

    keyword: ClassVar[str] = "FROM"
    base: str = ""
    name: str | None = None
    platform: str | None = None


@dataclass(frozen=True)
class Run(Instruction):
    """``RUN``: ``command`` (argv for exec form; one string for shell form), mounts, network.

    ``mount_specs`` are the raw ``--mount`` values; ``mounts`` are their parsed form (filled
    by the evaluator after substitution; at parse time only specs without ``$`` are parsed,
    to report mistakes with a line number). ``network`` is ``default``, ``none`` or ``host``.
    """

    keyword: ClassVar[str] = "RUN"
    command: tuple[str, ...] = ()
    shell_form: bool = True
    heredocs: tuple[Heredoc, ...] = ()
    mount_specs: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: str = "default"
    security: str = "sandbox"


@dataclass(frozen=True)
class Copy(Instruction):
    """``COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude] src... dest``."""

    keyword: ClassVar[str] = "COPY"
    sources: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()
    dest: str = ""
    from_: str | None = None
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    json_form: bool = False


@dataclass(frozen=True)
class Add(Instruction):
    """``ADD [--chown] [--chmod] [--link] [--checksum] [--keep-git-dir] [--unpack] src... dest``."""

    keyword: ClassVar[str] = "ADD"
    sources: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()
    dest: str = ""
    chown: str | None = None
    chmod: str | None = None
    link: bool = False
    checksum: str | None = None
    keep_git_dir: bool | None = None
    unpack: bool | None = None
    excludes: tuple[str, ...] = ()
    json_form: bool = False


@dataclass(frozen=True)
class Env(Instruction):
    """``ENV a=b c=d`` or the legacy ``ENV a b c`` (one pair, value ``b c``)."""

    keyword: ClassVar[str] = "ENV"
    pairs: tuple[KeyValue, ...] = ()


@dataclass(frozen=True)
class Arg(Instruction):
    """``ARG a[=default] ...``."""

    keyword: ClassVar[str] = "ARG"
    args: tuple[ArgDefinition, ...] = ()


@dataclass(frozen=True)
class Workdir(Instruction):
    """``WORKDIR path``."""

    keyword: ClassVar[str] = "WORKDIR"
    path: str = ""


@dataclass(frozen=True)
class User(Instruction):
    """``USER user[:group]``."""

    keyword: ClassVar[str] = "USER"
    user: str = ""


@dataclass(frozen=True)
class Cmd(Instruction):
    """``CMD``; an empty ``command`` is allowed (``CMD []``, or a bare ``CMD``)."""

    keyword: ClassVar[str] = "CMD"
    command: tuple[str, ...] = ()
    shell_form: bool = True


@dataclass(frozen=True)
class Entrypoint(Instruction):
    """``ENTRYPOINT``; ``command`` None for ``ENTRYPOINT []`` (clears it)."""

    keyword: ClassVar[str] = "ENTRYPOINT"
    command: tuple[str, ...] | None = None
    shell_form: bool = True


@dataclass(frozen=True)
class Expose(Instruction):
    """``EXPOSE port[/proto] ...``; ``ports`` sorted as written, as Docker does."""

    keyword: ClassVar[str] = "EXPOSE"
    ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Label(Instruction):
    """``LABEL k=v ...``; ``expand`` False for labels given to the build, which dockerd
    adds to the target stage without substitution."""

    keyword: ClassVar[str] = "LABEL"
    pairs: tuple[KeyValue, ...] = ()
    expand: bool = True


@dataclass(frozen=True)
class Volume(Instruction):
    """``VOLUME /a /b`` or ``VOLUME ["/a", "/b"]``."""

    keyword: ClassVar[str] = "VOLUME"
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Healthcheck(Instruction):
    """``HEALTHCHECK NONE`` (``test == ("NONE",)``) or ``HEALTHCHECK [opts] CMD ...``.

    ``test`` is Docker's form: ``("CMD-SHELL", "cmd")`` or ``("CMD", argv...)``; durations in
    nanoseconds, 0 when not given.
    """

    keyword: ClassVar[str] = "HEALTHCHECK"
    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True)
class StopSignal(Instruction):
    """``STOPSIGNAL signal``."""

    keyword: ClassVar[str] = "STOPSIGNAL"
    signal: str = ""


@dataclass(frozen=True)
class Onbuild(Instruction):
    """``ONBUILD <instruction>``: ``expression`` is the trigger text stored in the image."""

    keyword: ClassVar[str] = "ONBUILD"
    expression: str = ""
    trigger_keyword: str = ""


@dataclass(frozen=True)
class Shell(Instruction):
    """``SHELL ["executable", "args"...]`` (JSON form only)."""

    keyword: ClassVar[str] = "SHELL"
    shell: tuple[str, ...] = ()


@dataclass(frozen=True)
class Maintainer(Instruction):
    """``MAINTAINER text`` (deprecated; sets the image author)."""

    keyword: ClassVar[str] = "MAINTAINER"
    maintainer: str = ""
