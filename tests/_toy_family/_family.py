"""The toy family's functions: config, build (fits the frozen normaliser), loss and metrics."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from sciops import DataError

from ._model import Pointwise, Scale


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    width: int = 8


def build(config, train, *, key):
    for k in ("x", "y"):
        if k not in train:
            raise DataError(f"{train.name}: the toy family needs field {k!r}")
    x = np.asarray(train.load()["x"], dtype=np.float32)
    k1, k2 = jax.random.split(key)
    c_in, c_out = train.shape("x")[0], train.shape("y")[0]
    return Pointwise(Scale(jnp.asarray(x.mean()), jnp.asarray(x.std() + 1e-6)),
                     eqx.nn.Linear(c_in, config.width, key=k1),
                     eqx.nn.Linear(config.width, c_out, key=k2))


def _rel_l2(model, batch):
    pred = jax.vmap(model)(batch["x"])
    err = jnp.sqrt(jnp.sum((pred - batch["y"]) ** 2, axis=(1, 2, 3)))
    return err / jnp.sqrt(jnp.sum(batch["y"] ** 2, axis=(1, 2, 3)))


def loss(config, model, batch, *, key):
    e = _rel_l2(model, batch)
    return jnp.mean(e), {"rel_l2": jnp.mean(e)}


def metrics(config, model, batch):
    return {"l2": _rel_l2(model, batch)}
