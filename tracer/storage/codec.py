"""Every byte format gradtrace stores, encode and decode side by side.

    >>> import numpy as np
    >>> x = np.array([0.5, -0.0, float("nan")])
    >>> blob = encode_floats(x, ZSTD)
    >>> decode_floats(blob, ZSTD, 3).tobytes() == x.tobytes()
    True
    >>> unpack_raw([pack_raw(-0.0)], 1)[0, 0].hex()
    '-0x0.0p+0'

What is stored where, and how wide it is:

=============================  ============================================  =================
column                         format                                        width
=============================  ============================================  =================
traces.data, traces.grad       float64 array, ``traces.codec``               8 bytes a node
param_values.data              float64 array, ``param_values.codec``         8 bytes a param
param_grads.grad               float64 array, ``param_grads.codec``          8 bytes a param
metrics.raw                    exact bits of ``value``, float64 LE           8 bytes (1 float)
updates.raw                    before, grad, after, lr; float64 LE           32 bytes (4)
graphs.a, graphs.b, params     int32 LE, -1 for none                         4 bytes a node
graphs.kinds                   one letter per node, :data:`KIND_LETTERS`     1 byte a node
=============================  ============================================  =================

A float64 array is little-endian IEEE-754 before compression (the width above),
so NaN payloads, -0.0, infinities and subnormals keep every bit. The codec of a
row says what was done to it: ``NULL`` or :data:`PLAIN` stores the bytes as
they are (everything gradtrace 0.1.0 wrote), :data:`ZSTD` one zstd frame of
them. Every array is checked when read: a zstd frame by its content
checksum, a plain row by its ``crc`` column (:func:`checksum`, CRC-32 of the
stored bytes; migration 0010); rows written before either read unchecked. A
mismatch raises :class:`DamagedBlob`, which readers turn into an error naming
the run, the step and the file. ``raw`` columns are only set where a row holds a NaN or a -0.0, the
floats SQL columns cannot keep (see ``tracer.models``).

Why zstd level 1: on the moons demo's traces it keeps ~4-5 bytes a node-step
(gradients are mostly exact zeros, values repeat), and higher levels save a few
percent for several times the time; the writer thread compresses, and the
binding releases the GIL while it does, so training goes on meanwhile.
"""

from __future__ import annotations

import math
import struct
import sys
import threading
import zlib
from array import array
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import zstandard
from gradtrace.tracer.errors import GradtraceError, NotAGradtraceDatabase

PLAIN = 0  # little-endian float64 as is (gradtrace 0.1.0 wrote NULL for this)
ZSTD = 1  # one zstd frame of the little-endian float64 bytes
CODECS = {PLAIN: "plain float64", ZSTD: "zstd float64"}
ZSTD_LEVEL = 1  # see the module docstring

F8 = np.dtype("<f8")
I4 = np.dtype("<i4")
_BIG_ENDIAN = sys.byteorder == "big"
_local = threading.local()  # a zstd context may be used by one thread at a time


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "c", None)
    if c is None:
        # The content checksum (4 bytes a frame) makes a damaged frame an error
        # on decompression instead of wrong numbers.
        c = _local.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


# -- float64 arrays (traces, per-step parameter arrays) -----------------------------
def float_bytes(values: np.ndarray | array | Sequence[float]) -> bytes:
    """``values`` as little-endian float64 bytes, uncompressed."""
    if isinstance(values, np.ndarray):
        return np.ascontiguousarray(values, dtype=F8).tobytes()
    if not isinstance(values, array) or values.typecode != "d":
        values = array("d", values)
    if _BIG_ENDIAN:
        values = array("d", values)
        values.byteswap()
    return values.tobytes()


def encode_floats(values: np.ndarray | array | Sequence[float], codec: int = ZSTD) -> bytes:
    """A float64 array as stored under ``codec``."""
    plain = float_bytes(values)
    if codec == PLAIN:
        return plain
    if codec == ZSTD:
        return _compressor().compress(plain)
    raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")


def _pays(stored: int, values: int) -> bool:
    """Whether ``stored`` bytes for ``values`` float64 save at least an eighth."""
    return 8 * stored <= 7 * 8 * values


def encode_pair(
    first: np.ndarray, second: np.ndarray, codec: int = ZSTD
) -> tuple[int, bytes, bytes]:
    """Two arrays of one row (values and gradients) as ``(codec, first, second)``:
    plain unless compression saves at least an eighth. Decoding costs every read,
    and some rows barely shrink: a tiny graph's (frame overhead), and per-step
    parameter arrays of distinct weights with non-zero gradients."""
    a, b = encode_floats(first, codec), encode_floats(second, codec)
    if codec != PLAIN and not _pays(len(a) + len(b), len(first) + len(second)):
        return PLAIN, float_bytes(first), float_bytes(second)
    return codec, a, b


def encode_array(values: np.ndarray, codec: int = ZSTD) -> tuple[int, bytes]:
    """One array in a row of its own as ``(codec, blob)``, by :func:`encode_pair`'s
    rule: plain unless compression saves at least an eighth."""
    blob = encode_floats(values, codec)
    if codec != PLAIN and not _pays(len(blob), len(values)):
        return PLAIN, float_bytes(values)
    return codec, blob


class DamagedBlob(NotAGradtraceDatabase):
    """A stored array whose checksum does not match, or that does not decode:
    ``row`` is its position in what was decoded (readers name the run, step, file)."""

    def __init__(self, message: str, row: int = 0):
        super().__init__(message)
        self.row = row


def checksum(*blobs: bytes | memoryview | None) -> int:
    """The ``crc`` column of a plain row: CRC-32 of its stored blobs, in order."""
    crc = 0
    for blob in blobs:
        crc = zlib.crc32(b"" if blob is None else blob, crc)
    return crc


def check_crc(crc: int | None, *blobs: bytes | memoryview | None, row: int = 0) -> None:
    """Raise :class:`DamagedBlob` unless ``blobs`` match the row's ``crc`` (NULL:
    compressed, or written before checksums, so nothing to check)."""
    if crc is not None and checksum(*blobs) != crc:
        raise DamagedBlob("its checksum does not match: stored bytes changed", row)


def _unzstd(blob: bytes | memoryview, what: str, row: int = 0) -> bytes:
    try:
        return _decompressor().decompress(bytes(blob))
    except zstandard.ZstdError as e:  # its checksum failed, or it is no frame at all
        raise DamagedBlob(f"{what} is not a valid zstd frame ({e})", row) from None


def decode_floats(
    blob: bytes | memoryview, codec: int | None, n: int | None = None, what: str = "an array"
) -> np.ndarray:
    """The native, writable float64 array ``blob`` holds; ``n`` values if given.

    ``codec`` is the row's codec column (``None`` for rows written by 0.1.0). A
    frame that does not decompress, or fails its checksum, raises DamagedBlob.
    """
    if codec == ZSTD:
        blob = _unzstd(blob, what)
    elif codec not in (None, PLAIN):
        raise GradtraceError(
            f"{what} uses codec {codec!r}, unknown to this gradtrace "
            f"(it knows {sorted(CODECS)}); upgrade gradtrace to read it"
        )
    if len(blob) % 8 or (n is not None and len(blob) != 8 * n):
        raise DamagedBlob(f"{what} holds {len(blob)} bytes, expected {8 * (n or 0)}")
    return np.frombuffer(blob, dtype=F8).astype(np.float64)


def decode_matrix(
    blobs: Sequence[bytes | memoryview | None],
    codecs: Sequence[int | None],
    n: int,
    what: str = "an array",
    crcs: Sequence[int | None] | None = None,
) -> np.ndarray:
    """The ``(len(blobs), n)`` float64 matrix of per-step arrays, each in its row's
    codec, checked against its ``crc`` if given (a NULL blob is an error unless
    ``n`` is 0). A damaged row raises DamagedBlob with its position."""
    crcs = [None] * len(blobs) if crcs is None else crcs
    parts = []
    for i, (blob, codec, crc) in enumerate(zip(blobs, codecs, crcs, strict=True)):
        raw = b"" if blob is None else bytes(blob)
        check_crc(crc, raw, row=i)
        if codec == ZSTD:
            raw = _unzstd(raw, what, i)
        elif codec not in (None, PLAIN):
            decode_floats(raw, codec, n, what)  # raises: a codec this version does not know
        if len(raw) != 8 * n:
            raise DamagedBlob(f"{what} holds {len(raw)} bytes, expected {8 * n}", i)
        parts.append(raw)
    matrix = np.frombuffer(b"".join(parts), dtype=F8).reshape(len(parts), n)
    return matrix.astype(np.float64)


# -- int32 arrays (graph structure) -------------------------------------------------
def int32_bytes(values: Sequence[int]) -> bytes:
    """Little-endian int32 bytes (node and parameter indices, -1 for none)."""
    return np.asarray(values, dtype=I4).tobytes()


def decode_int32(blob: bytes | memoryview) -> np.ndarray:
    """A native int64 array of the int32 LE values in ``blob``."""
    return np.frombuffer(bytes(blob), dtype=I4).astype(np.int64)


# -- the ``raw`` exact-bits column -------------------------------------------------
# A leaf's kind (engine ``Value.kind``) as one letter; "." is a computed node.
KIND_LETTERS = {"": ".", "input": "i", "constant": "c", "target": "t", "parameter": "p"}
_KIND_OF_LETTER = {letter: kind for kind, letter in KIND_LETTERS.items()}
UNKNOWN_LEAF = "leaf"  # the kind of a leaf in a graph stored before kinds were


def encode_kinds(kinds: Sequence[str]) -> str:
    """``graphs.kinds``: ``encode_kinds(["input", "", "parameter"]) == "i.p"``."""
    return "".join(map(KIND_LETTERS.__getitem__, kinds))


def encode_ops(ops: Sequence[str]) -> str:
    """``graphs.ops``: every node's op, separated by spaces, ``.`` for a leaf.

        >>> encode_ops(["", "*", "my op", "."])
        '. * %my%20op %.'

    The engine's ops are plain words. An op string of another engine, kept as the
    user wrote it, is stored behind a ``%`` and percent-quoted when it holds what
    the column cannot (a space, a ``%``, a NUL, a lone surrogate) or would read as
    something else (``.``, a leading ``%``).
    """
    return " ".join(map(_op_token, ops))


def _op_token(op: str) -> str:
    if not op:
        return "."
    if op == "." or op[0] == "%" or " " in op or "%" in op or "\x00" in op:
        return "%" + quote(op, safe="", errors="surrogatepass")
    try:
        op.encode("utf-8")
    except UnicodeEncodeError:
        return "%" + quote(op, safe="", errors="surrogatepass")
    return op


def decode_ops(text: str, n: int) -> list[str]:
    """The ops :func:`encode_ops` wrote (``n`` nodes; an empty graph stores ``""``)."""
    if not n:
        return []
    return [
        "" if t == "." else unquote(t[1:], errors="surrogatepass") if t[:1] == "%" else t
        for t in text.split(" ")
    ]


def decode_kinds(text: str | None, ops: Sequence[str]) -> list[str]:
    """The kind of every node; a graph stored without kinds (``NULL``) calls its
    leaves :data:`UNKNOWN_LEAF` (``ops`` tells leaves, ``""``, from the rest)."""
    if text is None:
        return [UNKNOWN_LEAF if op == "" else "" for op in ops]
    if len(text) != len(ops):
        raise ValueError(f"graphs.kinds has {len(text)} letters for {len(ops)} nodes")
    return [_KIND_OF_LETTER[letter] for letter in text]


_RAW = {width: struct.Struct(f"<{width}d") for width in (1, 4)}


def needs_raw(x: float) -> bool:
    """NaN and -0.0 are the floats SQL columns cannot hold exactly."""
    return x != x or (x == 0.0 and math.copysign(1.0, x) < 0)


def sql_float(x: float) -> float | None:
    """What a float column holds: NaN is NULL (``raw`` keeps the bits)."""
    return None if x != x else x


def pack_raw(*floats: float) -> bytes:
    """The ``raw`` column of a row whose float columns are ``floats``, in order."""
    return _RAW[len(floats)].pack(*floats)


def unpack_raw(raws: Sequence[bytes | memoryview], width: int) -> np.ndarray:
    """Decode ``raw`` blobs (``width`` float64 LE each, at least) into an ``(n, width)``
    float64 array, bit for bit."""
    raws = [bytes(b) for b in raws]
    sizes = {len(b) for b in raws}
    if len(sizes) == 1 and sizes.pop() == 8 * width:
        return np.frombuffer(b"".join(raws), dtype=F8).reshape(len(raws), width).astype(np.float64)
    fmt = struct.Struct(f"<{width}d")
    return np.array([fmt.unpack(b[: 8 * width]) for b in raws], dtype=np.float64).reshape(
        len(raws), width
    )


def apply_raw(values: dict[str, np.ndarray], raws: Sequence[bytes | None]) -> None:
    """Put the exact bits kept in ``raws`` back into the float columns ``values``
    (in the order the ``raw`` column packs them), in place."""
    odd = [i for i, r in enumerate(raws) if r is not None]
    if odd:
        exact = unpack_raw([raws[i] for i in odd], len(values))
        for j, column in enumerate(values.values()):
            column[odd] = exact[:, j]


# -- rows by column name ----------------------------------------------------------
def row(model: type, **fields: Any) -> tuple[Any, ...]:
    """One row of ``model``'s table as a tuple in column order, from named fields;
    a column not named is NULL, a name that is not a column is an error.

        >>> from gradtrace.tracer.storage.models import Metric
        >>> row(Metric, run_key=1, name="loss", step=0, value=0.5)
        (1, 'loss', 0, 0.5, None)
    """
    return tuple(map(fields.get, _names(model, fields)))


def rows(model: type, n: int, **columns: Any) -> list[tuple[Any, ...]]:
    """``n`` rows of ``model``'s table in column order, for the writer's positional
    INSERT/COPY. Each keyword is a column: a sequence of ``n`` values, or one
    value (a str, bytes or scalar) repeated on every row."""
    cols = [_column(columns.get(name), n) for name in _names(model, columns)]
    return list(zip(*cols, strict=True))


_NAMES: dict[type, tuple[str, ...]] = {}  # model -> its column names, in order


def _names(model: type, given: dict[str, Any]) -> tuple[str, ...]:
    """``model``'s column names in order; a name in ``given`` that is not one is an error."""
    names = _NAMES.get(model)
    if names is None:  # read once a model: SQLAlchemy builds the key list on every call
        names = _NAMES[model] = tuple(model.__table__.columns.keys())
    unknown = given.keys() - names
    if unknown:
        raise KeyError(f"{model.__tablename__} has no column {sorted(unknown)}")
    return names


def _column(value: Any, n: int) -> Iterable[Any]:
    if isinstance(value, list | tuple | range | array):
        if len(value) != n:
            raise ValueError(f"a column of {len(value)} values for {n} rows")
        return value
    return [value] * n
