"""Configs of the `meshformer` and `meshgraphnet` families (the YAML `model:` section)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from ..._errors import ConfigError
from ...nn._graph import Neighbourhood

__all__ = ["MeshGraphNetConfig", "MeshTransformerConfig", "Neighbourhood"]


def _check_common(c) -> None:
    if not c.state_fields:
        raise ConfigError("model.state_fields: need at least one field that evolves in time")
    overlap = set(c.state_fields) & set(c.output_fields)
    if overlap:
        raise ConfigError(f"model.output_fields: {sorted(overlap)} are also state_fields")
    if c.noise_std < 0:
        raise ConfigError(f"model.noise_std: must be >= 0, got {c.noise_std}")
    if any(t < 0 or t >= 9 for t in c.loss_node_types):
        raise ConfigError(f"model.loss_node_types: node types are 0..8, got {list(c.loss_node_types)}")
    if not c.output_loss_weight >= 0:
        raise ConfigError(f"model.output_loss_weight: must be >= 0, got {c.output_loss_weight}")
    if c.partition not in ("rcb", "metis"):
        raise ConfigError(f"model.partition: expected 'rcb' or 'metis', got {c.partition!r}")
    if c.edge_multiple < 1:
        raise ConfigError(f"model.edge_multiple: must be >= 1, got {c.edge_multiple}")


@dataclasses.dataclass(frozen=True)
class MeshTransformerConfig:
    """The mesh transformer of Garnier et al. (2025): adjacency-restricted attention.

    **Fields:**

    - `state_fields` [-]: fields advanced in time (input at t, predicted as the change to t+1:
      the velocity-change target of MeshGraphNets).
    - `output_fields` [-]: fields predicted directly at t+1 and not fed back (optional, e.g.
      pressure; none by default, as MeshGraphNets' cylinder model).
    - `output_loss_weight` [1]: their weight in the loss (the loss is the weighted mean of
      the per-channel MSEs, state channels weighing 1).
    - `loss_node_types` [-]: node types that evolve (MeshGraphNets codes: 0 fluid, 5
      outflow); the loss uses them, and a rollout overwrites the others from the boundary
      conditions.
    - `noise_std` [state units]: Gaussian noise added to the state inputs on fluid nodes
      during training (physical units; Pfaff et al. use 0.02 for cylinder flow). The
      normalisers are computed on noised inputs and on the noise-correcting targets, as
      MeshGraphNets' online normalisers see them.
    - `width` [channels]: the transformer's width.
    - `heads` [count]: attention heads per layer.
    - `n_layers` [count]: transformer layers.
    - `mlp_ratio` [1]: the feed-forward MLP's width as a multiple of `width`.
    - `encoder_depth` [count]: hidden layers of the node encoder and decoder MLPs.
    - `layers` [-]: per layer (cycled over `n_layers`) a list of per-head neighbourhoods
      (cycled over `heads`): `{hops, dilation, random, global_nodes}`.
    - `n_global` [count]: learned global nodes linked to every node by heads with
      `global_nodes`.
    - `coordinates`, `laplacian_pe`, `random_walk_pe` [-]: positional encodings: node
      coordinates (true/false), the first k Laplacian eigenvectors (sign-flipped at random
      during training), the k-step random-walk return probabilities (k, 0: none).
    - `edge_multiple` [edges]: edge lists are padded to a multiple of this (one compile per
      bucket).
    - `graph_seed` [-]: seed of the random extra edges.
    - `eval_rollout_steps` [steps]: length of the rollout scored by `metrics` during training.
    - `partition` [-]: how a run whose mesh has a ``space`` axis splits each mesh over its
      devices: ``"rcb"`` (recursive coordinate bisection) or ``"metis"`` (pymetis).
    """

    state_fields: tuple[str, ...] = ("velocity",)
    output_fields: tuple[str, ...] = ()
    output_loss_weight: float = 1.0
    loss_node_types: tuple[int, ...] = (0, 5)
    noise_std: float = 0.02
    width: int = 64
    heads: int = 4
    n_layers: int = 4
    mlp_ratio: int = 2
    encoder_depth: int = 1
    layers: tuple[tuple[Neighbourhood, ...], ...] = ((Neighbourhood(),),)
    n_global: int = 0
    coordinates: bool = True
    laplacian_pe: int = 0
    random_walk_pe: int = 0
    edge_multiple: int = 1024
    graph_seed: int = 0
    eval_rollout_steps: int = 20
    partition: Literal["rcb", "metis"] = "rcb"

    def __post_init__(self):
        _check_common(self)
        if self.width % self.heads:
            raise ConfigError(f"model.width: {self.width} is not divisible by model.heads = "
                              f"{self.heads}")
        if not self.layers or any(not heads for heads in self.layers):
            raise ConfigError("model.layers: need at least one layer with at least one head spec")
        if self.n_global == 0 and any(h.global_nodes for layer in self.layers for h in layer):
            raise ConfigError("model.layers: a head uses global_nodes but model.n_global is 0")
        if min(self.n_layers, self.heads, self.width) < 1 or self.laplacian_pe < 0 \
                or self.random_walk_pe < 0 or self.n_global < 0:
            raise ConfigError("model: n_layers, heads, width must be >= 1; laplacian_pe, "
                              "random_walk_pe, n_global >= 0")

    def layer_heads(self) -> list[tuple[Neighbourhood, ...]]:
        """The per-head neighbourhoods of every layer, both cycles expanded."""
        out = []
        for i in range(self.n_layers):
            spec = self.layers[i % len(self.layers)]
            out.append(tuple(spec[h % len(spec)] for h in range(self.heads)))
        return out

    def connectivities(self) -> tuple[list[tuple[Neighbourhood, ...]], list[int]]:
        """The distinct layer connectivities and, for each layer, the index of its own."""
        distinct: list[tuple[Neighbourhood, ...]] = []
        index = []
        for heads in self.layer_heads():
            if heads not in distinct:
                distinct.append(heads)
            index.append(distinct.index(heads))
        return distinct, index


@dataclasses.dataclass(frozen=True)
class MeshGraphNetConfig:
    """MeshGraphNets (Pfaff et al., ICLR 2021): encode–process–decode message passing.

    **Fields:**

    - `state_fields` [-]: fields advanced in time (input at t, predicted as the change to t+1:
      the velocity-change target of MeshGraphNets).
    - `output_fields` [-]: fields predicted directly at t+1 and not fed back (optional, e.g.
      pressure; none by default, as MeshGraphNets' cylinder model).
    - `output_loss_weight` [1]: their weight in the loss (the loss is the weighted mean of
      the per-channel MSEs, state channels weighing 1).
    - `loss_node_types` [-]: node types that evolve (MeshGraphNets codes: 0 fluid, 5
      outflow); the loss uses them, and a rollout overwrites the others from the boundary
      conditions.
    - `noise_std` [state units]: Gaussian noise added to the state inputs on fluid nodes
      during training (physical units; Pfaff et al. use 0.02 for cylinder flow). The
      normalisers are computed on noised inputs and on the noise-correcting targets, as
      MeshGraphNets' online normalisers see them.
    - `latent` [channels]: latent size (128 in the paper).
    - `message_passing_steps` [count]: processor blocks (15 in the paper).
    - `mlp_depth` [count]: hidden layers per MLP (2 in the paper).
    - `edge_multiple` [edges]: edge lists are padded to a multiple of this (one compile per
      bucket).
    - `eval_rollout_steps` [steps]: length of the rollout scored by `metrics` during training.
    - `partition` [-]: as `MeshTransformerConfig`.
    """

    state_fields: tuple[str, ...] = ("velocity",)
    output_fields: tuple[str, ...] = ()
    output_loss_weight: float = 1.0
    loss_node_types: tuple[int, ...] = (0, 5)
    noise_std: float = 0.02
    latent: int = 128
    message_passing_steps: int = 15
    mlp_depth: int = 2
    edge_multiple: int = 1024
    eval_rollout_steps: int = 20
    partition: Literal["rcb", "metis"] = "rcb"

    def __post_init__(self):
        _check_common(self)
        if min(self.latent, self.message_passing_steps) < 1 or self.mlp_depth < 0:
            raise ConfigError("model: latent and message_passing_steps must be >= 1, "
                              "mlp_depth >= 0")
