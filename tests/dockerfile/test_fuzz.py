"""Bad input gets a located error, never a traceback: fuzzing the whole frontend."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from declarun.dockerfile.errors import FrontendError
from declarun.dockerfile.evaluate import evaluate_stage
from declarun.dockerfile.graph import plan_build
from declarun.dockerfile.parse import parse_dockerfile
from declarun.dockerfile.platform import Platform
from declarun.errdefs import InvalidArgument

AMD64 = Platform("linux", "amd64")
KEYWORDS = [
    "FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "CMD", "ENTRYPOINT",
    "EXPOSE", "LABEL", "VOLUME", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD", "SHELL",
    "MAINTAINER", "RUNN", "from",
]  # fmt: skip
WORDS = [
    "x", "a=b", "$A", "${A:-b}", "${", "'", '"', "\\", "[", '["a"]', "--from=0",
    "--mount=type=cache,target=/c", "--mount=type=$T", "--chown=1", "--chmod=x", "AS",
    "stage", "<<EOF", "NONE", "CMD", "--interval=1x", "80/tcp", "SIGTERM", "/", "*",
    "--platform=$BUILDPLATFORM", "--network=none", "ONBUILD", "=",
]  # fmt: skip

_line = st.builds(
    lambda k, ws: " ".join([k, *ws]),
    st.sampled_from(KEYWORDS),
    st.lists(st.sampled_from(WORDS), max_size=4),
)
_text = st.lists(st.one_of(_line, st.sampled_from(["", "# c", "EOF", "\\"])), max_size=8).map(
    lambda lines: "FROM busybox\n" + "\n".join(lines) + "\n"
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_text, st.dictionaries(st.sampled_from(["A", "T", "X"]), st.sampled_from(["", "1", "$"])))
def test_only_invalid_argument_errors(text: str, build_args: dict[str, str]) -> None:
    try:
        dockerfile = parse_dockerfile(text)
        plan = plan_build(dockerfile, build_args=build_args, build_platform=AMD64)
        for index in plan.order:
            evaluate_stage(plan, index, {"Env": ["PATH=/bin"], "OnBuild": ["RUN true"]})
    except FrontendError as exc:
        assert isinstance(exc, InvalidArgument) and str(exc)
