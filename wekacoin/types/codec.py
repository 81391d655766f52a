"""The one canonical byte encoding of every protocol object.

Objects are frozen dataclasses ("records"). A record encodes as a CBOR array of its fields in
declaration order; a record that is one variant of a union (a transaction body, say) carries its
`KIND` integer as the first element. Integers are CBOR integers (shortest form, which cbor2
always emits), byte strings are CBOR byte strings, enums encode as their value, `X | None` as
null or X, `tuple[X, ...]` as an array. No maps, no floats, no tags.

Decoding untrusted bytes raises only `DecodeError`: the bytes are parsed by cbor2, re-encoded
and compared with the input (so an object has exactly one encoding, hence one hash), then
checked field by field against the record's type hints (types, integer ranges, byte lengths,
enum members). Per-class encoders and decoders are compiled once from the type hints.

The parser refuses what the encoding never holds before it builds anything from it: tags
(cbor2 would otherwise make dates, regexes, sets, and values shared by reference, which the
re-encoding then copies: 200 bytes of shared references re-encode to gigabytes), map keys
other than strings (a map of ints with one hash is quadratic to build), indefinite lengths.
So parsing and re-encoding take time linear in the input.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import hashlib
import operator
import types
import typing
from typing import Any, Callable, TypeVar

import cbor2

from wekacoin.errors import WekaError

T = TypeVar("T")

MAX_INT = 2**64 - 1
MIN_INT = -(2**63)


class DecodeError(WekaError):
    """Bytes that are not the canonical encoding of the expected object."""


_BYTE_LENGTHS: dict[Any, int] = {}
_UNSIGNED: set[Any] = set()


def fixed_bytes(name: str, length: int) -> Any:
    """A named bytes type of exactly `length` bytes (checked when decoding)."""
    tp = _named(name, bytes)
    _BYTE_LENGTHS[tp] = length
    return tp


def unsigned(name: str) -> Any:
    """A named integer type in [0, 2**64) (checked when decoding)."""
    tp = _named(name, int)
    _UNSIGNED.add(tp)
    return tp


def signed(name: str) -> Any:
    """A named integer type in [-2**63, 2**64)."""
    return _named(name, int)


def _named(name: str, base: type) -> Any:
    # Returned, not assigned: mypy reads `X = NewType(...)` as a declaration whose name must
    # be a literal. Type checkers see these names as their base type (types/primitives.py).
    return typing.NewType(name, base)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- encoding -----------------------------------------------------------------------------


def encode(obj: Any) -> bytes:
    """The canonical bytes of a record."""
    return cbor2.dumps(_encoder_for(type(obj))(obj))


def hash_of(obj: Any) -> bytes:
    """SHA-256 of the canonical encoding: the id of a record."""
    return hashlib.sha256(encode(obj)).digest()


def to_primitive(obj: Any) -> Any:
    """The CBOR data model value (lists, ints, bytes, str, bool, None) of a record."""
    return _encoder_for(type(obj))(obj)


_encoders: dict[type, Callable[[Any], Any]] = {}


def _encoder_for(cls: type) -> Callable[[Any], Any]:
    enc = _encoders.get(cls)
    if enc is None:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls!r} is not a record")
        enc = _compile_record_encoder(cls)
        _encoders[cls] = enc
    return enc


def _wire_fields(cls: type) -> list[dataclasses.Field]:
    """The encoded fields: those set by the constructor (`init=False` ones are derived)."""
    return [f for f in dataclasses.fields(cls) if f.init]


def _compile_record_encoder(cls: type) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in _wire_fields(cls)]
    field_encoders = [_value_encoder(hints[n]) for n in names]
    kind = getattr(cls, "KIND", None)
    pairs = list(zip(names, field_encoders, strict=True))
    if kind is None and len(names) > 1 and all(e is None for e in field_encoders):
        # All fields are CBOR primitives: one C-level attrgetter builds the array (a tuple
        # encodes exactly like a list).
        return operator.attrgetter(*names)
    if kind is None:
        def enc(obj: Any) -> list:
            return [getattr(obj, n) if e is None else e(getattr(obj, n)) for n, e in pairs]
    else:
        def enc(obj: Any) -> list:
            return [kind] + [
                getattr(obj, n) if e is None else e(getattr(obj, n)) for n, e in pairs
            ]

    return enc


def _value_encoder(tp: Any) -> Callable[[Any], Any] | None:
    """None means the value is already a CBOR primitive and passes through."""
    tp = _strip_newtype(tp)
    origin = typing.get_origin(tp)
    if tp in (int, bytes, str, bool):
        return None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: v.value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return lambda v: _encoder_for(type(v))(v)
    if origin is tuple:
        item = _strip_newtype(typing.get_args(tp)[0])
        if isinstance(item, type) and dataclasses.is_dataclass(item):
            # One record type: look its encoder up once per tuple, not once per item.
            return lambda v: list(map(_encoder_for(item), v))
        inner = _value_encoder(item)
        if inner is None:
            return list
        return lambda v: [inner(x) for x in v]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if all(dataclasses.is_dataclass(a) for a in args):
            return lambda v: None if v is None else _encoder_for(type(v))(v)
        (inner_tp,) = args
        present = _value_encoder(inner_tp)
        if present is None:
            return None
        return lambda v: None if v is None else present(v)
    raise TypeError(f"unsupported field type {tp!r}")


def _strip_newtype(tp: Any) -> Any:
    while hasattr(tp, "__supertype__"):
        tp = tp.__supertype__
    return tp


# -- decoding -----------------------------------------------------------------------------


def _refuse_tag(*_: Any) -> typing.NoReturn:
    raise cbor2.CBORDecodeError("the canonical encoding has no tags")


class _EveryTag(collections.abc.Mapping):
    """cbor2's `semantic_decoders` for every tag number: each one refuses its tag, before
    cbor2 decodes what it tags."""

    def __getitem__(self, tag: Any) -> Callable[..., typing.NoReturn]:
        return _refuse_tag

    def __contains__(self, tag: object) -> bool:
        return True

    def __iter__(self) -> typing.Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0


_PARSE_OPTIONS: dict[str, Any] = {
    "semantic_decoders": _EveryTag(), "tag_hook": _refuse_tag,
    "strict_hashable_types": True, "allow_indefinite": False,
}


def _parse(data: bytes) -> Any:
    return cbor2.loads(data, **_PARSE_OPTIONS)


def decode(cls: type[T], data: bytes) -> T:
    """Parse untrusted bytes as a `cls`; raises DecodeError and nothing else."""
    if type(data) is not bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DecodeError("expected bytes")
        data = bytes(data)
    try:
        value = _parse(data)
        canonical = cbor2.dumps(value)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError,
            MemoryError, UnicodeError, LookupError) as e:
        raise DecodeError(f"malformed CBOR: {e}") from None
    if canonical != data:
        raise DecodeError("not the canonical encoding")
    return from_primitive(cls, value)


def decode_trusted(cls: type[T], data: bytes) -> T:
    """Parse bytes this node encoded itself (its own store): the fields are still checked,
    but the canonical-form round trip that untrusted input needs is skipped."""
    try:
        value = _parse(data)
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as e:
        raise DecodeError(f"malformed CBOR: {e}") from None
    return from_primitive(cls, value)


def from_primitive(cls: type[T], value: Any) -> T:
    """Build a `cls` from CBOR data model values, checking every field; DecodeError if not."""
    try:
        return _decoder_for(cls)(value)
    except DecodeError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, RecursionError) as e:
        raise DecodeError(f"invalid {cls.__name__}: {e}") from None


_decoders: dict[Any, Callable[[Any], Any]] = {}


def _decoder_for(tp: Any) -> Callable[[Any], Any]:
    dec = _decoders.get(tp)
    if dec is None:
        dec = _compile_decoder(tp)
        _decoders[tp] = dec
    return dec


def _fail(msg: str) -> typing.NoReturn:
    raise DecodeError(msg)


def _compile_decoder(tp: Any) -> Callable[[Any], Any]:
    if tp in _BYTE_LENGTHS:
        n = _BYTE_LENGTHS[tp]
        name = tp.__name__

        def dec_fixed(v: Any) -> bytes:
            if type(v) is not bytes or len(v) != n:
                _fail(f"{name} must be {n} bytes")
            return v

        return dec_fixed
    if tp in _UNSIGNED:
        name = tp.__name__

        def dec_unsigned(v: Any) -> int:
            if type(v) is not int or not 0 <= v <= MAX_INT:
                _fail(f"{name} must be an integer in [0, 2**64)")
            return v

        return dec_unsigned
    base = _strip_newtype(tp)
    if base is int:
        def dec_int(v: Any) -> int:
            if type(v) is not int or not MIN_INT <= v <= MAX_INT:
                _fail("expected a 64-bit integer")
            return v

        return dec_int
    if base is bool:
        def dec_bool(v: Any) -> bool:
            if type(v) is not bool:
                _fail("expected a boolean")
            return v

        return dec_bool
    if base in (bytes, str):
        def dec_prim(v: Any) -> Any:
            if type(v) is not base:
                _fail(f"expected {base.__name__}")
            return v

        return dec_prim
    if isinstance(base, type) and issubclass(base, enum.Enum):
        members = {m.value: m for m in base}

        def dec_enum(v: Any) -> Any:
            if type(v) not in (int, str) or v not in members:
                _fail(f"unknown {base.__name__} {v!r}")
            return members[v]

        return dec_enum
    if isinstance(base, type) and dataclasses.is_dataclass(base):
        return _compile_record_decoder(base)
    origin = typing.get_origin(base)
    if origin is tuple:
        inner = _decoder_for(typing.get_args(base)[0])

        def dec_tuple(v: Any) -> tuple:
            if type(v) is not list:
                _fail("expected an array")
            return tuple([inner(x) for x in v]) if v else ()

        return dec_tuple
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(base) if a is not type(None)]
        optional = len(args) < len(typing.get_args(base))
        if len(args) == 1:
            inner = _decoder_for(args[0])
        else:
            inner = _compile_variant_decoder(args)
        if not optional:
            return inner

        def dec_optional(v: Any) -> Any:
            return None if v is None else inner(v)

        return dec_optional
    raise TypeError(f"unsupported field type {tp!r}")


def _compile_record_decoder(cls: type) -> Callable[[Any], Any]:
    hints = typing.get_type_hints(cls)
    decoders = [_decoder_for(hints[f.name]) for f in _wire_fields(cls)]
    n = len(decoders)
    kind = getattr(cls, "KIND", None)
    name = cls.__name__
    if kind is None:
        def dec_record(v: Any) -> Any:
            if type(v) is not list or len(v) != n:
                _fail(f"{name} must be an array of {n} fields")
            return cls(*[d(x) for d, x in zip(decoders, v, strict=True)])
    else:
        def dec_record(v: Any) -> Any:
            # `type(...) is int`: True == 1, but `true` is not the encoding of KIND 1
            if type(v) is not list or len(v) != n + 1 or type(v[0]) is not int or v[0] != kind:
                _fail(f"{name} must be an array of kind {kind} and {n} fields")
            return cls(*[d(x) for d, x in zip(decoders, v[1:], strict=True)])

    return dec_record


def _compile_variant_decoder(variants: list[type]) -> Callable[[Any], Any]:
    by_kind: dict[int, Callable[[Any], Any]] = {}
    for cls in variants:
        kind = getattr(cls, "KIND", None)
        if kind is None or kind in by_kind:
            raise TypeError(f"union member {cls!r} needs a unique KIND")
        by_kind[kind] = _decoder_for(cls)

    def dec_variant(v: Any) -> Any:
        if type(v) is not list or not v or type(v[0]) is not int or v[0] not in by_kind:
            _fail("unknown variant")
        return by_kind[v[0]](v)

    return dec_variant
