"""Read-ahead of training batches (`sciops.data.prefetch`, `data.prefetch`): the order is kept,
errors arrive at their item, the thread stops when the consumer stops, and a fit with
read-ahead is bit-identical to one without, from memory and streamed from disk."""

import pathlib
import threading
import time

import equinox as eqx
import jax
import numpy as np
import pytest

from sciops import ConfigError
from sciops.data import prefetch
from sciops.train import config_from_dict, fit

HERE = pathlib.Path(__file__).parent


def _threads():
    return [t for t in threading.enumerate() if t.name == "sciops-prefetch"]


def test_order_and_read_ahead_bounded():
    produced = []

    def items():
        for i in range(20):
            produced.append(i)
            yield i

    got = []
    gen = prefetch(items(), size=3)
    for i, x in enumerate(gen):
        got.append(x)
        if i == 4:
            deadline = time.monotonic() + 10
            while len(produced) < 9 and time.monotonic() < deadline:
                time.sleep(0.01)
            # 5 taken, 3 waiting in the queue, at most 1 more held by the blocked producer
            assert 8 <= len(produced) <= 9
    assert got == list(range(20))
    assert not _threads()


def test_error_raised_at_its_item():
    def items():
        yield 0
        yield 1
        raise KeyError("sample 2 is corrupt")

    got = []
    with pytest.raises(KeyError, match="sample 2 is corrupt"):
        for x in prefetch(items(), size=2):
            got.append(x)
    assert got == [0, 1]


def test_closing_stops_the_thread():
    def forever():
        i = 0
        while True:
            yield i
            i += 1

    gen = prefetch(forever(), size=2)
    assert [next(gen) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert len(_threads()) == 1
    gen.close()
    assert not _threads()


def test_size_zero_runs_in_the_caller():
    seen = []

    def items():
        for i in range(3):
            seen.append(threading.current_thread() is threading.main_thread())
            yield i

    assert list(prefetch(items(), size=0)) == [0, 1, 2] and all(seen)
    with pytest.raises(ValueError, match="size must be >= 0"):
        list(prefetch(items(), size=-1))


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import _toy_family  # registers the family "toy"

    return _toy_family


def _raw(tmp_path, **data):
    from sciops.data import write_hdf5

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 2, 8, 8)).astype(np.float32)
    y = (np.tanh(x[:, :1] - 0.5 * x[:, 1:]) + 0.5).astype(np.float32)
    path = tmp_path / "toy.h5"
    if not path.exists():
        write_hdf5(path, {"x": x, "y": y}, {"problem": "toy"})
    return {"name": "toy", "seed": 5,
            "data": {"path": str(path), "n_test": 8, **data},
            "model": {"family": "toy", "width": 8},
            "train": {"steps": 12, "batch_size": 8, "eval_batch_size": 8, "log_every": 4,
                      "progress": False, "plots": False, "mesh": {"data": 1},
                      "optimizer": {"lr": 3e-2, "warmup_steps": 2}}}


def test_fit_with_read_ahead_equals_fit_without(tmp_path, toy):
    runs = {}
    for name, data in (("memory-0", {"prefetch": 0}), ("memory-3", {"prefetch": 3}),
                       ("disk-2", {"in_memory": False, "prefetch": 2})):
        runs[name] = fit(config_from_dict(_raw(tmp_path, **data)), out=tmp_path / name)
    ref = eqx.filter(runs["memory-0"].model, eqx.is_array)
    for name in ("memory-3", "disk-2"):
        got = eqx.filter(runs[name].model, eqx.is_array)
        for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert runs[name].metrics == runs["memory-0"].metrics
    assert not _threads()


@pytest.mark.parametrize("value", [-1, 1.5, True, "two"])
def test_bad_prefetch_names_the_key(tmp_path, toy, value):
    with pytest.raises(ConfigError, match=r"data\.prefetch: expected"):
        config_from_dict(_raw(tmp_path, prefetch=value))
