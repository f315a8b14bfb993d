"""Damaged stored arrays are errors naming the run, step and file, never numbers
(issue 19, item 3): zstd frames carry their content checksum, plain rows a CRC."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from gradtrace.tracer.errors import GradtraceError
from gradtrace.tracer.storage.codec import PLAIN, ZSTD, checksum, decode_floats, encode_floats
from gradtrace.tracer.storage.db import describe
from gradtrace.tracer.storage.models import ParamGrads, ParamValues, Trace
from helpers.trace import train

from gradtrace import tracer
from gradtrace.cli.main import cli


def test_no_single_byte_flip_in_a_frame_reads_as_other_numbers():
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=64), 2)  # repeats: a frame that pays for itself
    blob = encode_floats(x, ZSTD)
    assert len(blob) < 8 * len(x)
    silent = []
    for i in range(len(blob)):
        for mask in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= mask
            try:
                got = decode_floats(bytes(bad), ZSTD, len(x))
            except GradtraceError:
                continue
            if got.tobytes() != x.tobytes():
                silent.append((i, mask))
    assert silent == []


def _record(url: str) -> str:
    with tracer.record("flips", db=url) as run:
        list(train(6, run))
    return run.id


def _flip(url: str, model, column: str, key: int, step: int, codec: int) -> None:
    """Store one row's array in ``codec`` (gradtrace's own encoding and checksum),
    then flip one byte in the middle of it."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        where = sa.and_(model.run_key == key, model.step == step)
        blob, old = conn.execute(sa.select(getattr(model, column), model.codec).where(where)).one()
        values = np.round(decode_floats(blob, old), 1)  # rounded: a frame that pays
        blob = encode_floats(values, codec)
        fields = {}
        if model is Trace:  # its grad shares the row's codec, and its CRC covers both
            grad = conn.execute(sa.select(Trace.grad).where(where)).scalar_one()
            fields["grad"] = encode_floats(decode_floats(grad, old), codec)
        crc = checksum(blob, *fields.values()) if codec == PLAIN else None
        bad = bytearray(blob)
        bad[len(bad) // 2] ^= 0x04
        fields[column] = bytes(bad)
        conn.execute(sa.update(model).where(where).values(codec=codec, crc=crc, **fields))
    engine.dispose()


@pytest.mark.parametrize("codec", [PLAIN, ZSTD], ids=["plain", "zstd"])
@pytest.mark.parametrize(
    "model,column,read",
    [
        (ParamGrads, "grad", lambda run: run.gradients()),
        (ParamValues, "data", lambda run: run.values()),
        (Trace, "data", lambda run: run.nodes(3)),
    ],
    ids=["gradients", "values", "trace"],
)
def test_a_flipped_byte_is_an_error_naming_run_step_and_file(db_url, model, column, read, codec):
    rid = _record(db_url)
    with tracer.connect(db_url) as store:
        key = store.run(rid).key
    _flip(db_url, model, column, key, 3, codec)
    with tracer.connect(db_url, readonly=True) as store:
        run, where = store.run(rid), describe(store.url)
        with pytest.raises(tracer.NotAGradtraceDatabase) as info:
            read(run)
            print("READ OK")
        assert "run 'flips' at step 3" in str(info.value) and where in str(info.value)
        # A damaged row hides nothing else: the other steps still read.
        assert len(run.gradients(steps=range(0, 3))) == 3
        run.nodes(2)
    out = CliRunner().invoke(cli, ["show", rid, "--db", db_url])
    # Never a traceback: either the page without the damaged step, or one line.
    assert out.exception is None or isinstance(out.exception, SystemExit), out.exception
    assert out.exit_code == 0 or "are damaged" in out.output, out.output


def test_a_plain_row_carries_the_crc_of_its_bytes(db_url):
    rid = _record(db_url)
    engine = sa.create_engine(db_url)
    with tracer.connect(db_url) as store, engine.connect() as conn:
        key = store.run(rid).key
        rows = conn.execute(
            sa.select(ParamGrads.grad, ParamGrads.codec, ParamGrads.crc).where(
                ParamGrads.run_key == key
            )
        ).all()
    engine.dispose()
    assert rows
    for blob, codec, crc in rows:
        assert crc == (checksum(blob) if codec == PLAIN else None)
