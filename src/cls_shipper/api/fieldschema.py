"""JSON schemas of what field maps render, derived from the maps and the types of the objects
they render, so that a document of the wire (the legacy OpenAPI document) follows the code:
a row added to a map, or a model attribute whose type changes, changes the schema too."""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any, Union

from pydantic import TypeAdapter

from cls_shipper.api.fieldmap import Each, FieldMap, Nested, Via, Wrapped

JsonSchema = dict[str, Any]

_NULL: JsonSchema = {"type": "null"}


def object_schema(fmap: FieldMap[Any], rendered: type) -> JsonSchema:
    """The schema of `fmap.render(obj)` for an `obj` of type `rendered`: every row is a
    property, required unless the row may be omitted, and nothing else is rendered."""
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    for f in fmap.fields:
        hint = _attr_type(rendered, f.attr) if isinstance(f.attr, str) else _returns(f.attr)
        properties[f.wire] = value_schema(f.conv.renders, hint)
        if f.omit is None:
            required.append(f.wire)
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


def value_schema(renders: Nested | Each | Wrapped | Via | None, hint: Any) -> JsonSchema:
    """The schema of a value of type `hint` rendered as `renders` says (None: as it is)."""
    if renders is None:
        return plain_schema(hint)
    if isinstance(renders, Via):
        return plain_schema(_returns(renders.fn))
    inner, nullable = _strip_none(hint)
    schema: JsonSchema
    if isinstance(renders, Nested):
        schema = object_schema(renders.map, inner)
    elif isinstance(renders, Each):
        (item,) = typing.get_args(inner) or (Any,)
        schema = {"type": "array", "items": value_schema(renders.item.renders, item)}
    else:
        schema = {"type": "object",
                  "properties": {renders.name: value_schema(renders.inner.renders, inner)},
                  "required": [renders.name], "additionalProperties": False}
    # The combinators render null as null.
    return {"anyOf": [schema, _NULL]} if nullable else schema


def plain_schema(hint: Any) -> JsonSchema:
    """A value serialised as it is (orjson: enums as their values, dataclasses as objects)."""
    if hint is Any:
        return {}
    schema = TypeAdapter(hint).json_schema(mode="serialization")
    # Titles and docstrings of enums name internals (tables, columns), not the wire.
    schema.pop("title", None)
    schema.pop("description", None)
    if "$defs" in schema:
        # A leaf is a simple type; a model here would be rendered without a field map.
        raise TypeError(f"{hint!r} is not a plain value: render it through a field map")
    return schema


def _attr_type(rendered: type, path: str) -> Any:
    hint: Any = rendered
    for step in path.split("."):
        hint = _hints(_strip_none(hint)[0])[step]
    return hint


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _returns(fn: Any) -> Any:
    return typing.get_type_hints(fn)["return"]


def _strip_none(hint: Any) -> tuple[Any, bool]:
    """`X | None` as (X, True); anything else as (hint, False)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) < len(typing.get_args(hint)):
            return (args[0] if len(args) == 1 else Union[tuple(args)]), True  # noqa: UP007
    return hint, False
