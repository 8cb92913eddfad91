"""Parsing: every instruction into its typed value, heredocs, directives and located errors."""

from __future__ import annotations

import pytest

from declarun.dockerfile.errors import DockerfileError
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
from declarun.dockerfile.mounts import BindMount, CacheMount, SecretMount, TmpfsMount
from declarun.dockerfile.parse import parse_dockerfile, parse_trigger


def one(body: str) -> object:
    """The single instruction of a one-stage Dockerfile."""
    (stage,) = parse_dockerfile("FROM scratch\n" + body + "\n").stages
    (instruction,) = stage.instructions
    return instruction


def test_from_forms_and_stages() -> None:
    parsed = parse_dockerfile(
        "ARG BASE=busybox\nARG V\nFROM ${BASE} AS Build\nRUN true\n"
        "from --platform=$BUILDPLATFORM alpine as other\nFROM build\n"
    )
    assert [a.args for a in parsed.meta_args] == [
        (ArgDefinition("BASE", "busybox"),),
        (ArgDefinition("V"),),
    ]
    first, second, third = parsed.stages
    assert (first.index, first.name, first.from_.base) == (0, "build", "${BASE}")
    assert second.from_.platform == "$BUILDPLATFORM" and second.name == "other"
    assert third.name is None and third.display_name == "stage-2"
    assert first.from_.location.start_line == 3


def test_run_forms_mounts_and_network() -> None:
    run = one(
        "RUN --mount=type=cache,target=/root/.cache,sharing=locked "
        "--mount=type=secret,id=tok --mount=type=bind,from=build,source=/out,target=/in "
        "--mount=type=tmpfs,target=/t,size=1m --network=none echo hi && \\\n  echo there"
    )
    assert isinstance(run, Run)
    assert run.shell_form and run.command == ("echo hi &&   echo there",)
    assert run.network == "none"
    assert run.mounts == (
        CacheMount(target="/root/.cache", id="/root/.cache", sharing="locked"),
        SecretMount(id="tok", target="/run/secrets/tok"),
        BindMount(target="/in", source="/out", from_="build"),
        TmpfsMount(target="/t", size=1024 * 1024),
    )
    assert run.location.start_line == 2 and run.location.end_line == 3
    exec_form = one('RUN ["echo", "a b"]')
    assert isinstance(exec_form, Run)
    assert exec_form.command == ("echo", "a b") and not exec_form.shell_form


def test_mount_with_variable_is_left_for_evaluation() -> None:
    run = one("RUN --mount=type=cache,target=$DIR true")
    assert isinstance(run, Run)
    assert run.mount_specs == ("type=cache,target=$DIR",) and run.mounts == ()


def test_heredocs_expand_chomp_and_several() -> None:
    run = one("RUN <<EOF\necho $HOME\nEOF")
    assert isinstance(run, Run)
    (doc,) = run.heredocs
    assert (doc.name, doc.content, doc.expand, doc.chomp) == ("EOF", "echo $HOME\n", True, False)
    quoted = one("RUN <<'A' cat - /dev/fd/3 3<<\"B\"\na $x\nA\nb\nB")
    assert isinstance(quoted, Run)
    assert [(d.name, d.expand, d.fd) for d in quoted.heredocs] == [("A", False, 0), ("B", False, 3)]
    copy = one("COPY <<-EOT /etc/motd\n\thello $USER\n\tEOT")
    assert isinstance(copy, Copy)
    (body,) = copy.heredocs
    assert body.chomp and body.expand and body.data == "hello $USER\n"
    assert copy.sources == () and copy.dest == "/etc/motd"


def test_copy_and_add_flags() -> None:
    copy = one("COPY --from=build --chown=1:2 --chmod=0755 --link a b /dst/")
    assert isinstance(copy, Copy)
    assert (copy.from_, copy.chown, copy.chmod, copy.link) == ("build", "1:2", "0755", True)
    assert copy.sources == ("a", "b") and copy.dest == "/dst/"
    add = one('ADD ["http://example.com/x.tgz", "/opt/"]')
    assert isinstance(add, Add) and add.json_form and add.sources == ("http://example.com/x.tgz",)


def test_metadata_instructions() -> None:
    assert one('ENV A=b C="d e"') == Env(
        one('ENV A=b C="d e"').location,  # type: ignore[attr-defined]
        'ENV A=b C="d e"',
        pairs=(KeyValue("A", "b"), KeyValue("C", '"d e"')),
    )
    legacy = one("ENV X y z")
    assert isinstance(legacy, Env) and legacy.pairs == (KeyValue("X", "y z"),)
    label = one('LABEL a=b "c d"=e')
    assert isinstance(label, Label) and label.pairs[1] == KeyValue('"c d"', "e")
    arg = one("ARG a=1 b")
    assert isinstance(arg, Arg) and arg.args == (ArgDefinition("a", "1"), ArgDefinition("b"))
    expose = one("EXPOSE 80/tcp 443 53/udp")
    assert isinstance(expose, Expose) and expose.ports == ("443", "53/udp", "80/tcp")
    assert isinstance(one("WORKDIR a b"), Workdir)
    assert isinstance(one("USER nobody:nogroup"), User)
    volume = one('VOLUME ["/a", "/b"]')
    assert isinstance(volume, Volume) and volume.paths == ("/a", "/b")
    assert isinstance(one("STOPSIGNAL SIGTERM"), StopSignal)
    shell = one('SHELL ["/bin/bash", "-c"]')
    assert isinstance(shell, Shell) and shell.shell == ("/bin/bash", "-c")
    assert isinstance(one("MAINTAINER me <me@example.com>"), Maintainer)
    cmd = one("CMD")
    assert isinstance(cmd, Cmd) and cmd.command == () and cmd.shell_form
    entry = one("ENTRYPOINT []")
    assert isinstance(entry, Entrypoint) and entry.command is None and not entry.shell_form


def test_healthcheck_options_and_none() -> None:
    check = one("HEALTHCHECK --interval=1m30s --timeout=100ms --retries=3 CMD curl -f x")
    assert isinstance(check, Healthcheck)
    assert check.test == ("CMD-SHELL", "curl -f x")
    assert (check.interval, check.timeout, check.retries) == (90 * 10**9, 10**8, 3)
    exec_check = one('HEALTHCHECK CMD ["x", "y"]')
    assert isinstance(exec_check, Healthcheck) and exec_check.test == ("CMD", "x", "y")
    none = one("HEALTHCHECK NONE")
    assert isinstance(none, Healthcheck) and none.test == ("NONE",)


def test_onbuild_keeps_the_trigger_text() -> None:
    onbuild = one("ONBUILD RUN echo x")
    assert isinstance(onbuild, Onbuild)
    assert onbuild.expression == "RUN echo x" and onbuild.trigger_keyword == "RUN"
    trigger = parse_trigger("COPY a.txt /onb", file="Dockerfile", line=4)
    assert isinstance(trigger, Copy) and trigger.location.start_line == 4


def test_directives() -> None:
    parsed = parse_dockerfile("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN a `\n  b\n")
    assert parsed.directives.syntax == "docker/dockerfile:1"
    assert parsed.escape == "`"
    run = parsed.stages[0].instructions[0]
    assert isinstance(run, Run) and run.command == ("a   b",)
    assert parse_dockerfile("# comment\n# escape=`\nFROM x\n").escape == "\\"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM x\nRUNN echo\n", "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)"),
        ("FROM x\nENV\n", "Dockerfile:2: ENV requires at least one argument"),
        ("FROM x\n\nENV a\n", "Dockerfile:3: ENV must have two arguments"),
        ("FROM x\nRUN echo \\\n  foo\nFROMM x\n", "Dockerfile:4: unknown instruction: FROMM"),
        ("FROM x\nCOPY <<EOF /a\nhello\n", "Dockerfile:2: COPY: unterminated heredoc"),
        ("FROM x AS 1a\n", 'Dockerfile:1: FROM: invalid name for build stage: "1a"'),
        ("FROM x AS a\nFROM y AS A\n", 'Dockerfile:2: FROM: duplicate stage name "a"'),
        ("ENV a=b\nFROM x\n", "Dockerfile:1: ENV: no build stage in current context"),
        ("FROM x\nCOPY --bogus=1 a b\n", "Dockerfile:2: COPY: unknown flag: --bogus"),
        ("FROM x\nSHELL sh -c\n", "SHELL requires the arguments to be in JSON form"),
        ("FROM x\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD via `ONBUILD ONBUILD`"),
        ("FROM x\nONBUILD FROM y\n", "FROM isn't allowed as an ONBUILD trigger"),
        ("FROM x\nWORKDIR\n", "WORKDIR requires exactly one argument"),
        ("FROM x\nCOPY a\n", "COPY requires at least two arguments"),
        ("FROM x\nCOPY a <<EOF\nx\nEOF\n", "COPY cannot accept a heredoc as a destination"),
        ("FROM x\nHEALTHCHECK --interval=1x CMD true\n", 'unknown unit "x" in duration "1x"'),
        ("FROM x\nHEALTHCHECK CMD\n", "Missing command after HEALTHCHECK CMD"),
        ("FROM x\nRUN --network=bridge true\n", 'invalid network mode "bridge"'),
        ("FROM x\nRUN --mount=type=secret true\n", "one of source, target required"),
        ("FROM x\nRUN --mount=type=bind,target=/x,mode=0600 true\n", "mode not allowed"),
        ("", "Dockerfile: the Dockerfile has no instructions"),
        ("# only a comment\n", "no instructions"),
        ("ARG x\n", "no FROM instruction"),
        ("# escape=x\nFROM x\n", "invalid escape token 'x'"),
        ("# escape=`\n# escape=\\\nFROM x\n", "only one escape parser directive"),
    ],
)
def test_errors_name_file_line_and_instruction(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as caught:
        parse_dockerfile(text)
    assert message in str(caught.value)


def test_error_carries_location_fields() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse_dockerfile("FROM x\nRUN ok\nruNN x\n", file="app/Dockerfile.prod")
    error = caught.value
    assert (error.file, error.line, error.instruction) == ("app/Dockerfile.prod", 3, "ruNN")
    assert str(error).startswith("app/Dockerfile.prod:3: unknown instruction: ruNN")


def test_bytes_with_bom_and_crlf() -> None:
    parsed = parse_dockerfile(b"\xef\xbb\xbfFROM x\r\nRUN a\r\n")
    run = parsed.stages[0].instructions[0]
    assert isinstance(run, Run) and run.command == ("a",)
    with pytest.raises(DockerfileError, match="not UTF-8"):
        parse_dockerfile(b"FROM \xff\n")
