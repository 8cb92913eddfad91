"""The Swarm adapter's reading of the API's JSON (pure parts): which tasks run a service's
present spec, and services' replica counts and modes."""

from __future__ import annotations

from declarun.engine.swarm import _service, task_is_current

TEMPLATE = {
    "ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1"], "Isolation": "default"},
    "RestartPolicy": {"Condition": "any", "MaxAttempts": 0},
    "ForceUpdate": 0,
    "Runtime": "container",
}


def test_a_task_is_current_when_it_runs_the_template_swarm_keeps() -> None:
    spec = {"TaskTemplate": TEMPLATE}
    task = {"Spec": {k: v for k, v in TEMPLATE.items() if k != "Runtime"}}
    assert task_is_current(task, spec)
    older = {"Spec": {**task["Spec"], "ForceUpdate": 1}}
    assert not task_is_current(older, spec)
    other = {"Spec": {**task["Spec"], "ContainerSpec": {"Image": "busybox:2"}}}
    assert not task_is_current(other, spec)


def test_services_read_their_mode_replicas_and_endpoint() -> None:
    raw = {
        "ID": "s1",
        "Version": {"Index": 42},
        "Spec": {
            "Name": "shop-web",
            "Labels": {"dev.declarun.stack": "shop"},
            "Mode": {"Replicated": {"Replicas": 3}},
        },
        "Endpoint": {
            "Ports": [
                {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}
            ]
        },
        "UpdateStatus": {"State": "rollback_completed", "Message": "rollback completed"},
    }
    service = _service(raw)
    assert (service.name, service.version, service.replicas, service.is_job) == (
        "shop-web",
        42,
        3,
        False,
    )
    assert service.published == ("8080->80/tcp (host)",)
    assert service.update_state == "rollback_completed"
    job = _service({"ID": "j", "Spec": {"Mode": {"ReplicatedJob": {"TotalCompletions": 2}}}})
    assert job.is_job and job.replicas == 2
