"""declarun.plan: from a stack and the engine's state to a plan, a value that can be shown,
saved and applied.

* ``identity``  engine names, ownership labels, hashing and secret masking
* ``configs``   the canonical configuration of each resource (what its labels record)
* ``desired``   the stack as Docker Engine API create bodies (used by diff and by apply)
* ``inputs``    content digests of host files the stack depends on
* ``observed``  ``ObservedState``: the engine's state (and the host's inputs), immutable,
                fingerprinted; ``observe(client, stack)`` reads it
* ``diff``      ``diff(stack, observed)``: the pure plan function; ``plan_destroy``
* ``model``     ``Plan``, ``Change``, ``Reason``: the plan as a value, and its JSON form
* ``render``    the plan for people
* ``lock``      ``stack.lock``: image references pinned to digests
* ``graph``     the stack's dependency graph
"""
