"""declarun.engine: the engine port and how to reach an engine.

* ``port``      ``Engine``: what the observer and the reconciler ask of an engine, as small
                role-named protocols (containers, images, networks, volumes, events, ...)
* ``types``     the typed values an engine answers with
* ``dockerpy``  ``DockerEngine``: the adapter for any Docker-Engine-API engine through
                docker-py; the one place its exceptions become error kinds (``errdefs``)
* ``context_tar`` a build context as the docker CLI sends it (``.dockerignore`` applied)
* ``connect``   which engine to use (declarund, started when needed, or Docker) and connecting
"""
