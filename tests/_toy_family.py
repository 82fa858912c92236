"""A tiny model family for testing the driver in isolation: a pointwise affine map on grids.

y = W x + b per grid point, after a frozen normaliser of x (fitted in `build`), so tests can
check that frozen leaves stay put and that transfer learning trains only chosen parts.
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from sciops.models import Family


class Scale(eqx.Module):
    __sciops_frozen__ = True
    mean: jax.Array
    std: jax.Array


class Pointwise(eqx.Module):
    norm: Scale
    first: eqx.nn.Linear
    second: eqx.nn.Linear

    def __call__(self, x):
        c = x.shape[0]
        z = (x - jax.lax.stop_gradient(self.norm.mean)) / jax.lax.stop_gradient(self.norm.std)
        h = jax.vmap(self.first, in_axes=1, out_axes=1)(z.reshape(c, -1))
        h = jax.vmap(self.second, in_axes=1, out_axes=1)(jnp.tanh(h))
        return h.reshape(-1, *x.shape[1:])


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    width: int = 8


def build(config, train, *, key):
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


FAMILIES = {"toy": Family("toy", ToyConfig, build, loss, metrics)}
