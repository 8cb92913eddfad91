"""declarun.plan: from a stack and the observed state to a plan, a value that can be shown,
saved and applied. Pure: nothing here reads the engine, the network or the host's files
(``declarun.observe`` does, and hands the result over as values).

* ``identity``  engine names, ownership labels, hashing and secret masking
* ``configs``   the canonical configuration of each resource (what its labels record)
* ``desired``   the stack as Docker Engine API create bodies (used by diff and by apply)
* ``inputs``    which host files the stack depends on, and how their digests are keyed
* ``buildinputs`` what a build is made from (``BuildInputs``), and the context files changed
* ``builds``    why an image must be built again; the plan of ``declarun build``
* ``observed``  ``ObservedState``: the engine's state (and the host's inputs), immutable,
                fingerprinted
* ``diff``      ``diff(stack, observed)``: the pure plan function; ``plan_destroy``
* ``model``     ``Plan``, ``Change``, ``Reason``: the plan as a value, and its JSON form
* ``render``    the plan for people (into a console the caller gives)
* ``lock``      ``stack.lock`` as a value: image references pinned to digests, staleness
* ``graph``     the stack's dependency graph, and its text forms
"""
