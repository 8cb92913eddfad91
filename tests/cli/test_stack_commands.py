"""The CLI as a person uses it: the installed ``declarun`` command in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted(ROOT.glob("examples/*/stack.yaml"))
WEB = ROOT / "examples" / "web" / "stack.yaml"
TEMPLATED = ROOT / "examples" / "templated" / "stack.yaml"


def declarun(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "declarun", *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


def test_every_example_validates() -> None:
    assert len(EXAMPLES) >= 3
    result = declarun("validate", *EXAMPLES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("valid stack") == len(EXAMPLES)


def test_invalid_stack_exits_1_with_located_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stack: demo\ncontainers:\n  web:\n    image: busybox\n    depend_on: [db]\n")
    result = declarun("validate", bad)
    assert result.returncode == 1
    assert (
        f"{bad}:5:5: containers.web.depend_on: unknown field 'depend_on'; "
        "did you mean 'depends_on'?" in result.stderr
    )
    assert "\x1b[" not in result.stderr  # NO_COLOR
    assert_no_traceback(result)


def test_validate_reports_all_files_and_fails_if_any_is_bad(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stack: [oops]\n")
    result = declarun("validate", WEB, bad, tmp_path / "missing.yaml")
    assert result.returncode == 1
    assert "valid stack 'webapp'" in result.stdout
    assert f"{bad}:1:8: stack: expected a stack name" in result.stderr
    assert f"{tmp_path / 'missing.yaml'}:1:1: no such file" in result.stderr


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01\x02\xff" * 100,
        b"stack: demo\ncontainers: !!python/object:os.system x\n",
        b"a: &a [*a]\n",
        b"- just\n- a list\n",
        b"   \n",
    ],
)
def test_hostile_input_gets_a_clean_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "stack.yaml"
    path.write_bytes(content)
    result = declarun("validate", path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}:")
    assert_no_traceback(result)


def test_fifty_megabyte_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.write(b"stack: demo\nvars:\n")
        line = b"  k%08d: 'some value that is long enough'\n"
        for i in range(50 * 1024 * 1024 // len(line % 0)):
            handle.write(line % i)
    result = declarun("validate", path)
    assert result.returncode == 1
    assert "larger than" in result.stderr
    assert_no_traceback(result)


def test_render_yaml_and_json_agree_and_apply_vars() -> None:
    as_yaml = declarun("render", WEB, "--var", "http_port=9090")
    as_json = declarun("render", WEB, "--var", "http_port=9090", "--format", "json")
    assert as_yaml.returncode == 0 and as_json.returncode == 0, as_yaml.stderr
    data = json.loads(as_json.stdout)
    assert yaml.safe_load(as_yaml.stdout) == data
    web = data["containers"]["web"]
    assert web["ports"][0]["published"] == 9090 and web["ports"][0]["target"] == 80
    assert data["images"]["busybox"]["ref"] == "127.0.0.1:5000/declarun/busybox:1.35"


def test_vars_precedence_and_profiles(tmp_path: Path) -> None:
    vars_file = ROOT / "examples" / "templated" / "prod.vars.yaml"
    plain = json.loads(declarun("render", TEMPLATED, "--format", "json").stdout)
    assert plain["containers"]["worker"]["replicas"] == 2
    assert "debug" not in plain["containers"]
    prod = json.loads(
        declarun("render", TEMPLATED, "--format", "json", "--vars-file", vars_file).stdout
    )
    assert prod["containers"]["worker"]["replicas"] == 4
    assert prod["containers"]["worker"]["env"]["LOG_LEVEL"] == "WARNING"
    cli = declarun(
        "render",
        TEMPLATED,
        "--format",
        "json",
        "--vars-file",
        vars_file,
        "--var",
        "replicas=7",
        "--profile",
        "debug",
    )
    data = json.loads(cli.stdout)
    assert data["containers"]["worker"]["replicas"] == 7
    assert "debug" in data["containers"]
    assert data["containers"]["worker"]["env"]["API_TOKEN"] == {"value": "***", "secret": True}


def test_bad_var_argument_is_a_usage_error() -> None:
    result = declarun("render", WEB, "--var", "no-equals-sign")
    assert result.returncode == 2
    assert "expected KEY=VALUE" in result.stderr
    assert_no_traceback(result)


@pytest.mark.parametrize("fmt", ["dot", "mermaid", "json"])
def test_graph_text_formats(fmt: str) -> None:
    result = declarun("graph", WEB, "--format", fmt)
    assert result.returncode == 0, result.stderr
    if fmt == "json":
        graph = json.loads(result.stdout)
        edges = {(e["from"], e["to"]) for e in graph["edges"]}
        assert ("container:web", "container:store") in edges
        assert ("container:store", "container:migrate") in edges
        assert ("container:web", "image:web") in edges
        assert ("image:web", "image:busybox") in edges  # the Dockerfile's FROM
        assert ("container:store", "volume:content") in edges
        assert ("container:web", "network:backend") in edges
    elif fmt == "dot":
        assert result.stdout.startswith('digraph "webapp" {')
        assert '"container:web" -> "container:store" [label="healthy"];' in result.stdout
    else:
        assert result.stdout.startswith("flowchart LR")
        assert "container_web -->|healthy| container_store" in result.stdout


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graph_svg(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    result = declarun("graph", WEB, "--format", "svg", "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_text().lstrip().startswith("<?xml") and "container: web" in out.read_text()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graph_takes_the_format_from_the_file_name_and_dash_is_stdout(tmp_path: Path) -> None:
    svg_out = declarun("graph", WEB, "--format", "svg")  # SVG is text: stdout is fine
    assert svg_out.returncode == 0 and "<svg" in svg_out.stdout
    assert declarun("graph", WEB, "-o", tmp_path / "g.png").returncode == 0
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG")
    assert declarun("graph", WEB, "-o", tmp_path / "g.mmd").returncode == 0
    assert (tmp_path / "g.mmd").read_text().startswith("flowchart LR")
    dash = subprocess.run(
        [sys.executable, "-m", "declarun", "graph", str(WEB), "-o", "-", "--format", "json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert dash.returncode == 0 and json.loads(dash.stdout)["edges"]
    assert not (tmp_path / "-").exists()
    unknown = declarun("graph", WEB, "-o", tmp_path / "g.txt")
    assert unknown.returncode == 2 and "cannot tell the format" in unknown.stderr


def test_render_writes_a_stack_file(tmp_path: Path) -> None:
    out = tmp_path / "rendered.yaml"
    assert declarun("render", WEB, "-o", out).returncode == 0
    checked = declarun("validate", out)
    assert checked.returncode == 0, checked.stderr
    assert "valid stack 'webapp'" in checked.stdout
    as_json = tmp_path / "rendered.json"
    assert declarun("render", WEB, "-o", as_json).returncode == 0
    assert json.loads(as_json.read_text())["stack"] == "webapp"


def test_a_lock_of_another_stack_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text("stack: web\ncontainers:\n  a: {image: busybox}\n")
    theirs = '{"images": {}, "lockVersion": 1, "stack": "jobs"}\n'
    (tmp_path / "web.lock").write_text(theirs)
    refused = declarun("lock", tmp_path / "web.yaml", "--host", f"unix://{tmp_path}/none.sock")
    assert refused.returncode == 1
    assert "web.lock is the lock of stack 'jobs', not 'web'" in refused.stderr
    assert (tmp_path / "web.lock").read_text() == theirs


@pytest.mark.parametrize("command", ["validate", "render", "graph", "daemon"])
def test_help_on_every_command(command: str) -> None:
    result = declarun(command, "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout


def test_version() -> None:
    result = declarun("--version")
    assert result.returncode == 0 and result.stdout.startswith("declarun, version ")


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from declarun.cli.output import use_colour

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_colour(_Stream(tty=True))
    assert not use_colour(_Stream(tty=False))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_colour(_Stream(tty=True))


def test_errors_are_coloured_on_a_terminal(tmp_path: Path) -> None:
    """Under a pseudo-terminal the problems are red; with NO_COLOR they are plain."""
    import pty

    bad = tmp_path / "bad.yaml"
    bad.write_text("stack: [oops]\n")
    for no_color, expect_colour in ((None, True), ("1", False)):
        env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
        if no_color:
            env["NO_COLOR"] = no_color
        leader, follower = pty.openpty()
        try:
            subprocess.run(
                [sys.executable, "-m", "declarun", "validate", str(bad)],
                stdout=follower,
                stderr=follower,
                env=env,
                timeout=60,
                check=False,
            )
            os.close(follower)
            output = b""
            while True:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
        finally:
            os.close(leader)
        assert (b"\x1b[" in output) is expect_colour, output


def test_the_stack_file_is_found_or_named_with_f(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "declarun", *args],
            capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip

    missing = run("validate")
    assert missing.returncode == 2
    assert "no stack file named and no stack.yaml, declarun.yaml, compose.yaml" in missing.stderr
    (tmp_path / "declarun.yaml").write_text("stack: second\n")
    assert "valid stack 'second'" in run("validate").stdout
    (tmp_path / "stack.yaml").write_text("stack: first\n")
    assert "valid stack 'first'" in run("validate").stdout  # stack.yaml comes first
    (tmp_path / "web.yaml").write_text("stack: web\n")
    assert "valid stack 'web'" in run("-f", "web.yaml", "validate").stdout
    assert (
        "web" in yaml.safe_load(run("-f", "web.yaml", "render", "--format", "json").stdout).values()
    )
    both = run("-f", "web.yaml", "render", "stack.yaml")
    assert both.returncode == 2 and "two stack files given" in both.stderr
