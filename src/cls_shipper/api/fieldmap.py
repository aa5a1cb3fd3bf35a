"""Field maps: how a model appears on the wire, declared once per surface as a table of
(model attribute, wire name, converter) and used in both directions, to read validated request
fields into the model and to render the model back. Each surface holds only its tables
(snake_case legacy, CamelCase API 3.0); the mechanism is here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from operator import attrgetter
from typing import Any, Generic, TypeVar

from cls_shipper.timefmt import format_legacy

T = TypeVar("T")


def _same(value: Any) -> Any:
    return value


def _same_out(value: Any, _zone: tzinfo) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Nested:
    """Renders an object through `map`."""

    map: FieldMap[Any]


@dataclass(frozen=True, slots=True)
class Each:
    """Renders a list, each item through `item`."""

    item: Converter


@dataclass(frozen=True, slots=True)
class Wrapped:
    """Renders a one-field object `{name: <value through inner>}`."""

    name: str
    inner: Converter


@dataclass(frozen=True, slots=True)
class Via:
    """Renders what `fn` returns (its return annotation is the rendered type)."""

    fn: Callable[..., Any]


Renders = Nested | Each | Wrapped | Via


@dataclass(frozen=True, slots=True)
class Converter:
    """A value's two directions: `read` turns a validated wire value into the model's value,
    `write` renders the model's value (times need the zone the surface shows them in).
    `renders` says what `write` makes of the value, so that a document of the wire (the
    OpenAPI document) is derived from the same table; None: the value as the model holds
    it."""

    read: Callable[[Any], Any] = _same
    write: Callable[[Any, tzinfo], Any] = _same_out
    renders: Renders | None = None


PLAIN = Converter()
# Legacy datetime strings; render only, since no request carries one of these fields.
LEGACY_TIME = Converter(write=format_legacy, renders=Via(format_legacy))


@dataclass(frozen=True, slots=True)
class Field:
    """One row of a table. `attr` is an attribute path on the rendered object (dotted, e.g.
    "config.bucket") or, for a value computed from the whole object, a function of it (such a
    field is rendered only). `omit` leaves the field out of the rendering when it says so."""

    attr: str | Callable[[Any], Any]
    wire: str = ""
    conv: Converter = PLAIN
    omit: Callable[[Any], bool] | None = None
    # `attr` as one call, made once: a listing renders thousands of fields per answer.
    value_of: Callable[[Any], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.wire:
            if not isinstance(self.attr, str):
                raise TypeError("a computed field needs a wire name")
            object.__setattr__(self, "wire", self.attr.rsplit(".", 1)[-1])
        object.__setattr__(self, "value_of",
                           attrgetter(self.attr) if isinstance(self.attr, str) else self.attr)


@dataclass(frozen=True, slots=True)
class FieldMap(Generic[T]):
    """A table of fields. `make` builds the model from the keyword arguments `read` returns
    (a nested map's rows read into it); a map that is only rendered has none."""

    fields: Sequence[Field]
    make: Callable[..., T] | None = None

    def read(self, values: Mapping[str, Any], under: str = "") -> dict[str, Any]:
        """The model's keyword arguments for the wire fields present in `values`. With
        `under`, the rows whose attribute path starts with `under.` (the rendered object holds
        the model there) and keyed by the rest of the path; computed rows are never read."""
        prefix = f"{under}." if under else ""
        out: dict[str, Any] = {}
        for f in self.fields:
            if not isinstance(f.attr, str) or f.wire not in values:
                continue
            if prefix and not f.attr.startswith(prefix):
                continue
            name = f.attr[len(prefix):]
            if "." not in name:
                out[name] = f.conv.read(values[f.wire])
        return out

    def load(self, values: Any) -> T:
        """The model from a whole wire object (a mapping, or a validated pydantic model,
        which iterates as its (name, value) pairs)."""
        if self.make is None:
            raise TypeError("this field map is only rendered")
        return self.make(**self.read(_as_mapping(values)))

    def render(self, obj: Any, zone: tzinfo) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.fields:
            value = f.value_of(obj)
            if f.omit is not None and f.omit(value):
                continue
            out[f.wire] = value if f.conv is PLAIN else f.conv.write(value, zone)
        return out


def _as_mapping(values: Any) -> Mapping[str, Any]:
    # Not dict(values): a model with a field named `keys` (CSV's) would pass for a mapping.
    return values if isinstance(values, Mapping) else dict(iter(values))


def nested(inner: FieldMap[Any]) -> Converter:
    """An object inside the object; null stays null both ways."""
    return Converter(
        read=lambda v: None if v is None else inner.load(v),
        write=lambda v, zone: None if v is None else inner.render(v, zone),
        renders=Nested(inner))


def each(inner: Converter) -> Converter:
    """A list of values converted one by one."""
    return Converter(
        read=lambda v: [inner.read(item) for item in v],
        write=lambda v, zone: [inner.write(item, zone) for item in v],
        renders=Each(inner))


def shown_as(fn: Callable[[Any], Any]) -> Converter:
    """A value rendered through `fn`; render only."""
    return Converter(write=lambda v, _zone: fn(v), renders=Via(fn))


def wrapped(name: str, inner: Converter = PLAIN) -> Converter:
    """A model value the wire holds inside a one-field object (`{"format": "gzip"}`); null
    stays null both ways."""
    return Converter(
        read=lambda v: None if v is None else inner.read(_as_mapping(v)[name]),
        write=lambda v, zone: None if v is None else {name: inner.write(v, zone)},
        renders=Wrapped(name, inner))
