"""declarun.compose: the second front end. It reads the Compose Specification (what
``docker compose`` reads, ``version: "2.x"``/``"3.x"`` files too) into the same frozen
:class:`~declarun.stack.model.Stack` the stack language produces, with the same located errors.

* ``project``       which files, which directory, which variables (``.env``), which name
* ``files``         one file: YAML 1.2 with positions, interpolation, schema, shapes, extends
* ``yaml12``        what plain YAML scalars mean in a Compose file
* ``dotenv``        Compose's env file syntax
* ``interpolate``   ``${VAR}`` and its forms
* ``schema``        the Compose Specification's JSON Schema (vendored), explained and located
* ``merge``         Compose's merge rules (several ``-f`` files, ``extends``)
* ``nodes``         a Compose file as a tree whose every value knows where it was written
* ``fields``        every Compose field and what declarun does with it (warnings, the spec)
* ``translation``   stack data made from Compose, and where each part came from
* ``translate``   a merged project as stack data; per service ``translate_service``, with
                    ``translate_image``, ``translate_env``, ``translate_mounts``,
                    ``translate_limits`` (health, restart, resources, replicas),
                    ``translate_values`` (Compose's conversions) and ``translate_context``
* ``pipeline``      ``load_compose``: the whole way to a checked stack
* ``jinja``, ``convert``: ``declarun convert``, a readable stack file from a Compose project
"""
