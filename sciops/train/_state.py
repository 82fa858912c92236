"""The training state and the one jitted step made from a family's loss.

`TrainState` is a pytree of everything a step changes or reads: the trainable leaves, the
frozen rest of the model (normalisers, tables: jit arguments, never baked-in constants), the
optimizer state, the step count and the run's key. `make_step` turns a family's loss and an
optax optimizer into ``step(state, batch) -> (state, StepOutput)``; `make_loss` is its loss
under the memory levers (bfloat16 compute, rematerialisation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ..models import Family
from ..nn import MemoryPolicy, cast_floating, use_memory_policy

__all__ = ["TrainState", "StepOutput", "make_loss", "make_step", "init_state"]


class TrainState(eqx.Module):
    """Everything one optimizer step reads and writes.

    **Fields:**

    - `params`: the trainable leaves of the model (`None` elsewhere, `eqx.partition`).
    - `frozen`: the rest of the model (frozen statistics, tables, static structure).
    - `opt_state`: the optax state of `params`.
    - `step`: the number of steps taken (an int32 scalar).
    - `key`: the run's training key as raw key data (`jax.random.key_data`, which every
      process can place on a global mesh); step ``s`` draws from ``fold_in(key, s)``.
    """

    params: Any
    frozen: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array

    @property
    def model(self) -> Any:
        """The whole model: `params` combined with `frozen`."""
        return eqx.combine(self.params, self.frozen)


class StepOutput(eqx.Module):
    """What a step reports: the batch loss, the loss's named metrics, and whether every
    updated parameter is finite."""

    loss: jax.Array
    aux: dict[str, jax.Array]
    finite: jax.Array


def init_state(model: Any, trainable: Any, optimizer: optax.GradientTransformation,
               key: jax.Array, step: int = 0) -> TrainState:
    """A fresh `TrainState` for `model`; `trainable` is a pytree of bools like `model`."""
    params, frozen = eqx.partition(model, trainable)
    return TrainState(params=params, frozen=frozen, opt_state=optimizer.init(params),
                      step=jnp.asarray(step, jnp.int32), key=jax.random.key_data(key))


def make_loss(family: Family, model_config: Any, policy: MemoryPolicy | None = None
              ) -> Callable[..., tuple[jax.Array, dict[str, jax.Array]]]:
    """The family's loss as a function of the trainable leaves, under the memory levers.

    **Arguments:**

    - `family`, `model_config`: the model family and its `model:` section.
    - `policy`: the memory levers (`TrainConfig.memory_policy`, default float32 without
      rematerialisation). With a `compute_dtype` the trainable leaves are cast to it inside
      the function, so master weights stay float32 and their gradients come back float32; the
      frozen leaves (normalisers, tables) are not cast. The loss is traced under
      `sciops.nn.use_memory_policy`, so the models cast their inputs and rematerialise their
      blocks as it says (docs/memory.md).

    **Returns:** ``loss(params, frozen, batch, key) -> (scalar, metrics)``, differentiable in
    `params`.
    """
    policy = MemoryPolicy() if policy is None else policy

    def loss(params: Any, frozen: Any, batch: dict, key: jax.Array):
        with use_memory_policy(policy):
            model = eqx.combine(cast_floating(params, policy.compute_dtype), frozen)
            return family.loss(model_config, model, batch, key=key)

    return loss


def make_step(family: Family, model_config: Any, optimizer: optax.GradientTransformation,
              policy: MemoryPolicy | None = None
              ) -> Callable[[TrainState, dict], tuple[TrainState, StepOutput]]:
    """One jitted training step: the family's loss, its gradient, the optimizer update.

    **Arguments:**

    - `family`: the model family (its `loss`).
    - `model_config`: the `model:` section passed to the loss.
    - `optimizer`: an optax transformation of the trainable leaves.
    - `policy`: the memory levers (bfloat16 compute, rematerialisation), see `make_loss`.

    **Returns:** ``step(state, batch) -> (state, StepOutput)``.
    """
    loss_fn = make_loss(family, model_config, policy)

    @eqx.filter_jit
    def step(state: TrainState, batch: dict) -> tuple[TrainState, StepOutput]:
        key = jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.frozen, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
        new = TrainState(params=params, frozen=state.frozen, opt_state=opt_state,
                         step=state.step + 1, key=state.key)
        return new, StepOutput(loss=loss, aux=aux, finite=finite)

    return step
