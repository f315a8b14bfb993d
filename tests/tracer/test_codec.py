"""Stored byte formats: compressed arrays give back every bit, and files written by
gradtrace 0.1.0 (plain float64, no codec column) read exactly the same after upgrading."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from gradtrace.engine import Value
from gradtrace.tracer.errors import GradtraceError
from gradtrace.tracer.recording.demo import train
from gradtrace.tracer.storage import codec
from gradtrace.tracer.storage.codec import PLAIN, ZSTD, decode_floats, encode_floats
from gradtrace.tracer.storage.models import Metric
from helpers.migrate import _alembic
from helpers.trace import NAN_SIGNALLING, SPECIALS, bits

from gradtrace import tracer

# Written by gradtrace 0.1.0's own code (commit c0eca26): the toy demo, 3 steps,
# seed 7, and a run of special floats (see _specials_run, which repeats it).
FIXTURE = Path(__file__).resolve().parents[1] / "data" / "gradtrace-0.1.0.db"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@pytest.mark.parametrize("kind", [PLAIN, ZSTD])
def test_float_arrays_round_trip_bit_for_bit(kind):
    x = np.array([*SPECIALS, NAN_SIGNALLING, 2.2250738585072014e-308, 1e-310] * 50)
    blob = encode_floats(x, kind)
    assert (bits(decode_floats(blob, kind, len(x))) == bits(x)).all()
    if kind == ZSTD:
        assert blob.startswith(ZSTD_MAGIC) and len(blob) < 8 * len(x)
    else:
        assert blob == x.astype("<f8").tobytes()
    assert (bits(decode_floats(x.astype("<f8").tobytes(), None)) == bits(x)).all()  # 0.1.0


def test_bad_blobs_are_named_errors():
    with pytest.raises(GradtraceError, match="codec 9, unknown"):
        decode_floats(b"\0" * 8, 9, 1, "the trace of step 3")
    with pytest.raises(GradtraceError, match="the trace of step 3 is not a valid zstd frame"):
        decode_floats(b"\0" * 8, ZSTD, 1, "the trace of step 3")
    with pytest.raises(GradtraceError, match="holds 16 bytes, expected 24"):
        decode_floats(encode_floats(np.zeros(2)), ZSTD, 3)


def test_rows_follow_the_model_columns_by_name():
    row = codec.row(Metric, step=4, name="loss", run_key=1, value=0.5)
    assert row == (1, "loss", 4, 0.5, None)  # metrics: run_key, name, step, value, raw
    with pytest.raises(KeyError, match="valu"):
        codec.row(Metric, run_key=1, name="loss", step=4, valu=0.5)


def _specials_run(db: str, name: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The special-floats run of the fixture; returns each step's node bits."""
    params = [Value(x, label=f"p{i}") for i, x in enumerate(SPECIALS)]
    expected = []
    with tracer.record(name, db=db) as run:
        run.watch(params)
        for _ in range(2):
            loss = params[0]
            for p in params[1:]:
                loss = loss * 1.0 + p
            loss.backward()
            for p, g in zip(params, SPECIALS[::-1], strict=True):
                p.grad = g
            nodes = loss.topo()
            expected.append((bits([v.data for v in nodes]), bits([v.grad for v in nodes])))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                run.log(loss, lr=SPECIALS[1], m=SPECIALS[2])
            for p, x in zip(params, SPECIALS[3:] + SPECIALS[:3], strict=True):
                p.data = x
                p.grad = 0.0
    return expected


def _reads(view) -> dict[str, np.ndarray]:
    """Everything a reader gets from a run, as bits (NaN payloads and -0.0 compared too)."""
    out = {
        "values": bits(view.values().to_numpy().ravel()),
        "gradients": bits(view.gradients().to_numpy().ravel()),
        "metrics": bits(view.metrics().drop(columns="wall_time").to_numpy().ravel()),
    }
    u = view.updates()
    for col in ("value_before", "grad", "value_after", "lr"):
        out[f"updates.{col}"] = bits(u[col])
    for step in view.traced_steps():
        nodes = view.nodes(step)
        out[f"nodes({step}).value"] = bits(nodes["value"])
        out[f"nodes({step}).grad"] = bits(nodes["grad"])
    return out


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].tolist() == b[key].tolist(), key


def test_a_0_1_0_file_reads_identically_after_upgrade(tmp_path):
    old = tmp_path / "old.db"
    shutil.copy(FIXTURE, old)
    new = tmp_path / "new.db"
    train("toy", steps=3, db=new, seed=7, name="toy-0.1.0")  # today's code, compressed
    expected = _specials_run(str(new), "specials-0.1.0")
    with tracer.connect(old) as store:  # a writable open upgrades the schema
        engine = store.engine
        with engine.connect() as conn:
            codecs = conn.execute(sa.text("SELECT DISTINCT codec FROM traces")).scalars().all()
            assert codecs == [None]  # rows as 0.1.0 wrote them, left as they were
        with tracer.connect(new) as fresh:
            with fresh.engine.connect() as conn:
                codecs = conn.execute(sa.text("SELECT DISTINCT codec FROM traces")).scalars()
                assert list(codecs) == [ZSTD]
            for name in ("toy-0.1.0", "specials-0.1.0"):
                _same(_reads(store.run(name)), _reads(fresh.run(name)))
        view = store.run("specials-0.1.0")
        for step, (data, grad) in enumerate(expected):
            assert bits(view.nodes(step)["value"]).tolist() == data.tolist()
            assert bits(view.nodes(step)["grad"]).tolist() == grad.tolist()
        assert bits(view.values().to_numpy()[0]).tolist() == bits(SPECIALS).tolist()


def test_downgrade_decompresses_and_upgrade_reads_the_same(db_url):
    """Down to 0001 the arrays become plain float64 again (what 0.1.0 reads); back up,
    old and new rows side by side read bit for bit as recorded. PostgreSQL stores the
    already-compressed columns EXTERNAL (no second compression by TOAST)."""
    expected = _specials_run(db_url, "specials")
    with tracer.connect(db_url) as store:
        before = _reads(store.run("specials"))
    _alembic(db_url, lambda cfg: command.downgrade(cfg, "0001"))
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert "codec" not in {c["name"] for c in sa.inspect(conn).get_columns("traces")}
            blobs = conn.execute(sa.text("SELECT data FROM traces ORDER BY step")).scalars()
            for blob, (data, _) in zip(blobs, expected, strict=True):
                assert bytes(blob) == data.astype("<u8").tobytes()
    finally:
        engine.dispose()
    _alembic(db_url, lambda cfg: command.upgrade(cfg, "head"))
    _specials_run(db_url, "specials-again")
    with tracer.connect(db_url) as store:
        _same(_reads(store.run("specials")), before)
        _same(_reads(store.run("specials-again")), before)
        if db_url.startswith("postgresql"):
            with store.engine.connect() as conn:
                storage = conn.execute(
                    sa.text(
                        "SELECT a.attname, a.attstorage FROM pg_attribute a "
                        "JOIN pg_class c ON c.oid = a.attrelid "
                        "WHERE c.relname IN ('traces', 'param_values', 'param_grads') "
                        "AND c.relnamespace = "
                        "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
                        "AND a.attname IN ('data', 'grad')"
                    )
                ).all()
            assert sorted(storage) == [("data", "e")] * 2 + [("grad", "e")] * 2


def test_arrays_that_do_not_shrink_are_stored_plain():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(40)  # 40 random doubles: zstd cannot beat 320 bytes
    kind, a, b = codec.encode_pair(noise, noise[::-1].copy())
    assert kind == PLAIN and a == noise.astype("<f8").tobytes()
    zeros = np.zeros(4000)
    kind, a, b = codec.encode_pair(zeros, zeros)
    assert kind == ZSTD and len(a) + len(b) < 200
    assert (decode_floats(b, kind, 4000) == 0).all()


def test_a_matrix_of_rows_in_mixed_codecs():
    rows = np.array([[0.5, -0.0, NAN_SIGNALLING], [np.inf, 5e-324, 0.0], [1.0, 2.0, 3.0]])
    blobs = [rows[0].tobytes(), encode_floats(rows[1], ZSTD), encode_floats(rows[2], PLAIN)]
    matrix = codec.decode_matrix(blobs, [None, ZSTD, PLAIN], 3)
    assert bits(matrix.ravel()).tolist() == bits(rows.ravel()).tolist()
    with pytest.raises(GradtraceError, match="param_data holds 16 bytes, expected 24"):
        codec.decode_matrix([b"\0" * 16], [None], 3, "param_data")
    with pytest.raises(GradtraceError, match="codec 7, unknown"):
        codec.decode_matrix([b"\0" * 24], [7], 3, "param_data")
