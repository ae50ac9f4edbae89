"""Structural fingerprints of XSD elements, to prove our schemas accept what the reference ones accept.

Two schemas that give an element the same shape accept exactly the same instances of it, whatever
their type names, annotations or use of named groups: the shape keeps element QNames, order,
occurrence bounds, wildcards, attributes with their use, and each simple type reduced to its
built-in base plus enumeration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import xmlschema
from xmlschema.validators import XsdAnyElement, XsdGroup

XSD_NS = "http://www.w3.org/2001/XMLSchema"

Shape = tuple[Any, ...]


def _builtin(xsd_type: Any) -> str | None:
    while xsd_type is not None and not (xsd_type.name or "").startswith(f"{{{XSD_NS}}}"):
        xsd_type = xsd_type.base_type
    return None if xsd_type is None else str(xsd_type.local_name)


def _simple(xsd_type: Any) -> Shape:
    enumeration = getattr(xsd_type, "enumeration", None)
    return ("simple", _builtin(xsd_type), tuple(enumeration) if enumeration else None)


def _attributes(xsd_type: Any) -> Shape:
    named = sorted((name, attr) for name, attr in xsd_type.attributes.items() if name is not None)
    return tuple((name, attr.use, _simple(attr.type)) for name, attr in named)


def _type(xsd_type: Any, stop: frozenset[str], depth: int) -> Shape:
    if depth > 40:
        raise RecursionError("schema nesting deeper than 40: recursive type?")
    if xsd_type.is_simple():
        return _simple(xsd_type)
    if xsd_type.has_simple_content():
        return ("simple-content", _builtin(xsd_type.content), _attributes(xsd_type))
    return ("complex", _particle(xsd_type.content, stop, depth), _attributes(xsd_type))


def _particle(particle: Any, stop: frozenset[str], depth: int) -> Shape:
    if isinstance(particle, XsdGroup):
        children: list[Shape] = []
        for child in particle:
            shape = _particle(child, stop, depth + 1)
            # A sequence inside a sequence, occurring exactly once, is the same as its content inline.
            if shape[0] == "sequence" and particle.model == "sequence" and shape[1:3] == (1, 1):
                children.extend(shape[3])
            else:
                children.append(shape)
        return (particle.model, particle.min_occurs, particle.max_occurs, tuple(children))
    if isinstance(particle, XsdAnyElement):
        return (
            "any",
            particle.min_occurs,
            particle.max_occurs,
            tuple(particle.namespace),
            particle.process_contents,
        )
    namespace = particle.name[1:].split("}")[0] if particle.name.startswith("{") else ""
    if namespace in stop:
        return ("element", particle.name, particle.min_occurs, particle.max_occurs, "not followed")
    return (
        "element",
        particle.name,
        particle.min_occurs,
        particle.max_occurs,
        _type(particle.type, stop, depth + 1),
    )


def element_shape(schema: xmlschema.XMLSchemaBase, qname: str, stop: tuple[str, ...] = ()) -> Shape:
    """Shape of global element ``qname``; elements in ``stop`` namespaces are compared by name only."""
    return _type(schema.maps.elements[qname].type, frozenset(stop), 0)


def rewrite(shape: Any, change: Callable[[Any], Any]) -> Any:
    """Apply ``change`` to every node of a shape, bottom-up, e.g. to waive a deliberate difference."""
    if isinstance(shape, tuple):
        shape = tuple(rewrite(item, change) for item in shape)
    return change(shape)
