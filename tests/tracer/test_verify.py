"""Re-execution check: RunView.verify and `gradtrace verify`, on both backends."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from gradtrace.engine import MLP, SGD, Value
from gradtrace.tracer.analysis.verify import recompute
from gradtrace.tracer.storage.codec import checksum, decode_floats, encode_floats
from gradtrace.tracer.storage.models import Graph, Run, Trace, Update
from helpers.compare import record_run
from helpers.trace import batch_loss, fbits, small_model, train

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
    assert spec["type"] == result.optimizer == {"adam": "Adam", "adamw": "AdamW"}[opt]
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


def _move_update(url: str, rid: str, step: int, column: str, by: float) -> str:
    """Move one recorded update number of parameter 4 by ``by``; its parameter's name."""
    with tracer.connect(url, readonly=True) as store:
        run = store.run(rid)
        key, name = run.key, run.parameters()["name"][4]
    engine = _sql_engine(url)
    with engine.begin() as conn:
        col = getattr(Update, column)
        conn.execute(
            sa.update(Update)
            .where(Update.run_key == key, Update.step == step, Update.param == 4)
            .values({column: col + by})
        )
    engine.dispose()
    return name


def _verify(url: str, rid: str):
    with tracer.connect(url, readonly=True) as store:
        return store.run(rid).verify()


def test_a_changed_value_before_gradient_or_last_update_is_found(db_url):
    rid = record_run(db_url, "before", steps=5)
    name = _move_update(db_url, rid, 2, "value_before", 1e-9)
    m = _verify(db_url, rid).mismatch
    assert (m.step, m.node, m.label, m.what) == (2, None, name, "update")
    rid = record_run(db_url, "last", steps=5)
    _move_update(db_url, rid, 4, "value_after", 1e-9)  # no next step to agree with
    m = _verify(db_url, rid).mismatch
    assert (m.step, m.label, m.what) == (4, name, "update")
    rid = record_run(db_url, "grad", steps=5)  # the rows agree, the parameter arrays do not
    _move_update(db_url, rid, 2, "grad", 1e-9)
    m = _verify(db_url, rid).mismatch
    assert (m.step, m.label, m.what) == (2, name, "update")


def test_a_changed_adam_update_is_found(db_url):
    with tracer.record("adam", db=db_url) as run:
        for _ in train(4, run, opt="adam"):
            pass
    assert _verify(db_url, run.id).ok
    name = _move_update(db_url, run.id, 1, "value_after", 1e-9)
    m = _verify(db_url, run.id).mismatch
    assert (m.step, m.label, m.what) == (1, name, "update")
    assert abs((m.expected - m.got) - 1e-9) < 1e-12


def _loop(url: str, name: str, *, clip: float | None = None, log_lr: float | None = None):
    """SGD(lr=0.1) on the small moons model; gradients clipped to ±clip after log(),
    or ``lr=log_lr`` logged although the optimizer uses 0.1."""
    model, X, y = small_model(0)
    opt = SGD(model.parameters(), lr=0.1)
    with tracer.record(name, db=url) as run:
        run.watch(model, optimizer=opt)
        for _ in range(4):
            loss, acc = batch_loss(model, X, y)
            model.zero_grad()
            loss.backward()
            run.log(loss, acc=acc, **({} if log_lr is None else {"lr": log_lr}))
            if clip is not None:
                for p in model.parameters():
                    p.grad = max(-clip, min(clip, p.grad))
            opt.step()
    return run.id


def test_gradients_clipped_after_log_are_not_called_a_mismatch(db_url):
    r = _verify(db_url, _loop(db_url, "clipped", clip=1e-3))
    assert r.ok and r.steps == 4 and r.updates == 0 and r.optimizer == "SGD"
    assert r.skipped_updates.startswith("from step 0 on: the update of step 0 does not follow")
    assert "clipped" in r.skipped_updates and "fit lr" not in r.skipped_updates
    out = CliRunner().invoke(cli, ["verify", "clipped", "--db", db_url])
    assert out.exit_code == 0 and "updates not checked: from step 0 on" in out.output


def test_a_logged_lr_that_is_not_the_optimizers_is_not_called_a_mismatch(db_url):
    r = _verify(db_url, _loop(db_url, "lr", log_lr=0.3))
    assert r.ok and r.updates == 0
    assert "fit lr = 0.1 rather than the logged 0.3" in r.skipped_updates
    assert _verify(db_url, _loop(db_url, "same lr", log_lr=0.1)).updates > 0


def test_a_foreign_op_is_reported_as_not_re_computed(db_url):
    rid = record_run(db_url, "foreign", steps=3)
    with tracer.connect(db_url, readonly=True) as store:
        run = store.run(rid)
        key, ops = run.key, run.graph(0)["op"].tolist()
    engine = _sql_engine(db_url)
    with engine.begin() as conn:  # every relu now reads as an op gradtrace does not know
        for gk, text in conn.execute(
            sa.select(Graph.graph_key, Graph.ops).where(Graph.run_key == key)
        ):
            new = " ".join("sin" if op == "relu" else op for op in text.split(" "))
            conn.execute(sa.update(Graph).where(Graph.graph_key == gk).values(ops=new))
    engine.dispose()
    r = _verify(db_url, rid)
    n_relu = ops.count("relu")
    assert r.ok and r.steps == 3 and 0 < r.nodes < 3 * len(ops)
    assert r.skipped_nodes.startswith(f"{3 * n_relu} values of op 'sin', which gradtrace")
    out = CliRunner().invoke(cli, ["verify", rid, "--db", db_url])
    assert out.exit_code == 0 and "not re-computed: " in out.output


def test_a_nan_of_another_payload_verifies(db_url):
    """Issue 19, item 4: re-computing ``w * NaN`` may give a NaN of other bits than
    the recorded one (CPython's specialised ``+`` keeps another operand's payload):
    any NaN matches any NaN; -0.0 still does not match 0.0."""
    w = Value(0.5)
    with tracer.record("nan", db=db_url) as run:
        run.watch([w])
        loss = w * Value(float("nan")) + 1.0
        loss.backward()
        run.log(loss)
    with tracer.connect(db_url, readonly=True) as store:
        view = store.run(run.id)
        key, ops = view.key, view.nodes(0)["op"].tolist()
    engine = _sql_engine(db_url)
    with engine.begin() as conn:
        blob, codec = conn.execute(
            sa.select(Trace.data, Trace.codec).where(Trace.run_key == key, Trace.step == 0)
        ).one()
        values = decode_floats(blob, codec)
        inner = [i for i, op in enumerate(ops) if op and np.isnan(values[i])]
        assert inner  # the product and the sum
        other = values.copy()
        other[inner] = np.frombuffer((0xFFF8_0000_0000_1234).to_bytes(8, "little"), "<f8")[0]
        data = encode_floats(other, codec)
        grad = conn.execute(sa.select(Trace.grad).where(Trace.run_key == key)).scalar_one()
        conn.execute(
            sa.update(Trace)
            .where(Trace.run_key == key, Trace.step == 0)
            .values(data=data, crc=None if codec else checksum(data, grad))  # a sound row
        )
    engine.dispose()
    with tracer.connect(db_url, readonly=True) as store:
        result = store.run(run.id).verify()
    assert result.ok, result.mismatch
    assert result.nodes == len(ops)
