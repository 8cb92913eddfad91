"""declarund's image builder: ``POST /build`` executed on the daemon's own parts.

The Dockerfile frontend (:mod:`declarun.dockerfile`) parses, plans and evaluates; this
package executes (``specs/build.md``, "The executor"). Its modules, in the order a build
uses them:

* :mod:`.service` -- :class:`~.service.BuilderService`, built by the composition root: a
  build from its context to its tagged image; :mod:`.options` the request as a value,
  :mod:`.output` dockerd's progress messages, :mod:`.errors` the builder's error kinds;
* :mod:`.context` -- the context tar received (bounded, checked and indexed in one pass
  by :mod:`.tarindex`) and unpacked safely, or patched into a context kept by
  :mod:`.contextcache`; :mod:`.workspace` -- the builder's directories under the data root;
* :mod:`.executor` -- stages by levels (concurrently within a level), :mod:`.steps` --
  each step: the cache, then metadata, ``RUN``, ``COPY``/``ADD``, ``WORKDIR``;
* :mod:`.bases` -- base and ``--from`` images, pulled when needed;
* :mod:`.runstep`, :mod:`.runmounts`, :mod:`.cachemounts` -- ``RUN`` as a container of the
  container service, its ``--mount``s, the persistent cache directories;
* :mod:`.copystep`, :mod:`.uppercopy`, :mod:`.roots` -- ``COPY``/``ADD`` and ``WORKDIR``
  written into a root of the previous image without a container (straight into its upper
  directory when it can, context files hard-linked), which then becomes the snapshot;
* :mod:`.stepimage` -- each step's image and cache entry; :mod:`.prune` -- the build cache
  as records for ``/system/df`` and ``/build/prune``;
* :mod:`.environment`, :mod:`.threads` -- what a build runs with, blocking work that is
  never abandoned half-way.

The service raises error kinds (:mod:`declarun.errdefs`); only :mod:`declarun.daemon.api.build`
speaks HTTP.
"""
