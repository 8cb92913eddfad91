"""Stages as a graph: what a target needs, in which order, and which images come from outside.

:func:`plan_build` resolves every stage's ``FROM`` (global args substituted, ``scratch``, a
previous stage by name or an image) and ``--platform``, and finds each stage's dependencies:
``FROM <stage>``, ``COPY --from=<stage name or index>`` and ``RUN --mount=...,from=<stage>``.
A ``--from`` naming no stage names an image. Like BuildKit, ``COPY --from`` may name a stage
defined later (a cycle is an error); ``FROM`` can only name an earlier stage.

The result lists only the stages the target needs (others are skipped), in a topological
order, grouped in *levels*: every stage of a level depends only on stages of earlier levels,
so the stages of one level can be built concurrently. :attr:`BuildPlan.external_images` are
the images the build pulls (base images and ``--from``/``from=`` images of needed stages);
the planner uses them as the image's base-image edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from declarun.dockerfile.buildargs import (
    GlobalArgs,
    platform_args,
    resolve_global_args,
    unconsumed_build_args,
)
from declarun.dockerfile.errors import BuildTargetError, DockerfileError, SubstitutionError
from declarun.dockerfile.instructions import Arg, Copy, Instruction, Location, Run
from declarun.dockerfile.lexer import Lexer
from declarun.dockerfile.mounts import BindMount, CacheMount, MountError, parse_mount
from declarun.dockerfile.parse import Dockerfile, Stage
from declarun.dockerfile.platform import Platform, host_platform, parse_platform

__all__ = ["SCRATCH", "BuildPlan", "StageNode", "plan_build"]

SCRATCH = "scratch"


@dataclass(frozen=True)
class StageNode:
    """A stage with its ``FROM`` resolved and its dependencies found.

    ``base`` is the ``FROM`` after substitution; ``base_stage`` the index of the stage it
    builds on (None for an image or ``scratch``); ``base_image`` the image to pull (None for
    a stage or ``scratch``). ``platform`` is ``--platform`` when given, else the build's
    target platform. ``stage_deps`` are the stages it needs; ``images`` the external images
    its ``COPY --from``/mounts read (besides ``base_image``).
    """

    stage: Stage
    base: str
    base_stage: int | None
    base_image: str | None
    platform: Platform
    stage_deps: frozenset[int]
    images: tuple[str, ...]

    @property
    def index(self) -> int:
        """The stage's position in the Dockerfile."""
        return self.stage.index

    @property
    def name(self) -> str | None:
        """The stage's name (lower case), or None."""
        return self.stage.name


@dataclass(frozen=True)
class BuildPlan:
    """What building ``target`` takes (see the module docstring)."""

    dockerfile: Dockerfile
    nodes: tuple[StageNode, ...]
    target: int
    order: tuple[int, ...]
    levels: tuple[tuple[int, ...], ...]
    global_args: GlobalArgs
    build_args: Mapping[str, str]
    target_platform: Platform
    build_platform: Platform

    @property
    def external_images(self) -> tuple[str, ...]:
        """Images the needed stages pull, first use first, without repeats."""
        seen: dict[str, None] = {}
        for index in self.order:
            node = self.nodes[index]
            if node.base_image is not None:
                seen.setdefault(node.base_image, None)
            for image in node.images:
                seen.setdefault(image, None)
        return tuple(seen)

    def stage_reference(self, text: str) -> int | None:
        """The stage a ``--from``/``from=`` value names (by name or index), None for an image."""
        for node in self.nodes:
            if node.name is not None and node.name == text.lower():
                return node.index
        if text.isdigit() and int(text) < len(self.nodes):
            return int(text)
        return None

    def node(self, index: int) -> StageNode:
        """The stage at ``index``."""
        return self.nodes[index]

    def dependencies(self, index: int) -> frozenset[int]:
        """The stages stage ``index`` needs built first."""
        return self.nodes[index].stage_deps

    def dependents(self, index: int) -> frozenset[int]:
        """The needed stages that need stage ``index``."""
        return frozenset(i for i in self.order if index in self.nodes[i].stage_deps)

    def skipped(self) -> tuple[int, ...]:
        """Stages the target does not need."""
        needed = set(self.order)
        return tuple(n.index for n in self.nodes if n.index not in needed)

    def declared_args(self) -> frozenset[str]:
        """Arg names declared globally or in a needed stage (ONBUILD triggers aside)."""
        names = set(self.global_args.declared)
        for index in self.order:
            for instruction in self.nodes[index].stage.instructions:
                if isinstance(instruction, Arg):
                    names.update(a.key for a in instruction.args)
        return frozenset(names)

    def unconsumed_build_args(self) -> list[str]:
        """Build args given but declared nowhere in the stages built (dockerd's warning)."""
        return unconsumed_build_args(self.build_args, self.declared_args())


def _error(location: Location, message: str, keyword: str) -> DockerfileError:
    return DockerfileError(
        message, file=location.file, line=location.start_line, instruction=keyword
    )


class _Stages:
    def __init__(self, stages: tuple[Stage, ...]) -> None:
        self.stages = stages
        self.by_name = {s.name: s.index for s in stages if s.name is not None}

    def named(self, name: str, before: int | None = None) -> int | None:
        index = self.by_name.get(name.lower())
        if index is not None and before is not None and index >= before:
            return None
        return index

    def reference(self, text: str, current: int, location: Location, keyword: str) -> int | None:
        """A ``--from`` value as a stage index, or None when it names an image."""
        index = self.named(text)
        if index is None and text.isdigit():
            index = int(text)
            if index >= len(self.stages):
                raise _error(location, f"invalid stage index {index}", keyword)
        if index == current:
            raise _error(location, f"{keyword} --from={text} refers to the stage itself", keyword)
        return index


def _instruction_refs(instruction: Instruction) -> list[str]:
    if isinstance(instruction, Copy) and instruction.from_:
        if "$" in instruction.from_:
            raise _error(
                instruction.location,
                "variable expansion is not supported for --from, define a new stage with FROM "
                "using ARG from global scope as a workaround",
                "COPY",
            )
        return [instruction.from_]
    if isinstance(instruction, Run):
        refs = []
        for spec in instruction.mount_specs:
            try:
                mount = parse_mount(spec, lambda value: value)
            except MountError:
                continue  # a spec with variables; reported when evaluated
            if isinstance(mount, BindMount | CacheMount) and mount.from_:
                refs.append(mount.from_)
        return refs
    return []


def _resolve_node(
    stage: Stage, stages: _Stages, global_args: GlobalArgs, lexer: Lexer, target: Platform
) -> StageNode:
    from_ = stage.from_
    try:
        base = lexer.process_word(from_.base, global_args.values)
    except SubstitutionError as exc:
        raise _error(from_.location, str(exc), "FROM") from None
    if not base:
        raise _error(from_.location, f"base name ({from_.base}) should not be blank", "FROM")
    platform = target
    if from_.platform:
        try:
            text = lexer.process_word(from_.platform, global_args.values)
            platform = parse_platform(text)
        except (SubstitutionError, ValueError) as exc:
            raise _error(
                from_.location, f"failed to parse platform {from_.platform}: {exc}", "FROM"
            ) from None
    base_stage = stages.named(base, before=stage.index)
    base_image = None if base_stage is not None or base.lower() == SCRATCH else base
    deps: set[int] = set() if base_stage is None else {base_stage}
    images: list[str] = []
    for instruction in stage.instructions:
        for ref in _instruction_refs(instruction):
            keyword = type(instruction).keyword
            index = stages.reference(ref, stage.index, instruction.location, keyword)
            if index is None:
                images.append(ref)
            else:
                deps.add(index)
    return StageNode(stage, base, base_stage, base_image, platform, frozenset(deps), tuple(images))


def _target_index(dockerfile: Dockerfile, target: str | None) -> int:
    if not target:
        return len(dockerfile.stages) - 1
    for stage in dockerfile.stages:
        if stage.name == target.lower():
            return stage.index
    names = ", ".join(s.display_name for s in dockerfile.stages)
    raise BuildTargetError(
        f'target stage "{target}" could not be found in {dockerfile.file} (stages: {names})'
    )


def _needed(nodes: tuple[StageNode, ...], target: int) -> set[int]:
    needed: set[int] = set()
    todo = [target]
    while todo:
        index = todo.pop()
        if index not in needed:
            needed.add(index)
            todo.extend(nodes[index].stage_deps)
    return needed


def _levels(nodes: tuple[StageNode, ...], needed: set[int]) -> list[list[int]]:
    level: dict[int, int] = {}
    remaining = sorted(needed)
    while remaining:
        ready = [i for i in remaining if all(d in level for d in nodes[i].stage_deps)]
        if not ready:
            cycle = ", ".join(nodes[i].stage.display_name for i in remaining)
            location = nodes[remaining[0]].stage.from_.location
            raise _error(location, f"circular dependency between stages: {cycle}", "FROM")
        for index in ready:
            level[index] = 1 + max((level[d] for d in nodes[index].stage_deps), default=-1)
        remaining = [i for i in remaining if i not in level]
    grouped: list[list[int]] = [[] for _ in range(max(level.values()) + 1)]
    for index in sorted(level):
        grouped[level[index]].append(index)
    return grouped


def plan_build(
    dockerfile: Dockerfile,
    *,
    build_args: Mapping[str, str] | None = None,
    target: str | None = None,
    target_platform: Platform | None = None,
    build_platform: Platform | None = None,
) -> BuildPlan:
    """The stages building ``target`` (default: the last stage) needs, and their order.

    ``build_args`` are the caller's ``--build-arg`` values; the platforms default to this
    machine's. Raises :class:`BuildTargetError` for an unknown target (naming the stages)
    and :class:`DockerfileError` for an unresolvable ``FROM`` or a dependency cycle.
    """
    args = dict(build_args or {})
    build = build_platform or host_platform()
    target_p = target_platform or build
    global_args = resolve_global_args(
        dockerfile.meta_args, args, platform_args(target_p, build), escape=dockerfile.escape
    )
    lexer = Lexer(escape=dockerfile.escape)
    stages = _Stages(dockerfile.stages)
    nodes = tuple(
        _resolve_node(stage, stages, global_args, lexer, target_p) for stage in dockerfile.stages
    )
    target_index = _target_index(dockerfile, target)
    levels = _levels(nodes, _needed(nodes, target_index))
    return BuildPlan(
        dockerfile=dockerfile,
        nodes=nodes,
        target=target_index,
        order=tuple(i for level in levels for i in level),
        levels=tuple(tuple(level) for level in levels),
        global_args=global_args,
        build_args=args,
        target_platform=target_p,
        build_platform=build,
    )
