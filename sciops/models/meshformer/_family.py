"""The family functions of `meshformer` and `meshgraphnet`: build, loss, metrics, plot, prepare.

Training follows MeshGraphNets (Pfaff et al. 2021): a random time step per trajectory, Gaussian
noise on the fluid nodes' state inputs with the target corrected for it, targets the normalised
change per step (normalisers computed on the noised inputs and targets), and a mean-squared
loss over the nodes that evolve (fluid and outflow) for the state fields, over every node for
the optional output fields (pressure), weighted by `output_loss_weight`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..._errors import DataError
from ...data import Dataset, Normalizer, drawable_mesh
from ...nn._dist_fft import batch_vmap
from ...nn._graph import mesh_edges
from ._config import MeshGraphNetConfig, MeshTransformerConfig
from ._graphs import cell_array, prepare
from ._mgn import MeshGraphNet
from ._simulator import N_NODE_TYPES, NORMAL, MeshSimulator, check_prepared
from ._transformer import MeshTransformer

__all__ = ["build", "loss", "metrics", "plot", "prepare", "field_channels"]


def field_channels(train: Dataset, fields) -> tuple[int, ...]:
    """Channels of each named node field, checking the `(time, nodes, channels)` layout."""
    out = []
    n = train.shape("points")[0]
    for f in fields:
        if f not in train:
            raise DataError(f"{train.name}: model field {f!r} is not in the data set; fields: "
                            f"{', '.join(k for k in train.keys() if len(train.shape(k)) == 3)}")
        shape = train.shape(f)
        if len(shape) != 3 or shape[1] != n:
            raise DataError(f"{train.name}: field {f!r} must have sample shape (time, {n}, "
                            f"channels), got {shape}")
        out.append(int(shape[2]))
    return tuple(out)


class _Moments:
    def __init__(self):
        self.n, self.s, self.ss = 0.0, 0.0, 0.0

    def add(self, x: np.ndarray):  # x: (count, channels) float64
        self.n += x.shape[0]
        self.s = self.s + x.sum(0)
        self.ss = self.ss + (x**2).sum(0)

    def normalizer(self, floor=1e-8) -> Normalizer:
        mean = self.s / max(self.n, 1)
        std = np.sqrt(np.maximum(self.ss / max(self.n, 1) - mean**2, 0)) if self.n else 1.0
        return Normalizer(np.asarray(mean, np.float32), np.maximum(std, floor).astype(np.float32))


def _fit(config, train: Dataset):
    """Normalisers of state, change per step, outputs, positions and edge features."""
    if len(train) == 0:
        raise DataError(f"{train.name}: empty training set")
    for k in ("points", "node_mask", "node_type"):
        if k not in train:
            raise DataError(f"{train.name}: not a mesh data set with node types (no {k!r})")
    state, delta, out, pos, edge = _Moments(), _Moments(), _Moments(), _Moments(), _Moments()
    types: set[int] = set()
    # the statistics of what the network sees in training: inputs with the training noise on
    # the fluid nodes, targets that correct it (MeshGraphNets accumulates its normalisers
    # online over the noisy training batches; here one seeded noise draw per frame)
    rng = np.random.default_rng(0)
    for i in range(len(train)):
        s = {k: v[0] for k, v in train.take([i]).items()}
        m = np.asarray(s["node_mask"], bool)
        types |= set(np.unique(s["node_type"][m]).tolist())
        x = np.concatenate([s[f] for f in config.state_fields], -1).astype(np.float64)
        fluid = (m & (s["node_type"] == NORMAL))[None, :, None]
        noisy = x + config.noise_std * rng.standard_normal(x.shape) * fluid
        state.add(noisy[:, m].reshape(-1, x.shape[-1]))
        ev = m & np.isin(s["node_type"], config.loss_node_types)
        d = x[1:] - noisy[:-1]
        delta.add(d[:, ev].reshape(-1, d.shape[-1]))
        if config.output_fields:
            y = np.concatenate([s[f] for f in config.output_fields], -1).astype(np.float64)
            out.add(y[:, m].reshape(-1, y.shape[-1]))
        p = np.asarray(s["points"], np.float64)
        pos.add(p[m])
        if isinstance(config, MeshGraphNetConfig):
            n = int(s["n_nodes"]) if "n_nodes" in s else int(m.sum())
            snd, rcv = mesh_edges(cell_array(s), n)
            rel = p[snd] - p[rcv]
            edge.add(np.concatenate([rel, np.linalg.norm(rel, axis=1, keepdims=True)], 1))
    return (state.normalizer(), delta.normalizer(), out.normalizer() if config.output_fields
            else None, pos.normalizer(), edge.normalizer() if isinstance(config, MeshGraphNetConfig)
            else None, tuple(sorted(int(t) for t in types)))


@eqx.filter_jit
def _init(cls, args: tuple, key):
    """`cls(*args, key=key)` under one jit: eager initialisation compiles every distinct
    random draw separately (seconds each on a busy CPU); traced, it is one small program,
    compiled once per class and arguments in a process (the arguments are static)."""
    return cls(*args, key=key)


@eqx.filter_jit
def _step(model: MeshSimulator, sample, x):
    """`model.step` compiled once per model structure and mesh size in a process (a lambda
    wrapped at each call compiled again for every figure)."""
    return model.step(sample, x)


def build(config: MeshTransformerConfig | MeshGraphNetConfig, train: Dataset, *, key
          ) -> MeshSimulator:
    """The simulator, with normalisers fitted on `train` (raw mesh data set fields suffice)."""
    sc = field_channels(train, config.state_fields)
    oc = field_channels(train, config.output_fields)
    state_norm, delta_norm, out_norm, pos_norm, edge_norm, types = _fit(config, train)
    if any(t < 0 or t >= N_NODE_TYPES for t in types):
        raise DataError(f"{train.name}: node types must lie in 0..{N_NODE_TYPES - 1}, got {types}")
    c_in = sum(sc) + N_NODE_TYPES
    c_out = sum(sc) + sum(oc)
    if isinstance(config, MeshTransformerConfig):
        c_in += (train.shape("points")[-1] if config.coordinates else 0) + config.laplacian_pe \
            + config.random_walk_pe
        distinct, index = config.connectivities()
        net = _init(MeshTransformer, (c_in, c_out, config.width, config.heads, config.n_layers,
                                      config.mlp_ratio, config.encoder_depth, config.n_global,
                                      tuple(index)), key)
        extras = dict(coordinates=config.coordinates, laplacian_pe=config.laplacian_pe,
                      random_walk_pe=config.random_walk_pe, n_graphs=len(distinct))
    else:
        net = _init(MeshGraphNet, (c_in, train.shape("points")[-1] + 1, c_out, config.latent,
                                   config.message_passing_steps, config.mlp_depth), key)
        extras = dict(coordinates=False, laplacian_pe=0, random_walk_pe=0, n_graphs=0)
    return MeshSimulator(net, state_norm, delta_norm, out_norm, pos_norm, edge_norm,
                         tuple(config.state_fields), sc, tuple(config.output_fields), oc,
                         tuple(config.loss_node_types), types, **extras)


def _sample_loss(config, model: MeshSimulator, sample, key):
    n_t = sample[config.state_fields[0]].shape[0]
    kt, kn, kp = jax.random.split(key, 3)
    t = jax.random.randint(kt, (), 0, n_t - 1)
    x_t, x_next = model.state_at(sample, t), model.state_at(sample, t + 1)
    fluid = ((sample["node_type"] == NORMAL) & sample["node_mask"])[:, None]
    x_in = x_t + config.noise_std * model.node_noise(kn, sample, x_t) * fluid
    # the target corrects the noise, so a rollout learns to undo its own errors (Pfaff et al.)
    target = [model.delta_norm.encode(x_next - x_in)]
    if model.out_norm is not None:
        target.append(model.out_norm.encode(model.outputs_at(sample, t + 1)))
    target = jnp.concatenate(target, -1)
    pred = model.predict(sample, x_in, key=kp if model.laplacian_pe else None)
    # the change of the state is learned where the state evolves (elsewhere a rollout imposes
    # the boundary values); output fields (pressure) have no imposed values at walls or the
    # obstacle and are scored on every node, so they are learned on every real node
    c = sum(model.state_channels)
    w = jnp.concatenate([jnp.broadcast_to(model.evolving(sample)[:, None], (pred.shape[0], c)),
                         jnp.broadcast_to(sample["node_mask"][:, None],
                                          (pred.shape[0], pred.shape[1] - c))], -1)
    w = w.astype(pred.dtype)
    per_channel = jnp.sum((pred - target) ** 2 * w, 0) / jnp.maximum(w.sum(0), 1.0)
    # weighted mean over channels: state channels weigh 1, output channels output_loss_weight
    cw = jnp.concatenate([jnp.ones(c, pred.dtype),
                          jnp.full(pred.shape[1] - c, config.output_loss_weight, pred.dtype)])
    return jnp.sum(cw * per_channel) / jnp.sum(cw)


def loss(config, model: MeshSimulator, batch, *, key):
    """Mean over the batch of the per-trajectory masked one-step MSE (normalised units)."""
    check_prepared(batch.keys(), model.net)
    b = batch["node_mask"].shape[0]
    # batch_vmap: on a mesh with a `space` axis the batch stays split over `data` around the
    # partitioned networks' shard_map
    values = batch_vmap(lambda s, k: _sample_loss(config, model, s, k))(
        batch, jax.random.split(key, b))
    value = jnp.mean(values)
    return value, {"mse": value}


def _rmse(a, b, mask):
    """RMSE over masked nodes and all channels: a, b (..., nodes, channels)."""
    w = mask[:, None].astype(a.dtype)
    num = jnp.sum((a - b) ** 2 * w, axis=(-2, -1))
    return jnp.sqrt(num / jnp.maximum(w.sum() * a.shape[-1], 1.0))


def _sample_metrics(config, model: MeshSimulator, sample):
    n_t = sample[config.state_fields[0]].shape[0]
    mask = sample["node_mask"]
    ts = np.unique(np.linspace(0, n_t - 2, min(8, n_t - 1)).astype(int))
    out = {}
    c0 = 0
    # as in a rollout, the non-evolving nodes take their true values (the model is neither
    # trained nor used there)
    evolving = model.evolving(sample)[:, None]
    preds = [model.step(sample, model.state_at(sample, int(t))) for t in ts]
    preds = [(jnp.where(evolving, p[0], model.state_at(sample, int(t) + 1)), p[1])
             for p, t in zip(preds, ts, strict=False)]
    for f, c in zip(model.state_fields, model.state_channels, strict=False):
        errs = [_rmse(p[0][:, c0:c0 + c], sample[f][int(t) + 1], mask) for p, t in zip(preds, ts, strict=False)]
        out[f"rmse_1step_{f}"] = jnp.mean(jnp.stack(errs))
        c0 += c
    c0 = 0
    for f, c in zip(model.output_fields, model.output_channels, strict=False):
        errs = [_rmse(p[1][:, c0:c0 + c], sample[f][int(t) + 1], mask) for p, t in zip(preds, ts, strict=False)]
        out[f"rmse_1step_{f}"] = jnp.mean(jnp.stack(errs))
        c0 += c
    steps = min(config.eval_rollout_steps, n_t - 1)
    if steps > 0:
        truth = jnp.stack([model.state_at(sample, t) for t in range(1, steps + 1)])
        states, _ = model.rollout(sample, model.state_at(sample, 0), truth)
        out[f"rmse_rollout{steps}"] = jnp.mean(jax.vmap(lambda a, b: _rmse(a, b, mask))(states, truth))
    return out


def metrics(config, model: MeshSimulator, batch):
    """Per-trajectory one-step RMSE per field (at ≤ 8 evenly spaced times, physical units; the
    non-evolving nodes take their true values, as in a rollout) and the RMSE of the state
    fields over an `eval_rollout_steps` rollout with true boundaries."""
    check_prepared(batch.keys(), model.net)
    return jax.vmap(lambda s: _sample_metrics(config, model, s))(batch)


def plot(config, model: MeshSimulator, batch, path, *, fields=None, sample_ids=None) -> None:
    """Truth, one-step prediction and error of the first state field's magnitude (sample 0).

    `fields`: the data file's per-field attributes (units); `sample_ids`: the samples'
    indices in the data set.
    """
    from ...plot import plot_mesh_fields

    sample = {k: np.asarray(v[0]) for k, v in batch.items()}
    n = int(sample["node_mask"].sum())
    n_t = sample[config.state_fields[0]].shape[0]
    t = n_t // 2 - 1 if n_t > 2 else 0
    on_device = {k: jnp.asarray(v) for k, v in sample.items()}
    nxt, _ = _step(model, on_device, model.state_at(on_device, t))
    c = model.state_channels[0]
    pred = np.linalg.norm(np.asarray(nxt)[:n, :c], axis=-1)
    truth = np.linalg.norm(sample[config.state_fields[0]][t + 1, :n], axis=-1)
    name = config.state_fields[0]
    unit = str(((fields or {}).get(name) or {}).get("units") or "1")
    sid = 0 if sample_ids is None else int(sample_ids[0])
    xy, tri, w = drawable_mesh(sample["points"][:n], cell_array(sample))  # 3-D: a section
    if w is not None:
        truth, pred = w @ truth, w @ pred
    plot_mesh_fields(xy, tri, mesh_columns(truth[None], pred[None], f"|{name}|", unit),
                     row_labels=[f"sample {sid}, step {t + 1}"
                                 + (", mid-plane section" if w is not None else "")],
                     title=f"One step of the mesh simulator from the true step {t}",
                     axis_unit=str(((fields or {}).get("points") or {}).get("units") or "1"),
                     path=path)


def mesh_columns(truth, pred, label: str, unit: str, pred_title: str = "prediction"):
    """Truth / prediction / error columns of one nodal field (`(rows, nodes)` each) for
    `sciops.plot.plot_mesh_fields`: truth and prediction on one colour range, the error on a
    diverging one."""
    from ...plot import Column

    return [Column(f"truth {label}", truth, unit, scale="field"),
            Column(f"{pred_title} {label}", pred, unit, scale="field"),
            Column(f"error {label} ({pred_title} − truth)", pred - truth, unit, diverging=True)]
