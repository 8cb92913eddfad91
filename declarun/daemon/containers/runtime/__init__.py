"""Running a container: the OCI runtime (runc), its bundle, and conmon, the monitor that holds
each container's stdio and outlives the daemon.

``oci``             a typed wrapper over the runtime's command line (``runc``, ``crun``)
``bundle``          ``config.json`` built the way dockerd builds it (with ``seccomp``,
                    ``hostfacts`` -- what the daemon may hand on -- and ``users``, the
                    container's ``User`` resolved inside its root)
``monitor``         creating, starting and stopping containers under conmon
``syncpipe``        starting conmon and talking to it over its pipes
``exitwatch``       conmon's exit files, and one inotify watch over all of them
``attach_socket``   conmon's attach socket (a container's stdio) and control fifo
``exec_session``    one extra process in a running container, under its own conmon
``logfile``         reading the log files conmon writes, with ``follow``

Nothing here knows the container service or its records: it works on ids, paths and the
values of :mod:`declarun.daemon.containers.config`.
"""

from __future__ import annotations

__all__: list[str] = []
