"""A learned one-step simulator on a mesh: inputs, normalisers, the network, the step rule.

State fields (velocity) enter normalised at time t and leave as a normalised change to t+1;
output fields (pressure) are predicted directly at t+1. Node types enter one-hot. Positional
encodings (coordinates, Laplacian eigenvectors with random sign flips in training, random-walk
probabilities) are appended for the transformer; MeshGraphNet gets relative positions on edges
(Pfaff et al. 2021). Everything acts on ONE trajectory sample (no batch axis).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from ... import _random
from ..._errors import DataError
from ...data import Normalizer
from ._mgn import MeshGraphNet
from ._partition import PARTITION_FIELD, is_partitioned
from ._transformer import MeshTransformer

__all__ = ["N_NODE_TYPES", "NORMAL", "MeshSimulator", "check_prepared"]

N_NODE_TYPES = 9  # MeshGraphNets' NodeType.SIZE
NORMAL = 0  # fluid nodes: the only ones that receive training noise (Pfaff et al. 2021)


def check_prepared(sample_keys, net) -> None:
    """DataError if a batch lacks the graph fields that `prepare` adds."""
    need = net.prepared_field
    if need not in sample_keys:
        raise DataError(f"mesh batch has no {need!r} field: mesh data sets must go through "
                        "sciops.models.meshformer.prepare(config, dataset) before batching "
                        "(the driver does it through Family.prepare)")


class MeshSimulator(eqx.Module):
    """One step $x^{t+1} = x^t + \\mathrm{dec}_\\Delta(\\mathrm{net}(\\ldots))$ on a padded mesh."""

    net: MeshTransformer | MeshGraphNet
    state_norm: Normalizer
    delta_norm: Normalizer
    out_norm: Normalizer | None
    pos_norm: Normalizer
    edge_norm: Normalizer | None
    state_fields: tuple[str, ...] = eqx.field(static=True)
    state_channels: tuple[int, ...] = eqx.field(static=True)
    output_fields: tuple[str, ...] = eqx.field(static=True)
    output_channels: tuple[int, ...] = eqx.field(static=True)
    evolving_types: tuple[int, ...] = eqx.field(static=True)
    known_node_types: tuple[int, ...] = eqx.field(static=True)  # those seen in training
    coordinates: bool = eqx.field(static=True)
    laplacian_pe: int = eqx.field(static=True)
    random_walk_pe: int = eqx.field(static=True)
    n_graphs: int = eqx.field(static=True)

    # --- inputs -------------------------------------------------------------------------
    def node_features(self, sample: dict[str, Any], state: Float[Array | np.ndarray, "nodes channels"], *,
                      key: PRNGKeyArray | None = None) -> Float[Array, "nodes features"]:
        mask = sample["node_mask"].astype(state.dtype)[:, None]
        onehot = jax.nn.one_hot(sample["node_type"], N_NODE_TYPES, dtype=state.dtype)
        feats = [self.state_norm.encode(state) * mask, onehot * mask]
        if self.coordinates:
            feats.append(self.pos_norm.encode(sample["points"]) * mask)
        if self.laplacian_pe:
            pe = sample["pe_laplacian"].astype(state.dtype)
            if key is not None:  # eigenvector signs are arbitrary: learn invariance to them
                signs = jax.random.rademacher(key, (pe.shape[1],), dtype=state.dtype)
                pe = pe * signs
            # eigenvectors are unit-norm over n nodes: rescale to O(1) entries
            n = jnp.maximum(sample["node_mask"].sum(), 1).astype(state.dtype)
            feats.append(pe * jnp.sqrt(n))
        if self.random_walk_pe:
            feats.append(sample["pe_random_walk"].astype(state.dtype))
        return jnp.concatenate(feats, axis=-1)

    def evolving(self, sample: dict[str, Any]) -> Bool[Array, " nodes"]:
        """Nodes whose state the model predicts (the others follow boundary conditions)."""
        return jnp.isin(sample["node_type"], jnp.asarray(self.evolving_types)) & sample["node_mask"]

    def node_noise(self, key: PRNGKeyArray, sample: dict[str, Any],
                   like: Float[Array | np.ndarray, "nodes channels"]
                   ) -> Float[Array, "nodes channels"]:
        """Standard normal noise per node, the same numbers for a node whichever device
        layout the sample has: on a partitioned mesh (`sciops.models.meshformer.partition`)
        drawn in the original node order and gathered into the device blocks."""
        if is_partitioned(sample):
            full = _random.normal(key, (sample["part_node_slot"].shape[0], like.shape[-1]),
                                  like.dtype)
            return full[sample[PARTITION_FIELD]]
        return _random.normal(key, like.shape, like.dtype)

    # --- network ------------------------------------------------------------------------
    def predict(self, sample: dict[str, Any], state: Float[Array | np.ndarray, "nodes channels"], *,
                key: PRNGKeyArray | None = None) -> Float[Array, "nodes out"]:
        """Normalised outputs: the change of the state fields, then the output fields."""
        check_prepared(sample.keys(), self.net)
        x = self.node_features(sample, state, key=key)
        return self.net.on_sample(x, sample, self.edge_norm)

    def step(self, sample: dict[str, Any], state: Float[Array | np.ndarray, "nodes channels"]
             ) -> tuple[Float[Array, "nodes channels"], Float[Array, "nodes outc"]]:
        """Physical next state (all nodes, boundary not imposed) and output fields."""
        y = self.predict(sample, state)
        c = sum(self.state_channels)
        nxt = state + self.delta_norm.decode(y[:, :c])
        out = self.out_norm.decode(y[:, c:]) if self.out_norm is not None else y[:, c:]
        return nxt, out

    def rollout(self, sample: dict[str, Any], state0: Float[Array | np.ndarray, "nodes channels"],
                boundary: Float[Array | np.ndarray, "time nodes channels"]
                ) -> tuple[Float[Array, "time nodes channels"], Float[Array, "time nodes outc"]]:
        """Autoregressive rollout: ``len(boundary)`` steps; after each, the non-evolving nodes
        take their values from `boundary` (the true or held boundary conditions)."""
        evolving = self.evolving(sample)[:, None]

        def body(x, b):
            nxt, out = self.step(sample, x)
            nxt = jnp.where(evolving, nxt, b)
            return nxt, (nxt, out)

        _, (states, outs) = jax.lax.scan(body, state0, boundary)
        return states, outs

    # --- helpers on samples ------------------------------------------------------------
    def state_at(self, sample: dict[str, Any], t) -> Float[Array, "nodes channels"]:
        return jnp.concatenate([sample[f][t] for f in self.state_fields], axis=-1)

    def outputs_at(self, sample: dict[str, Any], t) -> Float[Array, "nodes outc"]:
        if not self.output_fields:
            return jnp.zeros(sample["points"].shape[:1] + (0,), sample["points"].dtype)
        return jnp.concatenate([sample[f][t] for f in self.output_fields], axis=-1)
