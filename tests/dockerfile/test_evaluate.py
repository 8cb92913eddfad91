"""Evaluating stages: substitution scope, RUN specs, ONBUILD, config changes, errors, keys."""

from __future__ import annotations

import pytest

from declarun.dockerfile.errors import DockerfileError
from declarun.dockerfile.evaluate import DEFAULT_PATH, StageEvaluation, Step, evaluate_stage
from declarun.dockerfile.graph import plan_build
from declarun.dockerfile.imageconfig import ImageConfig
from declarun.dockerfile.instructions import Copy, Env, Workdir
from declarun.dockerfile.mounts import BindMount, CacheMount, SecretMount
from declarun.dockerfile.parse import parse_dockerfile
from declarun.dockerfile.platform import Platform

AMD64 = Platform("linux", "amd64")
BASE = {"Env": ["PATH=" + DEFAULT_PATH, "HOME=/root"], "Cmd": ["sh"]}


def evaluate(
    text: str, build_args: dict[str, str] | None = None, stage: int = -1, base: object = BASE
) -> StageEvaluation:
    plan = plan_build(
        parse_dockerfile(text), build_args=build_args, target_platform=AMD64, build_platform=AMD64
    )
    index = plan.order[-1] if stage == -1 else stage
    return evaluate_stage(plan, index, base)  # type: ignore[arg-type]


def last(text: str, **kwargs: object) -> Step:
    return evaluate(text, **kwargs).steps[-1]  # type: ignore[arg-type]


def test_stage_start_adds_path_and_clears_stdin() -> None:
    result = evaluate("FROM scratch\nLABEL a=b\n", base=None)
    assert result.config.env == ("PATH=" + DEFAULT_PATH,)
    opened = evaluate("FROM x\nLABEL a=b\n", base={"OpenStdin": True, "Env": ["PATH=/p"]})
    assert not opened.config.open_stdin and opened.config.env == ("PATH=/p",)


def test_env_beats_arg_and_args_are_scoped() -> None:
    result = evaluate(
        "ARG GLOBAL=g\nFROM x\nARG GLOBAL\nARG A=arg\nENV A=env B=$A\nENV C=$A D=$GLOBAL\n",
    )
    env = result.config.env_mapping()
    assert (env["B"], env["C"], env["D"]) == ("arg", "env", "g")


def test_global_args_are_invisible_until_redeclared() -> None:
    step = last("ARG V=1\nFROM x\nLABEL v=${V:-unset}\n")
    assert step.config.labels == (("v", "unset"),)


def test_build_args_override_defaults_and_platform_args_come_in() -> None:
    result = evaluate(
        "FROM x\nARG V=default\nARG TARGETARCH\nLABEL v=$V arch=$TARGETARCH\n",
        build_args={"V": "given"},
    )
    assert dict(result.config.labels or ()) == {"v": "given", "arch": "amd64"}


def test_run_spec_environment_and_history_args() -> None:
    step = last(
        "FROM x\nARG A=1\nARG B\nENV A=env\nUSER app\nWORKDIR /w\nRUN echo $A\n",
        build_args={"B": "2", "HTTP_PROXY": "http://p", "X": "unused"},
    )
    assert step.run is not None
    assert step.run.argv == ("/bin/sh", "-c", "echo $A")
    assert step.run.env == (
        "PATH=" + DEFAULT_PATH,
        "HOME=/root",
        "A=env",
        "B=2",
        "HTTP_PROXY=http://p",
    )
    assert step.run.history_args == ("B=2",)
    assert step.created_by() == "|1 B=2 /bin/sh -c echo $A"
    assert (step.run.user, step.run.working_dir) == ("app", "/w")


def test_only_undeclared_proxies_give_an_empty_prefix() -> None:
    step = last("FROM x\nRUN true\n", build_args={"http_proxy": "p"})
    assert step.created_by() == "|0 /bin/sh -c true"
    assert last("FROM x\nRUN true\n").created_by() == "/bin/sh -c true"


def test_run_exec_form_shell_and_mounts() -> None:
    step = last(
        'FROM x\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nWORKDIR /src\nARG DIR=cache\n'
        "RUN --mount=type=cache,target=$DIR --mount=type=bind,from=build,target=/in "
        "--mount=type=secret,id=tok,env=TOKEN --network=none make\n"
    )
    assert step.run is not None
    assert step.run.argv == ("/bin/bash", "-eo", "pipefail", "-c", "make")
    assert step.run.mounts == (
        CacheMount(target="/src/cache", id="cache"),
        BindMount(target="/in", from_="build"),
        SecretMount(id="tok", target=None, env="TOKEN"),
    )
    assert step.run.network == "none"
    assert last('FROM x\nRUN ["echo", "$HOME"]\n').run.argv == ("echo", "$HOME")  # type: ignore[union-attr]


def test_heredoc_runs() -> None:
    simple = last("FROM x\nRUN <<EOF\necho $HOME\nEOF\n")
    assert simple.run is not None and simple.run.argv == ("/bin/sh", "-c", "echo $HOME\n")
    shebang = last("FROM x\nRUN <<script\n#!/usr/bin/env python3\nprint(1)\nscript\n")
    assert shebang.run is not None
    assert shebang.run.argv == ("/bin/sh", "-c", "/dev/pipes/script")
    (inline,) = shebang.run.inline_files
    assert inline.data.startswith("#!") and inline.mode == 0o755
    several = last("FROM x\nRUN cat <<A <<-B\na\nA\n\tb\n\tB\n")
    assert several.run is not None
    assert several.run.argv[-1] == "cat <<A <<-B\na\nA\n\tb\nB"


def test_copy_heredoc_expansion_respects_quoting() -> None:
    expanded = last('FROM x\nARG WHO=world\nCOPY <<EOF /greeting\nhello $WHO "q"\nEOF\n')
    assert expanded.copy is not None
    assert expanded.copy.inline_sources[0].data == 'hello world "q"\n'
    literal = last("FROM x\nARG WHO=world\nCOPY <<'EOF' /greeting\nhello $WHO\nEOF\n")
    assert literal.copy is not None and literal.copy.inline_sources[0].data == "hello $WHO\n"


def test_copy_spec_after_substitution() -> None:
    step = last(
        "FROM build AS b\nFROM x\nWORKDIR /app\nARG OWNER=1:2\nCOPY --from=b --chown=$OWNER src/ dst/\n"
    )
    assert step.copy is not None
    assert (step.copy.dest, step.copy.dest_path) == ("dst/", "/app/dst/")
    assert (step.copy.from_stage, step.copy.chown) == (0, "1:2")
    assert isinstance(step.expanded, Copy) and step.expanded.chown == "1:2"
    image = last("FROM x\nCOPY --from=nginx:1 /etc/nginx /etc/nginx\n")
    assert image.copy is not None and image.copy.from_image == "nginx:1"


def test_workdir_normalisation() -> None:
    result = evaluate("FROM x\nWORKDIR /a\nWORKDIR b/../c\nWORKDIR /abs/../kept\n")
    assert [s.workdir for s in result.steps] == ["/a", "/a/c", "/abs/../kept"]
    assert isinstance(result.steps[1].expanded, Workdir)


def test_cmd_entrypoint_interplay() -> None:
    entry_only = evaluate('FROM x\nENTRYPOINT ["/app"]\n')
    assert entry_only.config.cmd is None and entry_only.config.entrypoint == ("/app",)
    both = evaluate('FROM x\nCMD ["--help"]\nENTRYPOINT ["/app"]\n')
    assert both.config.cmd == ("--help",)
    cleared = evaluate("FROM x\nENTRYPOINT []\n", base={"Entrypoint": ["/old"], "Cmd": ["c"]})
    assert cleared.config.entrypoint is None and cleared.config.cmd is None


def test_onbuild_triggers_run_first_and_are_cleared() -> None:
    base = {"Env": ["PATH=/p"], "OnBuild": ["ENV FROM_TRIGGER=1", "COPY . /app"]}
    result = evaluate("FROM x\nLABEL a=b\n", base=base)
    assert [type(s.instruction).__name__ for s in result.steps] == ["Env", "Copy", "Label"]
    assert [s.onbuild for s in result.steps] == [True, True, False]
    assert result.config.on_build is None
    assert result.steps[0].instruction.location.start_line == 1
    assert isinstance(result.steps[0].expanded, Env)
    with pytest.raises(DockerfileError, match="Dockerfile:1: unknown instruction: BOGUS"):
        evaluate("FROM x\n", base={"OnBuild": ["BOGUS x"]})


def test_metadata_history_text() -> None:
    result = evaluate(
        "FROM x\nEXPOSE $P 53/udp\nVOLUME /a $V\nSTOPSIGNAL SIG$S\nHEALTHCHECK --retries=2 CMD true\n"
        "MAINTAINER me\nLABEL k=v\n",
        base={"Env": ["P=80 81", "V=/b", "S=TERM"]},
    )
    texts = [s.created_by() for s in result.steps]
    assert texts[0] == "/bin/sh -c #(nop)  EXPOSE 80 81 53/udp"
    assert texts[1] == "/bin/sh -c #(nop)  VOLUME [/a /b]"
    assert texts[2] == "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM"
    assert texts[3] == (
        '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "0s" "0s" "0s" \'\\x02\'}'
    )
    assert result.steps[-1].history().author == "me"
    assert result.config.exposed_ports == ("53/udp", "80/tcp", "81/tcp")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('FROM x\nLABEL a="${B:?need B}"\n', "Dockerfile:2: LABEL: failed to process"),
        ("FROM x\nSTOPSIGNAL BOGUS\n", "Dockerfile:2: STOPSIGNAL: Invalid signal: BOGUS"),
        ("FROM x\nEXPOSE 80/xyz\n", "Dockerfile:2: EXPOSE: Invalid proto: xyz"),
        ("FROM x\nRUN --mount=type=$T,target=/x true\n", 'unsupported mount type ""'),
        ("FROM x\nWORKDIR $EMPTY\n", "cannot normalize nothing"),
        ("FROM x\nRUN --mount=type=cache,target=/ true\n", "invalid mount target"),
    ],
)
def test_evaluation_errors_are_located(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message.replace("$", r"\$")):
        evaluate(text)


def test_cache_keys_follow_substituted_text_args_and_parent() -> None:
    def key(text: str, **kwargs: object) -> str:
        return last(text, **kwargs).cache_key("sha256:parent")  # type: ignore[arg-type]

    base = key("FROM x\nARG V\nRUN echo hi\n", build_args={"V": "1"})
    assert base == key("FROM x\nARG V\n\n\nRUN echo hi\n", build_args={"V": "1"})
    assert base != key("FROM x\nARG V\nRUN echo hi\n", build_args={"V": "2"})
    assert base != key("FROM x\nARG V\nRUN echo ho\n", build_args={"V": "1"})
    proxy = key("FROM x\nARG V\nRUN echo hi\n", build_args={"V": "1", "HTTP_PROXY": "p"})
    assert proxy == base
    step = last("FROM x\nENV A=1\n")
    assert step.cache_key("sha256:a") != step.cache_key("sha256:b")
    copy = last("FROM x\nCOPY a /a\n")
    assert copy.cache_key("p", sources_digest="sha256:1") != copy.cache_key(
        "p", sources_digest="sha256:2"
    )


def test_container_config_records_the_step() -> None:
    result = evaluate("FROM x\nENV A=1\nRUN true\nWORKDIR /w\n")
    env, run, workdir = result.steps
    assert env.container_config().cmd == ("/bin/sh", "-c", "#(nop) ", "ENV A=1")
    assert run.container_config().cmd == ("/bin/sh", "-c", "true")
    assert workdir.container_config().cmd == ("/bin/sh", "-c", "#(nop) WORKDIR /w")
    assert isinstance(result.config, ImageConfig)
