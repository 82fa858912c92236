"""The optimizer of a run: AdamW with warmup and a cosine (or constant) schedule."""

from __future__ import annotations

import optax

from ._config import OptimizerConfig

__all__ = ["make_optimizer"]


def make_optimizer(config: OptimizerConfig, steps: int) -> optax.GradientTransformation:
    """AdamW with linear warmup then cosine decay (or constant), after global-norm clipping.

    It is applied to the trainable leaves only (`TrainState.params`): frozen statistics such
    as `sciops.data.Normalizer` never reach it, so weight decay cannot move them.

    **Arguments:**

    - `config`: the `train.optimizer` section.
    - `steps`: the run's total steps (the length of the cosine schedule).
    """
    if config.schedule == "cosine":
        warm = min(config.warmup_steps, max(steps - 1, 0))
        schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0 if warm else config.lr, peak_value=config.lr, warmup_steps=warm,
            decay_steps=max(steps, warm + 1), end_value=config.lr * config.final_lr_fraction)
    elif config.warmup_steps:
        schedule = optax.linear_schedule(0.0, config.lr, config.warmup_steps)
    else:
        schedule = optax.constant_schedule(config.lr)
    adam = optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay)
    if config.clip_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), adam)
