"""Reading a legacy request: JSON bodies checked against a declarative model (snake_case,
unknown fields refused, JSON types strict: a bool is not an int, "300" is not an int) and
query strings, which are text by nature and read as such."""

from __future__ import annotations

import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request

from cls_shipper.api.http import context, parse_json, read_body
from cls_shipper.errors import Kinds, ServiceError, invalid, missing
from cls_shipper.inputs import ascii_int, check_json, check_text


class Body(BaseModel, title="body"):
    """A legacy JSON object; its `title` names it in errors ("unknown field(s) in the body")."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def optional() -> Any:
    """The default of a field that may be left out but, when given, must not be null: the
    value of an absent field is never read (only the fields a client set are)."""
    return Field(default=None)


def given(body: BaseModel) -> dict[str, Any]:
    """The fields the client set, by name."""
    return {name: getattr(body, name) for name in body.model_fields_set}


B = TypeVar("B", bound=Body)

# pydantic's strict type errors, by the JSON type the field wanted (named as Python names it).
_TYPE_ERRORS = {"int_type": "int", "string_type": "str", "bool_type": "bool",
                "list_type": "list", "dict_type": "dict", "float_type": "float"}


def parse(model: type[B], data: Any) -> B:
    """`data` as `model`, or the ServiceError the legacy API answers."""
    if not isinstance(data, dict):
        raise invalid(f"the {_title(model)} must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _refusal(model, exc.errors()) from None


def _refusal(model: type[Body], errors: list[ErrorDetails]) -> ServiceError:
    # Unknown fields first and all at once, so a misspelt option is named with its siblings.
    unknown = [e["loc"] for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        parent = unknown[0][:-1]
        names = sorted(str(loc[-1]) for loc in unknown if loc[:-1] == parent)
        return invalid(f"unknown field(s) in the {_title(_model_at(model, parent))}: "
                       f"{', '.join(names)}")
    first = errors[0]
    loc = first["loc"]
    name = next((str(p) for p in reversed(loc) if isinstance(p, str)), "body")
    if first["type"] == "missing":
        return missing(name)
    if first["type"] == "model_type":
        return invalid(f"the {_title(_model_at(model, loc))} must be a JSON object")
    if first["type"] in _TYPE_ERRORS:
        return invalid(f"{name} must be of type {_TYPE_ERRORS[first['type']]}")
    return invalid(f"{name}: {first['msg']}")


def _title(model: type[BaseModel]) -> str:
    return str(model.model_config.get("title") or "body")


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model that validates the value at `loc` (list indexes step into the items)."""
    for step in loc:
        if isinstance(step, int):
            continue
        found = _model_in(model.model_fields[step].annotation)
        if found is None:
            break
        model = found
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


async def read_json(request: Request, model: type[B]) -> B:
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise ServiceError(Kinds.MISSING_CONTENT_TYPE, "Content-Type is missing: send the body "
                                                        "as application/json")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ServiceError(Kinds.INVALID_CONTENT_TYPE,
                           f"Content-Type {content_type[:100]!r} is not supported here: send "
                           "application/json")
    raw = await read_body(request, context(request).settings.max_body_bytes)
    if not raw.strip():
        raise ServiceError(Kinds.MISSING_CONTENT, "the request body is empty")
    data = parse_json(raw, Kinds.INVALID_CONTENT)
    check_json(data, "the body")
    return parse(model, data)


def query(request: Request, allowed: set[str]) -> dict[str, str]:
    """The query parameters, each given once; an unknown one is refused."""
    items = request.query_params.multi_items()
    params = dict(items)
    if len(params) != len(items):
        raise invalid("a query parameter is given twice")
    for name, value in items:
        check_text(value, name)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise invalid(f"unknown field(s) in the query string: {', '.join(unknown)}")
    return params


def required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise missing(name)
    return value


def query_int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if not text:
        return default
    return ascii_int(text, name, low, high)


# The words a boolean query parameter takes: JSON's, as the bodies write them.
_BOOLS = {"true": True, "false": False}


def query_bool(params: dict[str, str], name: str) -> bool:
    """A `true`/`false` query parameter, false when absent; any other value is refused."""
    text = params.get(name)
    if text is None:
        return False
    if text not in _BOOLS:
        raise invalid(f"{name} must be true or false, got {text[:40]!r}")
    return _BOOLS[text]
