"""declarun.observe: reading the world for the planner, into immutable values.

* ``state``        ``observe_stack(engine, stack)``: the engine's state through the engine
                   port and the host's inputs, as an ``ObservedState`` (``plan.observed``),
                   with the desired state worked out against it
* ``digests``      content digests of the host files a stack reads at run time
* ``dockerfiles``  the base images of the stack's builds, from their Dockerfiles
* ``builds``       what each built image would be built from now, and was built from
* ``buildcache``   what is kept about builds in the user's cache directory
* ``reading``      what every observation does alike: the objects it keeps, its errors

Everything that reads the engine or the host's files for planning is here, so ``plan/``
stays pure.
"""
