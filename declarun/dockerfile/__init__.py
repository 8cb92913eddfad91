"""The Dockerfile frontend: pure logic that turns a Dockerfile and a context into a build plan.

Shared by declarund's builder (which executes the plan) and the client's planner (which
needs a Dockerfile's base images and a context's file digests). It reads local files but
runs nothing, talks to no daemon and writes into no image; it imports only the standard
library, :mod:`declarun.errdefs`/:mod:`declarun.errors` and PyPI's ``dockerfile``.

A name clash to know about: PyPI's binding of BuildKit's parser is *also* a top-level module
called ``dockerfile``. Absolute imports make ``import dockerfile`` inside this package load
the PyPI module (``declarun.dockerfile`` is never imported as plain ``dockerfile``); only
:mod:`declarun.dockerfile.parse` imports it, as ``gofile``.

The modules, in the order a build uses them (see ``specs/build.md`` for the rules):

* :mod:`.parse` — :func:`parse_dockerfile` -> :class:`Dockerfile` (stages of typed
  :mod:`.instructions`); :mod:`.directives`, :mod:`.flags`, :mod:`.mounts`, :mod:`.heredoc`
  help it.
* :mod:`.lexer` — Docker's variable substitution; :mod:`.buildargs` — ``ARG``/``ENV`` scoping.
* :mod:`.graph` — :func:`plan_build`: the stages a target needs, their dependencies and
  concurrency levels, the external images.
* :mod:`.evaluate` — :func:`evaluate_stage`: each step after substitution, its run spec,
  its config change and history entry.
* :mod:`.ignore`, :mod:`.context` — ``.dockerignore`` and hashing a context directory.
* :mod:`.copyplan` — what a ``COPY``/``ADD`` puts where; :mod:`.sourcedigest` its digests.
* :mod:`.imageconfig`, :mod:`.cachekey`, :mod:`.epoch` — configs, cache keys, timestamps.
"""
