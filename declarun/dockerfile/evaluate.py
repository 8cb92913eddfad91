"""Evaluating one stage: each step after substitution, what it runs, how it changes the config.

:func:`evaluate_stage` walks a stage of a :class:`~declarun.dockerfile.graph.BuildPlan`
given its base image's config (``None`` for ``scratch``; for ``FROM <stage>``, the config
that stage ended with). It is pure: nothing runs and nothing is read, because no step's
metadata depends on what a ``RUN`` or ``COPY`` does. It applies, as dockerd's classic builder
does:

* the stage start: the base config without ``OpenStdin``/``StdinOnce``, a default ``PATH``
  when the base has none, and the base's ``ONBUILD`` triggers run first (then cleared);
* substitution (with the config's ``Env``, then the stage's args that ``Env`` does not hide)
  in ``ENV``, ``LABEL``, ``ARG`` defaults, ``COPY``/``ADD`` (sources, destination,
  ``--chown``/``--chmod``, heredoc bodies not quoted), ``WORKDIR``, ``USER``, ``VOLUME``,
  ``STOPSIGNAL``, ``EXPOSE`` (split into words) and ``RUN --mount`` options; never in
  ``RUN``, ``CMD``, ``ENTRYPOINT``, ``HEALTHCHECK``, ``SHELL``, ``ONBUILD``, ``MAINTAINER``;
* the config change of each instruction and the history text dockerd records for it.

Each :class:`Step` says what an executor must do:

* ``kind == "metadata"``: nothing to run; commit ``step.config`` with an empty layer and
  ``step.history()``.
* ``kind == "run"``: run ``step.run`` (:class:`RunSpec`: argv, environment, user, working
  directory, mounts, network, inline files) in a container on the previous step's
  filesystem; the diff is the layer (``history(empty_layer=True)`` when the diff is empty,
  as dockerd records it).
* ``kind == "copy"``: resolve ``step.copy`` (:class:`CopySpec`) with
  :func:`declarun.dockerfile.copyplan.plan_copy` and write what it lists.
* ``kind == "workdir"``: create ``step.workdir`` (``mkdir -p``, mode 0755, owned by root)
  if missing; an empty diff is an empty layer.

The cache key of a step is :meth:`Step.cache_key` (parent key, the step after substitution,
the sources digest for ``COPY``/``ADD``, the build args a ``RUN`` sees, the platform).
A mount's ``from_`` (and ``COPY --from``) names a stage when
:meth:`BuildPlan.stage_reference` says so, an image otherwise. An ``ONBUILD`` trigger of a
base image may name a stage the plan did not schedule (``COPY --from``): the executor must
then build that stage first (``CopySpec.from_stage`` is set either way).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from declarun.dockerfile.buildargs import PROXY_ARGS
from declarun.dockerfile.errors import DockerfileError, SubstitutionError
from declarun.dockerfile.gofmt import go_duration, go_quote_rune, go_strings_q, go_strings_v
from declarun.dockerfile.graph import BuildPlan, StageNode
from declarun.dockerfile.heredoc import heredoc_marker
from declarun.dockerfile.imageconfig import HealthConfig, ImageConfig
from declarun.dockerfile.instructions import (
    Add,
    Arg,
    ArgDefinition,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    Healthcheck,
    Instruction,
    KeyValue,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from declarun.dockerfile.lexer import Lexer
from declarun.dockerfile.metadata import check_stop_signal, exposed_port_keys
from declarun.dockerfile.mounts import (
    Mount,
    SecretMount,
    SshMount,
    parse_mount,
)
from declarun.dockerfile.parse import parse_trigger
from declarun.dockerfile.steps import (
    DEFAULT_PATH,
    DEFAULT_SHELL,
    CopySpec,
    InlineFile,
    InlineSource,
    RunSpec,
    StageEvaluation,
    Step,
)

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_SHELL",
    "CopySpec",
    "RunSpec",
    "StageEvaluation",
    "Step",
    "evaluate_stage",
]

_HEREDOC_PIPES = "/dev/pipes/"


class _Evaluator:
    """Mutable state while a stage is walked; produces immutable steps."""

    def __init__(self, plan: BuildPlan, node: StageNode, base: ImageConfig) -> None:
        self.plan = plan
        self.node = node
        self.lexer = Lexer(escape=plan.dockerfile.escape)
        self.heredoc_lexer = Lexer(skip_process_quotes=True)
        self.build_args = plan.build_args
        self.stage_args: dict[str, str | None] = {}
        self.author = ""
        self.cmd_set = False
        env = list(base.env or ())
        if not any(item.partition("=")[0] == "PATH" for item in env):
            env.append("PATH=" + DEFAULT_PATH)
        self.config = replace(base, open_stdin=False, stdin_once=False, env=tuple(env))

    # -- substitution --------------------------------------------------------------------

    def allowed_args(self) -> dict[str, str]:
        allowed = {k: v for k, v in self.stage_args.items() if v is not None}
        for proxy in PROXY_ARGS:
            if proxy in self.build_args and proxy not in self.stage_args:
                allowed[proxy] = self.build_args[proxy]
        return allowed

    def substitution_env(self) -> dict[str, str]:
        env = self.config.env_mapping()
        for key, value in self.allowed_args().items():
            env.setdefault(key, value)
        return env

    def expand(self, word: str, env: Mapping[str, str]) -> str:
        return self.lexer.process_word(word, env)

    # -- steps ---------------------------------------------------------------------------

    def step(self, index: int, instruction: Instruction, onbuild: bool) -> Step:
        before = self.config
        env = self.substitution_env()
        handler = getattr(self, "_" + type(instruction).keyword.lower())
        expanded, kind, comment, extra = handler(instruction, env)
        return Step(
            stage=self.node.index,
            index=index,
            kind=kind,
            instruction=instruction,
            expanded=expanded,
            onbuild=onbuild,
            config_before=before,
            config=self.config,
            author=self.author,
            comment=comment,
            platform=self.node.platform,
            **extra,
        )

    def _env(self, inst: Env, env: Mapping[str, str]) -> tuple[Any, ...]:
        pairs = tuple(
            KeyValue(self.expand(p.key, env), self.expand(p.value, env)) for p in inst.pairs
        )
        items = list(self.config.env or ())
        for pair in pairs:
            for i, item in enumerate(items):
                if item.partition("=")[0] == pair.key:
                    items[i] = str(pair)
                    break
            else:
                items.append(str(pair))
        self.config = replace(self.config, env=tuple(items))
        comment = "ENV" + "".join(" " + str(p) for p in pairs)
        return replace(inst, pairs=pairs), "metadata", comment, {}

    def _label(self, inst: Label, env: Mapping[str, str]) -> tuple[Any, ...]:
        pairs = inst.pairs
        if inst.expand:
            pairs = tuple(
                KeyValue(self.expand(p.key, env), self.expand(p.value, env)) for p in inst.pairs
            )
        labels = dict(self.config.labels or ())
        for pair in pairs:
            labels[pair.key] = pair.value
        self.config = replace(self.config, labels=tuple(sorted(labels.items())))
        comment = "LABEL" + "".join(" " + str(p) for p in pairs)
        return replace(inst, pairs=pairs), "metadata", comment, {}

    def _maintainer(self, inst: Maintainer, env: Mapping[str, str]) -> tuple[Any, ...]:
        self.author = inst.maintainer
        return inst, "metadata", "MAINTAINER " + inst.maintainer, {}

    def _arg(self, inst: Arg, env: Mapping[str, str]) -> tuple[Any, ...]:
        definitions = []
        for definition in inst.args:
            key = self.expand(definition.key, env)
            default = None if definition.default is None else self.expand(definition.default, env)
            definitions.append(ArgDefinition(key, default))
            if key in self.build_args:
                value: str | None = self.build_args[key]
            elif default is not None:
                value = default
            else:
                value = self.plan.global_args.values.get(key)
            self.stage_args[key] = value
        comment = "ARG " + " ".join(str(d) for d in definitions)
        return replace(inst, args=tuple(definitions)), "metadata", comment, {}

    def _workdir(self, inst: Workdir, env: Mapping[str, str]) -> tuple[Any, ...]:
        path = self.expand(inst.path, env)
        if not path:
            raise ValueError("cannot normalize nothing")
        if not path.startswith("/"):
            path = posixpath.normpath(posixpath.join("/", self.config.working_dir, path))
        self.config = replace(self.config, working_dir=path)
        return replace(inst, path=path), "workdir", "WORKDIR " + path, {"workdir": path}

    def _user(self, inst: User, env: Mapping[str, str]) -> tuple[Any, ...]:
        user = self.expand(inst.user, env)
        self.config = replace(self.config, user=user)
        return replace(inst, user=user), "metadata", "USER " + user, {}

    def _volume(self, inst: Volume, env: Mapping[str, str]) -> tuple[Any, ...]:
        paths = tuple(self.expand(p, env) for p in inst.paths)
        if any(not p for p in paths):
            raise ValueError("VOLUME specified can not be an empty string")
        volumes = set(self.config.volumes or ()) | set(paths)
        self.config = replace(self.config, volumes=tuple(sorted(volumes)))
        return replace(inst, paths=paths), "metadata", "VOLUME " + go_strings_v(paths), {}

    def _stopsignal(self, inst: StopSignal, env: Mapping[str, str]) -> tuple[Any, ...]:
        signal = self.expand(inst.signal, env)
        check_stop_signal(signal)
        self.config = replace(self.config, stop_signal=signal)
        return replace(inst, signal=signal), "metadata", "STOPSIGNAL " + signal, {}

    def _expose(self, inst: Expose, env: Mapping[str, str]) -> tuple[Any, ...]:
        ports = tuple(word for p in inst.ports for word in self.lexer.process_words(p, env))
        keys = set(self.config.exposed_ports or ()) | set(exposed_port_keys(list(ports)))
        self.config = replace(self.config, exposed_ports=tuple(sorted(keys)))
        return replace(inst, ports=ports), "metadata", "EXPOSE " + " ".join(ports), {}

    def _onbuild(self, inst: Onbuild, env: Mapping[str, str]) -> tuple[Any, ...]:
        self.config = replace(
            self.config, on_build=(*(self.config.on_build or ()), inst.expression)
        )
        return inst, "metadata", "ONBUILD " + inst.expression, {}

    def _shell(self, inst: Shell, env: Mapping[str, str]) -> tuple[Any, ...]:
        self.config = replace(self.config, shell=inst.shell)
        return inst, "metadata", "SHELL " + go_strings_v(inst.shell), {}

    def _resolve_command(self, command: tuple[str, ...], shell_form: bool) -> tuple[str, ...]:
        return (*(self.config.shell or DEFAULT_SHELL), *command) if shell_form else command

    def _cmd(self, inst: Cmd, env: Mapping[str, str]) -> tuple[Any, ...]:
        cmd = self._resolve_command(inst.command, inst.shell_form)
        self.config = replace(self.config, cmd=cmd, args_escaped=False)
        if inst.command:
            self.cmd_set = True
        return inst, "metadata", "CMD " + go_strings_q(cmd), {}

    def _entrypoint(self, inst: Entrypoint, env: Mapping[str, str]) -> tuple[Any, ...]:
        entrypoint = None
        if inst.command is not None:
            entrypoint = self._resolve_command(inst.command, inst.shell_form)
        config = replace(self.config, entrypoint=entrypoint, args_escaped=False)
        if not self.cmd_set:
            config = replace(config, cmd=None)
        self.config = config
        return inst, "metadata", "ENTRYPOINT " + go_strings_q(entrypoint), {}

    def _healthcheck(self, inst: Healthcheck, env: Mapping[str, str]) -> tuple[Any, ...]:
        health = HealthConfig(
            inst.test,
            inst.interval,
            inst.timeout,
            inst.start_period,
            inst.start_interval,
            inst.retries,
        )
        previous = self.config.healthcheck
        if previous is not None:
            # dockerd's container create merges the parent image's healthcheck into the new
            # one, and the builder's config shares that object: zero fields are inherited.
            stored = replace(
                health,
                interval=health.interval or previous.interval,
                timeout=health.timeout or previous.timeout,
                start_period=health.start_period or previous.start_period,
                retries=health.retries or previous.retries,
            )
        else:
            stored = health
        self.config = replace(self.config, healthcheck=stored)
        # dockerd 20.10 prints its HealthConfig struct with %q (no StartInterval field then),
        # before that merge.
        comment = (
            f"HEALTHCHECK &{{{go_strings_q(health.test)} {_q(go_duration(health.interval))} "
            f"{_q(go_duration(health.timeout))} {_q(go_duration(health.start_period))} "
            f"{go_quote_rune(health.retries)}}}"
        )
        return inst, "metadata", comment, {}

    def _run(self, inst: Run, env: Mapping[str, str]) -> tuple[Any, ...]:
        mounts = tuple(
            self._absolute_mount(parse_mount(spec, lambda value: self.expand(value, env)))
            for spec in inst.mount_specs
        )
        command, inline = self._heredoc_command(inst)
        argv = self._resolve_command(command, inst.shell_form)
        allowed = {k: v for k, v in self.allowed_args().items() if self.config.env_value(k) is None}
        recorded = sorted(
            f"{k}={v}" for k, v in allowed.items() if k in self.stage_args or k not in PROXY_ARGS
        )
        run = RunSpec(
            argv=argv,
            env=(*(self.config.env or ()), *(f"{k}={v}" for k, v in sorted(allowed.items()))),
            user=self.config.user,
            working_dir=self.config.working_dir or "/",
            mounts=mounts,
            network=inst.network,
            security=inst.security,
            inline_files=inline,
            history_args=tuple(recorded),
            record_args=bool(allowed),
        )
        return replace(inst, mounts=mounts), "run", "", {"run": run}

    def _absolute_mount(self, mount: Mount) -> Mount:
        if isinstance(mount, SecretMount | SshMount) and mount.target is None:
            return mount
        target = mount.target or ""
        if not target.startswith("/"):
            target = posixpath.join("/", self.config.working_dir, target)
        target = posixpath.normpath(target)
        if target == "/":
            raise ValueError(f'invalid mount target "{mount.target}"')
        return replace(mount, target=target)

    def _heredoc_command(self, inst: Run) -> tuple[tuple[str, ...], tuple[InlineFile, ...]]:
        if not inst.heredocs:
            return inst.command, ()
        line = inst.command[0] if inst.command else ""
        first = inst.heredocs[0]
        if heredoc_marker(line) is not None:
            data = first.data
            if data.startswith("#!"):
                path = _HEREDOC_PIPES + first.name
                return (path,), (InlineFile(path, data),)
            return (data,), ()
        script = line + "".join("\n" + doc.content + doc.name for doc in inst.heredocs)
        return (script,), ()

    def _copy_like(self, inst: Copy | Add, env: Mapping[str, str]) -> tuple[Any, ...]:
        sources = tuple(self.expand(s, env) for s in inst.sources)
        dest = self.expand(inst.dest, env)
        chown = self.expand(inst.chown, env) if inst.chown else None
        chmod = self.expand(inst.chmod, env) if inst.chmod else None
        inline = tuple(
            InlineSource(
                doc.name,
                self.heredoc_lexer.process_word(doc.data, env) if doc.expand else doc.data,
            )
            for doc in inst.heredocs
        )
        dest_path = dest
        if not dest.startswith("/"):
            dest_path = posixpath.normpath(posixpath.join("/", self.config.working_dir, dest))
            if dest.endswith("/") and dest_path != "/":
                dest_path += "/"
        from_stage, from_image = None, None
        if isinstance(inst, Copy) and inst.from_:
            from_stage, from_image = self._copy_from(inst)
        is_add = isinstance(inst, Add)
        spec = CopySpec(
            add=is_add,
            sources=sources,
            inline_sources=inline,
            dest=dest,
            dest_path=dest_path,
            from_stage=from_stage,
            from_image=from_image,
            chown=chown or None,
            chmod=chmod or None,
            link=inst.link,
            parents=inst.parents if isinstance(inst, Copy) else False,
            excludes=inst.excludes,
            checksum=inst.checksum if isinstance(inst, Add) else None,
            keep_git_dir=inst.keep_git_dir if isinstance(inst, Add) else None,
            unpack=inst.unpack if isinstance(inst, Add) else None,
        )
        expanded = replace(inst, sources=sources, dest=dest, chown=chown, chmod=chmod)
        return expanded, "copy", "", {"copy": spec}

    def _copy_from(self, inst: Copy) -> tuple[int | None, str | None]:
        text = inst.from_ or ""
        index = self.plan.stage_reference(text)
        return (index, None) if index is not None else (None, text)

    _copy = _copy_like
    _add = _copy_like


def _q(text: str) -> str:
    return '"' + text + '"'


def _located(instruction: Instruction, exc: Exception) -> DockerfileError:
    location = instruction.location
    return DockerfileError(
        str(exc),
        file=location.file,
        line=location.start_line,
        instruction=type(instruction).keyword,
    )


def evaluate_stage(
    plan: BuildPlan, index: int, base_config: ImageConfig | Mapping[str, Any] | None
) -> StageEvaluation:
    """Evaluate stage ``index`` of ``plan`` on a base image with config ``base_config``.

    ``base_config`` is the base image's ``config`` object (an :class:`ImageConfig` or its
    Docker JSON), the final :attr:`StageEvaluation.config` of the stage named in ``FROM``,
    or None for ``scratch``. Raises :class:`DockerfileError` (file, line, instruction) for a
    substitution that fails, a bad mount, port, signal or ``ONBUILD`` trigger.
    """
    node = plan.node(index)
    if isinstance(base_config, ImageConfig):
        base = base_config
    else:
        base = ImageConfig.from_docker(base_config)
    evaluator = _Evaluator(plan, node, base)
    triggers = tuple(evaluator.config.on_build or ())
    evaluator.config = replace(evaluator.config, on_build=None) if triggers else evaluator.config
    from_line = node.stage.from_.location
    instructions: list[tuple[Instruction, bool]] = [
        (parse_trigger(t, file=from_line.file, line=from_line.start_line), True) for t in triggers
    ]
    instructions += [(i, False) for i in node.stage.instructions]
    steps = []
    for position, (instruction, onbuild) in enumerate(instructions):
        try:
            steps.append(evaluator.step(position, instruction, onbuild))
        except DockerfileError:
            raise
        except (SubstitutionError, ValueError) as exc:
            raise _located(instruction, exc) from None
    declared = frozenset(evaluator.stage_args)
    return StageEvaluation(
        node, tuple(steps), evaluator.config, evaluator.author, declared, triggers
    )
