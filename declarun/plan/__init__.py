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
* ``crashes``   a service that keeps dying, told from one that merely stopped
* ``waits``     waits for health that can never come (refused as ``error`` changes)
* ``model``     ``Plan``, ``Change``, ``Reason``: the plan as a value, and its JSON form
* ``render``    the plan for people (into a console the caller gives)
* ``staleness`` what moved since a saved plan was made, in resources' names
* ``oneoff``    a one-off copy of a container's create body (``declarun run``)
* ``lock``      the lock file (``web.lock``) as a value: references pinned to digests, staleness
* ``graph``     the stack's dependency graph, and its text forms
"""
