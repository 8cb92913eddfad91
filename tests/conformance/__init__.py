"""Docker API conformance: the same client calls against declarund and a real dockerd 20.10,
compared (status, JSON shape, observable effect), and the clients people use -- the docker
CLI, docker-compose v1, testcontainers -- driving declarund (issue 12)."""
