"""Which format a model file is in, told by its first bytes, never by its name.

This runs in the trusted parent and only compares prefixes: all real parsing of model bytes
happens inside the sandbox. Pickle and joblib files are recognised only to refuse them with a
clear reason: loading them runs arbitrary code, so they are never loaded at all.
"""

from __future__ import annotations

from enum import Enum

from wekacoin.errors import WekaError


class ModelFormat(str, Enum):
    ONNX = "onnx"
    SKOPS = "skops"


MAX_REASON_CHARS = 300
"""A refusal travels as one line of at most this many characters (the sandbox's frame)."""


class ModelRejected(WekaError):
    """The model breaks the format contract or its limits; it ranks INVALID.

    It carries every problem found, each saying what to change ("operator X is not allowed:
    ..."); `str()` is them all on one line of at most MAX_REASON_CHARS characters, cut only
    between words, with a count of those that did not fit."""

    def __init__(self, *problems: str) -> None:
        self.problems = tuple(problems) or ("model refused",)
        super().__init__(compose_reason(self.problems))


class UnsupportedModelFormat(ModelRejected):
    """The bytes are not an ONNX or skops model (or are a format we refuse on purpose)."""


_ZIP = b"PK\x03\x04"
# An ONNX ModelProto as every writer serialises it starts with field 1, ir_version (varint).
_ONNX_FIRST_BYTE = 0x08
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x04\x22\x4d\x18": "lz4",
    b"ZF": "joblib zlib",
}
# Protocol 0/1 pickles start with one of these opcodes and end with STOP ('.').
_OLD_PICKLE_FIRST = frozenset(b"(}]cKNI")


def compose_reason(problems: tuple[str, ...] | list[str], limit: int = MAX_REASON_CHARS) -> str:
    """The problems on one line of at most `limit` characters, none cut mid-word: as many
    whole problems as fit, then how many more there are."""
    tail = ""
    for shown in range(len(problems), 0, -1):
        rest = len(problems) - shown
        tail = f"; and {rest} more (wekacoin model check lists them all)" if rest else ""
        line = "; ".join(problems[:shown]) + tail
        if len(line) <= limit:
            return line
    return shorten(problems[0], limit - len(tail)) + tail


def shorten(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else cut at a space with "…" appended."""
    if len(text) <= limit:
        return text
    cut = text[: max(1, limit - 1)]
    if " " in cut and not text[len(cut)].isspace():
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


def detect_format(model: bytes) -> ModelFormat:
    if len(model) < 4:
        raise UnsupportedModelFormat("model file is empty or truncated")
    if _is_pickle(model):
        raise UnsupportedModelFormat("pickle/joblib files are refused: loading them runs code")
    for magic, name in _COMPRESSED.items():
        if model.startswith(magic):
            raise UnsupportedModelFormat(f"{name}-compressed file refused (joblib?)")
    if model.startswith(_ZIP):
        return ModelFormat.SKOPS
    if model[0] == _ONNX_FIRST_BYTE:
        return ModelFormat.ONNX
    raise UnsupportedModelFormat("not an ONNX or skops model")


def _is_pickle(model: bytes) -> bool:
    if model[0] == 0x80 and 2 <= model[1] <= 5:  # PROTO opcode, protocols 2 to 5
        return True
    if model[0] == 0x78 and model[1] in (0x01, 0x5E, 0x9C, 0xDA):  # zlib stream (joblib)
        return True
    return model[0] in _OLD_PICKLE_FIRST and model.rstrip().endswith(b".")
