"""The values a stage evaluation produces: steps, and what each asks the executor to do.

:class:`Step` is one instruction of a stage after substitution, with the image config after
it, dockerd's history text and its cache key; a ``RUN`` carries a :class:`RunSpec`, a
``COPY``/``ADD`` a :class:`CopySpec`. :class:`StageEvaluation` is a whole stage. They are
produced by :func:`declarun.dockerfile.evaluate.evaluate_stage`, which documents what an
executor does with each kind of step.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, replace
from typing import Any, Literal

from declarun.dockerfile.cachekey import step_cache_key
from declarun.dockerfile.graph import StageNode
from declarun.dockerfile.imageconfig import HistoryEntry, ImageConfig
from declarun.dockerfile.instructions import Instruction
from declarun.dockerfile.mounts import Mount
from declarun.dockerfile.platform import Platform

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_SHELL",
    "CopySpec",
    "InlineFile",
    "InlineSource",
    "RunSpec",
    "StageEvaluation",
    "Step",
    "StepKind",
]

DEFAULT_SHELL = ("/bin/sh", "-c")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
StepKind = Literal["metadata", "run", "copy", "workdir"]


@dataclass(frozen=True)
class InlineFile:
    """A file the executor provides to a ``RUN`` (a heredoc with a ``#!`` line)."""

    path: str
    data: str
    mode: int = 0o755


@dataclass(frozen=True)
class RunSpec:
    """What a ``RUN`` step executes.

    ``argv`` is the full command (shell prepended for the shell form). ``env`` is the
    container's environment: the config's ``Env`` plus the stage's build args that ``Env``
    does not set (proxy args given by the caller included). ``history_args`` are the args
    (``KEY=value``, sorted) dockerd records before the command and keys the cache with;
    ``record_args`` tells whether dockerd's ``|N`` prefix appears at all. Mount targets are
    absolute. ``inline_files`` must be mounted read-only at their paths.
    """

    argv: tuple[str, ...]
    env: tuple[str, ...]
    user: str
    working_dir: str
    mounts: tuple[Mount, ...]
    network: str
    security: str
    inline_files: tuple[InlineFile, ...]
    history_args: tuple[str, ...]
    record_args: bool

    @property
    def saved_command(self) -> tuple[str, ...]:
        """dockerd's recorded command: ``|N K=V ... argv`` (or just argv without args)."""
        if not self.record_args:
            return self.argv
        return (f"|{len(self.history_args)}", *self.history_args, *self.argv)


@dataclass(frozen=True)
class InlineSource:
    """A ``COPY <<EOF`` source: a file called ``name`` with ``data`` (already substituted)."""

    name: str
    data: str


@dataclass(frozen=True)
class CopySpec:
    """A ``COPY``/``ADD`` after substitution.

    ``dest`` is the destination as written (after substitution; the history shows it);
    ``dest_path`` is absolute, the working directory applied, a trailing ``/`` kept.
    ``from_stage`` is the index of a ``--from`` stage, ``from_image`` a ``--from`` image;
    both None for the build context.
    """

    add: bool
    sources: tuple[str, ...]
    inline_sources: tuple[InlineSource, ...]
    dest: str
    dest_path: str
    from_stage: int | None
    from_image: str | None
    chown: str | None
    chmod: str | None
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()
    checksum: str | None = None
    keep_git_dir: bool | None = None
    unpack: bool | None = None

    @property
    def keyword(self) -> str:
        """``ADD`` or ``COPY``."""
        return "ADD" if self.add else "COPY"


@dataclass(frozen=True)
class Step:
    """One step of a stage (see the module docstring for what an executor does with it).

    ``instruction`` is as parsed, ``expanded`` the same instruction after substitution.
    ``onbuild`` marks a trigger inherited from the base image. ``config`` is the image
    config after the step (``config_before`` before it); ``author`` the ``MAINTAINER`` in
    effect. ``comment`` is dockerd's history text for a metadata or ``WORKDIR`` step.
    """

    stage: int
    index: int
    kind: StepKind
    instruction: Instruction
    expanded: Instruction
    onbuild: bool
    config_before: ImageConfig
    config: ImageConfig
    author: str
    comment: str = ""
    run: RunSpec | None = None
    copy: CopySpec | None = None
    workdir: str | None = None
    platform: Platform | None = None

    @property
    def shell(self) -> tuple[str, ...]:
        """The shell dockerd prefixes ``#(nop)`` comments with (the config's, or sh -c)."""
        return self.config.shell or DEFAULT_SHELL

    def created_by(self, *, source_hash: str | None = None) -> str:
        """The history's ``created_by``, as dockerd's classic builder writes it.

        A ``COPY``/``ADD`` needs ``source_hash``: dockerd's ``file:<hex>`` / ``dir:<hex>`` /
        ``multi:<hex>`` (:func:`declarun.dockerfile.sourcedigest.classic_source_hash`).
        """
        shell = " ".join(self.shell)
        if self.kind == "run":
            assert self.run is not None
            return " ".join(self.run.saved_command)
        if self.kind == "copy":
            assert self.copy is not None
            if source_hash is None:
                raise ValueError("a COPY/ADD step's created_by needs its source hash")
            chown = f"--chown={self.copy.chown}" if self.copy.chown else ""
            return f"{shell} #(nop) {self.copy.keyword} {chown}{source_hash} in {self.copy.dest} "
        if self.kind == "workdir":
            return f"{shell} #(nop) {self.comment}"
        return f"{shell} #(nop)  {self.comment}"

    def history(
        self,
        *,
        empty_layer: bool | None = None,
        source_hash: str | None = None,
        created: str | None = None,
    ) -> HistoryEntry:
        """The history entry; ``empty_layer`` defaults to True only for metadata steps.

        An executor passes ``empty_layer=True`` for a ``RUN``/``COPY``/``WORKDIR`` whose
        diff turned out empty, as dockerd does.
        """
        empty = self.kind == "metadata" if empty_layer is None else empty_layer
        return HistoryEntry(
            created_by=self.created_by(source_hash=source_hash),
            empty_layer=empty,
            author=self.author,
            created=created,
        )

    def container_config(self, *, source_hash: str | None = None) -> ImageConfig:
        """dockerd's ``container_config`` for this step (the config with its recorded Cmd)."""
        if self.kind == "run":
            assert self.run is not None
            saved = self.run.saved_command
            entrypoint = None if saved else self.config.entrypoint
            return replace(self.config, cmd=saved, entrypoint=entrypoint)
        if self.kind in ("copy", "workdir"):
            # The single-argument form dockerd keeps for WORKDIR, COPY and ADD.
            text = self.created_by(source_hash=source_hash)
            return replace(self.config, cmd=(*self.shell, text[len(" ".join(self.shell)) + 1 :]))
        return replace(self.config, cmd=(*self.shell, "#(nop) ", self.comment))

    def key_text(self) -> str:
        """The step after substitution as canonical JSON (what the cache key hashes)."""
        fields = {
            f.name: getattr(self.expanded, f.name)
            for f in dataclasses.fields(self.expanded)
            if f.name not in ("location", "original")
        }
        material: dict[str, Any] = {"instruction": type(self.expanded).keyword, "fields": fields}
        if self.run is not None:
            material["run"] = {
                "argv": self.run.argv,
                "args": self.run.history_args,
                "mounts": [(type(m).__name__, m) for m in self.run.mounts],
                "inline": self.run.inline_files,
            }
        if self.copy is not None:
            material["dest_path"] = self.copy.dest_path
            material["inline"] = self.copy.inline_sources
        return json.dumps(material, sort_keys=True, default=_json_default, ensure_ascii=False)

    def cache_key(
        self, parent: str, *, sources_digest: str | None = None, platform: Platform | None = None
    ) -> str:
        """This step's cache key given its parent's key (or the base image ID)."""
        chosen = platform or self.platform
        run_args = self.run.history_args if self.run is not None else ()
        return step_cache_key(
            parent,
            self.key_text(),
            sources_digest=sources_digest,
            run_args=run_args,
            platform=str(chosen) if chosen else "",
        )


@dataclass(frozen=True)
class StageEvaluation:
    """A stage evaluated: its steps, the final config and author, the args it declared."""

    node: StageNode
    steps: tuple[Step, ...]
    config: ImageConfig
    author: str
    declared_args: frozenset[str]
    triggers: tuple[str, ...]


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, tuple | frozenset):
        return list(value)
    raise TypeError(f"not serialisable: {value!r}")
