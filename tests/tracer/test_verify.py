"""Re-execution check: RunView.verify and `gradtrace verify`, on both backends."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from gradtrace.engine import MLP, Value
from gradtrace.tracer.analysis.verify import recompute
from gradtrace.tracer.storage.codec import decode_floats, encode_floats
from gradtrace.tracer.storage.models import Run, Trace, Update
from helpers.compare import record_run
from helpers.trace import fbits, train

from gradtrace import tracer
from gradtrace.cli.main import cli


def _sql_engine(url: str) -> sa.Engine:
    return sa.create_engine(url)


def test_a_recording_verifies_with_zero_mismatches(db_url):
    rid = record_run(db_url, "clean", steps=12)
    with tracer.connect(db_url, readonly=True) as store:
        run = store.run(rid)
        result = run.verify()
        n_nodes = len(run.graph(0))
        n_params = len(run.parameters())
        assert run.info["optimizer"] == {"type": "SGD", "momentum": 0.0, "weight_decay": 0.0}
    assert result.ok and result.mismatch is None
    assert result.steps == 12 and result.nodes == 12 * n_nodes
    assert result.updates == 12 * n_params and result.optimizer == "SGD"
    out = CliRunner().invoke(cli, ["verify", rid, "--db", db_url])
    assert out.exit_code == 0, out.output
    assert f"12 steps, {12 * n_nodes} node values and gradients re-computed exactly" in out.output


def test_a_flipped_byte_in_a_trace_blob_is_found(db_url):
    rid = record_run(db_url, "flipped", steps=6)
    with tracer.connect(db_url, readonly=True) as store:
        run = store.run(rid)
        nodes = run.nodes(3)
        key = run.key
    node = int(np.flatnonzero(nodes["op"].to_numpy(dtype=object) == "*")[-1])
    engine = _sql_engine(db_url)
    with engine.begin() as conn:
        blob, codec = conn.execute(
            sa.select(Trace.data, Trace.codec).where(Trace.run_key == key, Trace.step == 3)
        ).one()
        values = decode_floats(blob, codec)
        raw = bytearray(values.tobytes())
        raw[8 * node] ^= 0x01  # the lowest mantissa byte of one node's value
        flipped = np.frombuffer(bytes(raw), dtype="<f8").copy()
        conn.execute(
            sa.update(Trace)
            .where(Trace.run_key == key, Trace.step == 3)
            .values(data=encode_floats(flipped, codec))  # the tracer's own encoding
        )
    engine.dispose()
    with tracer.connect(db_url, readonly=True) as store:
        result = store.run(rid).verify()
    m = result.mismatch
    assert not result.ok and (m.step, m.node, m.op, m.what) == (3, node, "*", "value")
    assert fbits(m.expected) == fbits(flipped[node]) and fbits(m.got) == fbits(values[node])
    assert result.steps == 3  # steps 0, 1 and 2 re-computed exactly before it
    out = CliRunner().invoke(cli, ["verify", rid, "--db", db_url])
    assert out.exit_code == 1
    assert f"MISMATCH at step 3, node {node} (op '*')" in out.output


def test_a_changed_update_is_found(db_url):
    rid = record_run(db_url, "upd", steps=5)
    with tracer.connect(db_url, readonly=True) as store:
        key = store.run(rid).key
    engine = _sql_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.update(Update)
            .where(Update.run_key == key, Update.step == 2, Update.param == 4)
            .values(value_after=Update.value_after + 1e-9)
        )
    engine.dispose()
    with tracer.connect(db_url, readonly=True) as store:
        run = store.run(rid)
        result = run.verify()
        name = run.parameters()["name"][4]
    m = result.mismatch
    assert (m.step, m.node, m.label, m.what) == (2, None, name, "update")
    assert abs((m.expected - m.got) - 1e-9) < 1e-12  # the recorded one was moved


@pytest.mark.parametrize("opt", ["adam", "adamw"])
def test_adam_and_adamw_updates_are_re_computed_bit_for_bit(db_url, opt):
    with tracer.record(opt, db=db_url) as run:
        for _ in train(5, run, opt=opt):
            pass
        key, n = run.run_key, len(run.params)
    with tracer.connect(db_url, readonly=True) as store:
        result = store.run(opt).verify()
        spec = store.run(opt).info["optimizer"]
    assert spec["type"] == {"adam": "Adam", "adamw": "AdamW"}[opt]
    assert result.ok and result.updates == 5 * n and result.skipped_updates is None
    engine = _sql_engine(db_url)
    with engine.begin() as conn:  # one update moved by a last bit: the moments must see it
        conn.execute(
            sa.update(Update)
            .where(Update.run_key == key, Update.step == 3, Update.param == 2)
            .values(value_after=sa.func.abs(Update.value_after) * 1.0000000000000002)
        )
    engine.dispose()
    with tracer.connect(db_url, readonly=True) as store:
        m = store.run(opt).verify().mismatch
    assert m is not None and (m.step, m.what) == (3, "update")


def test_updates_of_unknown_optimizers_are_not_claimed(db_url):
    for opt in ("lion", "hand"):
        with tracer.record(opt, db=db_url) as run:
            for _ in train(3, run, opt="hand"):
                pass
    engine = _sql_engine(db_url)
    with engine.begin() as conn:  # a run recorded before migration 0005, and a stranger
        conn.execute(sa.update(Run).where(Run.name == "hand").values(optimizer=None))
        conn.execute(sa.update(Run).where(Run.name == "lion").values(optimizer={"type": "Lion"}))
    engine.dispose()
    with tracer.connect(db_url, readonly=True) as store:
        lion, hand = store.run("lion").verify(), store.run("hand").verify()
    assert lion.ok and lion.steps == 3 and lion.updates == 0
    assert lion.skipped_updates == "Lion is not re-computed"
    assert hand.ok and hand.skipped_updates == "the run recorded no optimizer"


def test_recompute_matches_the_engine_on_every_op():
    x, y = Value(-1.5), Value(0.25)
    exprs = [
        x + y, x - y, x * y, x / y, x**3, -x, x.relu(), y.relu(),
        x.tanh(), y.exp(), y.log(), x.sigmoid(), (x * y) ** -0.5, x / 0.0,
    ]  # fmt: skip
    root = sum(exprs[1:], exprs[0]) * MLP(1, [1], seed=0)([y])
    root.backward()
    nodes = root.topo()
    index = {id(v): i for i, v in enumerate(nodes)}
    ops = [v.op for v in nodes]
    parents = [[index[id(p)] for p in v.parents] + [-1, -1] for v in nodes]
    args = [v.exponent if v.exponent is not None else float("nan") for v in nodes]
    values, grads = recompute(
        ops, [p[0] for p in parents], [p[1] for p in parents], args, [v.data for v in nodes]
    )
    want_v = np.array([v.data for v in nodes])
    want_g = np.array([v.grad for v in nodes])
    assert (values.view(np.uint64) == want_v.view(np.uint64)).all()
    assert (grads.view(np.uint64) == want_g.view(np.uint64)).all()
    assert set(ops) >= {"+", "-", "*", "/", "**", "neg", "relu", "tanh", "exp", "log", "sigmoid"}
