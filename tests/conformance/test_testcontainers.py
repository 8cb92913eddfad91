"""testcontainers-python (PyPI ``testcontainers``) as a client of declarund.

The flow its users write: a container of a local image, a file copied in before the start
(the library does it between create and start), a wait for a log line, and a request to the
port the daemon mapped. The Ryuk reaper is off (its image is not on this machine); the test
removes its container itself.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.engine_fixtures import Engine


@pytest.fixture
def testcontainers_on(declarund_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """testcontainers pointed at declarund (``DOCKER_HOST``), without the reaper."""
    from testcontainers.core.config import testcontainers_config

    monkeypatch.setenv("DOCKER_HOST", declarund_engine.host)
    monkeypatch.delenv("TC_HOST", raising=False)
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)
    declarund_engine.client.images.pull(declarund_engine.image)
    yield


@pytest.mark.usefixtures("testcontainers_on")
def test_a_container_with_a_file_copied_in_before_start(declarund_engine: Engine) -> None:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    page = b"<h1>copied before start</h1>\n"
    script = "echo serving $(cat /www/index.html | wc -c) bytes; exec httpd -f -p 8080 -h /www"
    container = (
        DockerContainer(declarund_engine.image)
        .with_command(["sh", "-c", script])
        .with_exposed_ports(8080)
        .with_copy_into_container(page, "/www/index.html")
        .waiting_for(LogMessageWaitStrategy(f"serving {len(page)} bytes").with_startup_timeout(60))
    )
    with container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(8080)
        with urllib.request.urlopen(f"http://{host}:{port}/index.html", timeout=10) as answer:
            assert answer.read() == page
        result = container.exec(["cat", "/www/index.html"])
        assert (result.exit_code, result.output) == (0, page)
        container_id = container.get_container_id()
    assert declarund_engine.client.containers.list(all=True, filters={"id": container_id}) == []
