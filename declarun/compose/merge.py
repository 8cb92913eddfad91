"""Compose's merge rules, for several ``-f`` files and for ``extends``.

Before merging, each service's fields that Compose lets people write as a list or a mapping
are brought to one shape (:func:`canonical_service`): ``environment``, ``labels``,
``build.args`` and ``extra_hosts`` become mappings, ``networks`` and ``depends_on`` mappings
of names, ``build`` a mapping, and ``dns``, ``env_file`` and ``tmpfs`` lists. Then, as the
Compose Specification says (and as docker compose does):

* mappings merge key by key, the later file's value winning;
* ``command``, ``entrypoint`` and ``healthcheck.test`` are replaced, not merged;
* ``ports`` are unique by published address, target and protocol; ``volumes``, ``secrets``
  and ``configs`` by their target: a later entry with the same key takes the earlier's place;
* ``cap_add``, ``cap_drop``, ``profiles``, ``expose`` and ``networks.*.aliases`` keep each
  value once; other lists are appended to;
* anything else (scalars, or a value of another shape) is replaced.

Every node keeps the location it was written at, so a merged value still points into the file
that set it.
"""

from __future__ import annotations

from collections.abc import Callable

from declarun.compose.nodes import Node

__all__ = ["canonical_service", "merge_projects", "merge_services", "mount_target", "port_key"]

_REPLACED = frozenset({"command", "entrypoint"})
_UNIQUE = frozenset({"cap_add", "cap_drop", "profiles", "expose", "external_links", "links"})
_BY_KEY_LISTS = frozenset({"volumes", "secrets", "configs", "ports"})
_KEY_VALUE_MAPS = ("environment", "labels", "annotations", "sysctls")
_STRING_OR_LIST = ("dns", "dns_search", "dns_opt", "env_file", "tmpfs")


def _text(node: Node) -> str:
    value = node.value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _sub_raw(node: Node, separator: str) -> str | None:
    """The raw text of the value part of a ``KEY=VALUE`` item, when it was interpolated."""
    if node.raw is None:
        return None
    _key, _sep, rest = node.raw.partition(separator)
    return rest


def _key_value_mapping(node: Node, separator: str = "=") -> Node:
    """A ``list_or_dict`` as a mapping: ``["A=1", "B"]`` becomes ``{A: "1", B: null}``."""
    if not node.is_list:
        return node
    entries: dict[str, Node] = {}
    for item in node.elements():
        text = _text(item)
        key, sep, value = text.partition(separator)
        entries[key] = Node(
            value if sep else None,
            item.where,
            item.where,
            raw=_sub_raw(item, separator) if sep else None,
            variables=item.variables,
        )
    return Node(entries, node.where, node.key_where)


def _extra_hosts_mapping(node: Node) -> Node:
    """``["db:10.0.0.5", "v6=::1"]`` or ``{db: 10.0.0.5}`` as ``{db: ["10.0.0.5"], ...}``."""
    entries: dict[str, Node] = {}
    if node.is_list:
        for item in node.elements():
            text = _text(item)
            separator = "=" if "=" in text else ":"
            host, _sep, address = text.partition(separator)
            found = entries.setdefault(host, Node([], item.where, item.where))
            found.value.append(Node(address, item.where))
    else:
        for host, value in node.items():
            addresses = value.elements() if value.is_list else [value]
            entries[host] = Node(list(addresses), value.where, value.key_where)
    return Node(entries, node.where, node.key_where)


def _names_mapping(node: Node) -> Node:
    """``networks: [a, b]`` or ``depends_on: [a]`` as ``{a: null, b: null}``."""
    if not node.is_list:
        return node
    return Node(
        {_text(item): Node(None, item.where, item.where) for item in node.elements()},
        node.where,
        node.key_where,
    )


def _as_list(node: Node) -> Node:
    if node.is_list or node.is_map:
        return node
    return Node(
        [Node(node.value, node.where, raw=node.raw, variables=node.variables)],
        node.where,
        node.key_where,
    )


def canonical_service(service: Node) -> Node:
    """The service with one shape per field (see the module's docstring), in place."""
    if not service.is_map:
        return service
    fields: dict[str, Node] = service.value
    for key in _KEY_VALUE_MAPS:
        if key in fields:
            fields[key] = _key_value_mapping(fields[key])
    if "extra_hosts" in fields:
        fields["extra_hosts"] = _extra_hosts_mapping(fields["extra_hosts"])
    for key in ("networks", "depends_on"):
        if key in fields:
            fields[key] = _names_mapping(fields[key])
    for key in _STRING_OR_LIST:
        if key in fields:
            fields[key] = _as_list(fields[key])
    build = fields.get("build")
    if build is not None and not build.is_map:
        fields["build"] = Node(
            {"context": Node(build.value, build.where, build.where, raw=build.raw)},
            build.where,
            build.key_where,
        )
        build = fields["build"]
    if build is not None:
        for key in ("args", "labels"):
            found = build.get(key)
            if found is not None:
                build.value[key] = _key_value_mapping(found)
    return service


def mount_target(item: Node) -> str | None:
    """The container path of a ``volumes``/``secrets``/``configs`` entry, or None."""
    if item.is_map:
        target = item.get("target")
        if target is not None:
            return _text(target)
        source = item.get("source")
        return None if source is None else _text(source)
    parts = _text(item).split(":")
    if len(parts) == 1:
        return parts[0]
    return parts[1]


def port_key(item: Node) -> str:
    """What makes a ``ports`` entry unique: address, published port, target and protocol."""
    if item.is_map:
        fields = {key: _text(value) for key, value in item.items()}
        return "|".join(
            (
                fields.get("host_ip", ""),
                fields.get("published", ""),
                fields.get("target", ""),
                fields.get("protocol", "tcp") or "tcp",
            )
        )
    text = _text(item)
    spec, _sep, protocol = text.partition("/")
    parts = spec.rsplit(":", 2)
    while len(parts) < 3:
        parts.insert(0, "")
    return "|".join((parts[0], parts[1], parts[2], protocol or "tcp"))


def _list_key(field: str, item: Node) -> str | None:
    return port_key(item) if field == "ports" else mount_target(item)


def _merge_keyed_lists(field: str, base: Node, over: Node) -> Node:
    """Entries with the same key: the later one takes the earlier's place; others append."""
    merged = [item.copy() for item in base.elements()]
    keys = [_list_key(field, item) for item in merged]
    for item in over.elements():
        key = _list_key(field, item)
        if key is not None and key in keys:
            merged[keys.index(key)] = item.copy()
        else:
            merged.append(item.copy())
            keys.append(key)
    return Node(merged, over.where, over.key_where or base.key_where)


def _merge_unique(base: Node, over: Node) -> Node:
    merged = [item.copy() for item in base.elements()]
    seen = {_text(item) for item in merged}
    for item in over.elements():
        if _text(item) not in seen:
            seen.add(_text(item))
            merged.append(item.copy())
    return Node(merged, over.where, over.key_where or base.key_where)


def _merge_mapping(base: Node, over: Node, merge_child: Callable[[str, Node, Node], Node]) -> Node:
    merged = {key: value.copy() for key, value in base.items()}
    for key, value in over.items():
        merged[key] = merge_child(key, merged[key], value) if key in merged else value.copy()
    return Node(merged, over.where, over.key_where or base.key_where)


def _merge_generic(base: Node, over: Node) -> Node:
    if base.is_map and over.is_map:
        return _merge_mapping(base, over, lambda _key, b, o: _merge_generic(b, o))
    if base.is_list and over.is_list:
        return Node(
            [*(i.copy() for i in base.elements()), *(i.copy() for i in over.elements())],
            over.where,
            over.key_where or base.key_where,
        )
    return over.copy()


def _merge_network_entry(_name: str, base: Node, over: Node) -> Node:
    if not (base.is_map and over.is_map):
        return over.copy() if over.value is not None else base.copy()

    def child(key: str, b: Node, o: Node) -> Node:
        if key == "aliases" and b.is_list and o.is_list:
            return _merge_unique(b, o)
        return _merge_generic(b, o)

    return _merge_mapping(base, over, child)


def _merge_service_field(key: str, base: Node, over: Node) -> Node:
    if key in _REPLACED:
        return over.copy()
    if key == "healthcheck" and base.is_map and over.is_map:
        return _merge_mapping(
            base,
            over,
            lambda sub, b, o: o.copy() if sub == "test" else _merge_generic(b, o),
        )
    if key in _BY_KEY_LISTS and base.is_list and over.is_list:
        return _merge_keyed_lists(key, base, over)
    if key in _UNIQUE and base.is_list and over.is_list:
        return _merge_unique(base, over)
    if key == "networks" and base.is_map and over.is_map:
        return _merge_mapping(base, over, _merge_network_entry)
    if key == "extends":
        return over.copy()
    return _merge_generic(base, over)


def merge_services(base: Node, over: Node) -> Node:
    """``over`` (a later file's service, or the service that extends) merged onto ``base``."""
    if not (base.is_map and over.is_map):
        return over.copy()
    return _merge_mapping(base, over, _merge_service_field)


def merge_projects(base: Node, over: Node) -> Node:
    """A later Compose file merged onto the earlier ones (both already canonical)."""
    if not (base.is_map and over.is_map):
        return over.copy()

    def section(key: str, b: Node, o: Node) -> Node:
        if key == "services" and b.is_map and o.is_map:
            return _merge_mapping(b, o, lambda _name, bs, os_: merge_services(bs, os_))
        if key.startswith("x-") or not (b.is_map and o.is_map):
            return o.copy()
        return _merge_generic(b, o)

    return _merge_mapping(base, over, section)
