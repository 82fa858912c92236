"""The run configuration: `configs/*.yaml` as typed, validated, frozen dataclasses."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence
from typing import Any, Literal

from .._config import apply_overrides, from_dict, load_yaml, to_dict
from .._errors import ConfigError
from ..models import family as get_family
from ..nn import REMAT_POLICIES, MemoryPolicy
from ..pde import problem as get_problem

__all__ = [
    "Config",
    "DataConfig",
    "OptimizerConfig",
    "TrainConfig",
    "TransferConfig",
    "load_config",
    "config_from_dict",
    "config_to_dict",
]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data come from and how they are split.

    **Fields:**

    - `path` [-]: the HDF5 data set (sciops schema), relative to the working directory.
    - `generate` [-]: made by a `sciops.pde` problem when `path` does not exist yet:
      `{problem: NAME, ...that problem's parameters}` (`sciops generate PROBLEM --help`).
    - `n_train`, `n_val`, `n_test` [samples]: contiguous splits of `path`: the first `n_train`
      samples train, the next `n_val` validate, the last `n_test` form the test set ``test``.
      `n_train` defaults to every sample not in the other two.
    - `test` [-]: further test sets, name → HDF5 path (e.g. other resolutions).
    - `in_memory` [-]: read the training split into memory (else stream it from disk).
    - `prefetch` [batches]: training batches read (and put on the devices) ahead of the step
      that uses them, on a background thread (`sciops.data.prefetch`); ``0`` reads each batch
      when it is needed. The batch order does not depend on it.
    - `format`, `keys`, `layout`, `subsample`, `units` [-]: how to read a user's own file
      (a .mat, PDEBench HDF5, .npz, .pt, ASE or rMD17 file; docs/data.md "Your own files"):
      the arguments of `sciops.data.read_dataset`, applied to `path` and to every `test` file
      (`format`: auto, sciops, hdf5, mat5, mat73, npz, npy, pt, ase or rmd17; `subsample`
      keeps every r-th node per spatial axis).
    """

    path: str
    generate: dict[str, Any] | None = None
    n_train: int | None = None
    n_val: int = 0
    n_test: int = 0
    test: dict[str, str] = dataclasses.field(default_factory=dict)
    in_memory: bool = True
    prefetch: int = 2
    format: str = "auto"
    keys: dict[str, str] = dataclasses.field(default_factory=dict)
    layout: dict[str, str] = dataclasses.field(default_factory=dict)
    subsample: int | list[int] = 1
    units: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for k in ("n_val", "n_test"):
            if getattr(self, k) < 0:
                raise ConfigError(f"data.{k}: expected a non-negative int, got {getattr(self, k)}")
        if self.n_train is not None and self.n_train <= 0:
            raise ConfigError(f"data.n_train: expected a positive int, got {self.n_train}")
        if isinstance(self.prefetch, bool) or not isinstance(self.prefetch, int) \
                or self.prefetch < 0:
            raise ConfigError(f"data.prefetch: expected a non-negative int (batches), got "
                              f"{self.prefetch!r}")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with linear warmup and a cosine (or constant) schedule, global-norm clipping.

    **Fields:**

    - `lr` [1]: the peak learning rate (reached after `warmup_steps`).
    - `weight_decay` [1]: AdamW's decoupled weight decay, per step and unit learning rate.
    - `warmup_steps` [steps]: linear warmup from 0 to `lr`.
    - `schedule` [-]: after the warmup, ``cosine`` decay to `final_lr_fraction` times `lr` at
      `train.steps`, or ``constant``.
    - `final_lr_fraction` [1]: the cosine schedule's last learning rate as a fraction of `lr`.
    - `clip_norm` [1]: clip the gradients' global norm to this; ``null`` does not clip.
    - `b1`, `b2` [1]: Adam's decay rates of the first and second moment estimates.
    """

    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    final_lr_fraction: float = 0.0
    clip_norm: float | None = 1.0
    b1: float = 0.9
    b2: float = 0.999

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigError(f"train.optimizer.lr: expected a positive float, got {self.lr}")
        if self.warmup_steps < 0:
            raise ConfigError(f"train.optimizer.warmup_steps: expected >= 0, got {self.warmup_steps}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The optimisation loop.

    **Fields:**

    - `steps` [steps]: optimizer steps.
    - `batch_size` [samples]: the global batch (divisible by the `data` axis of `mesh`).
    - `eval_batch_size` [samples]: samples per evaluation batch.
    - `optimizer` [-]: the `OptimizerConfig` (keys `train.optimizer.*`).
    - `eval_every`, `checkpoint_every` [steps]: evaluation and checkpoint intervals (0
      disables them during training; both still happen at the end).
    - `log_every` [steps]: interval of the training-loss lines of `metrics.jsonl`.
    - `keep_checkpoints` [count]: how many recent checkpoints to keep.
    - `mesh` [devices]: named device-mesh axes (`data`, `space`) → sizes, ``-1`` meaning "the
      remaining devices".
    - `progress` [-]: report progress on stderr (a bar on a terminal, lines in logs).
    - `plots` [-]: draw `loss_curve.png` and `prediction_<split>.png` at the end of the run
      (seconds of matplotlib; ``false`` for sweeps and scripted runs that read only the
      metrics).
    - `divergence_factor` [1]: stop (like a NaN loss) when a step's loss exceeds this many
      times the lowest loss so far (when that is positive); ``null`` disables the check.
    - `trackers` [-]: where the metrics also go (`sciops.track`): `tensorboard` (event files in
      the run folder), `csv` (`metrics.csv`), `wandb` (Weights & Biases, the `track` extra).
    - `precision` [-]: the compute dtype of the training step: `float32`, or `bfloat16` (the
      parameters and the model inputs cast inside the loss; master weights, optimizer state,
      gradients, normalisers and the loss reduction stay float32; docs/memory.md).
    - `remat` [-]: `blocks` rematerialises every model block in the backward pass
      (`jax.checkpoint` per block), `none` stores all activations.
    - `remat_policy` [-]: what a rematerialised block may still save: the name of a
      `jax.checkpoint_policies` policy (`sciops.nn.REMAT_POLICIES`).
    """

    steps: int = 1000
    batch_size: int = 32
    eval_batch_size: int = 64
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    eval_every: int = 0
    checkpoint_every: int = 0
    log_every: int = 10
    keep_checkpoints: int = 2
    mesh: dict[str, int] = dataclasses.field(default_factory=lambda: {"data": -1})
    progress: bool = True
    plots: bool = True
    divergence_factor: float | None = 1e6
    trackers: tuple[Literal["tensorboard", "csv", "wandb"], ...] = ("tensorboard", "csv")
    precision: Literal["float32", "bfloat16"] = "float32"
    remat: Literal["none", "blocks"] = "none"
    remat_policy: str = "nothing_saveable"

    def __post_init__(self):
        if self.precision not in ("float32", "bfloat16"):
            raise ConfigError(f"train.precision: expected one of 'float32', 'bfloat16', got "
                              f"{self.precision!r}")
        if self.remat not in ("none", "blocks"):
            raise ConfigError(f"train.remat: expected one of 'none', 'blocks', got {self.remat!r}")
        if self.remat_policy not in REMAT_POLICIES:
            raise ConfigError(f"train.remat_policy: expected one of {', '.join(REMAT_POLICIES)}, "
                              f"got {self.remat_policy!r}")
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ConfigError(f"train.divergence_factor: expected a float > 1 or null, got "
                              f"{self.divergence_factor}")
        for k in ("steps", "batch_size", "eval_batch_size", "log_every", "keep_checkpoints"):
            if getattr(self, k) <= 0:
                raise ConfigError(f"train.{k}: expected a positive int, got {getattr(self, k)}")
        for k in ("eval_every", "checkpoint_every"):
            if getattr(self, k) < 0:
                raise ConfigError(f"train.{k}: expected a non-negative int, got {getattr(self, k)}")
        for axis, size in self.mesh.items():
            if axis not in ("data", "space"):
                raise ConfigError(f"train.mesh.{axis}: unknown mesh axis; valid axes: data, space")
            if not isinstance(size, int) or (size <= 0 and size != -1):
                raise ConfigError(f"train.mesh.{axis}: expected a positive int or -1, got {size!r}")

    @property
    def memory_policy(self) -> MemoryPolicy:
        """The `sciops.nn.MemoryPolicy` the training step traces the loss under."""
        return MemoryPolicy(compute_dtype=None if self.precision == "float32" else self.precision,
                            remat_policy=self.remat_policy if self.remat == "blocks" else None)


@dataclasses.dataclass(frozen=True)
class TransferConfig:
    """Fine-tune from another run: load its model, train only the `trainable` sub-modules.

    `trainable` holds attribute paths on the model such as ``trunk`` or ``branch.layers[-1]``.
    """

    from_run: str
    trainable: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Config:
    """One experiment: `name`, `seed`, and the `data`, `model`, `train`, `transfer` sections.

    `model` is the chosen family's own config dataclass; `family` names that family.
    """

    name: str
    data: DataConfig
    model: Any
    family: str
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    seed: int = 0
    transfer: TransferConfig | None = None


_TOP_KEYS = ("name", "seed", "data", "model", "train", "transfer")


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Validate a parsed YAML mapping into a `Config` (ConfigError naming the key path)."""
    from .._config import closest

    for key in raw:
        if key not in _TOP_KEYS:
            raise ConfigError(f"{key}: unknown key{closest(str(key), _TOP_KEYS)}; valid keys: "
                              + ", ".join(_TOP_KEYS))
    for key in ("name", "data", "model"):
        if key not in raw:
            raise ConfigError(f"{key}: missing required key")
    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name: expected a non-empty string, got {name!r}")
    from ._run_folder import check_run_name

    check_run_name(name)  # runs/<name>/ must stay inside runs/
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed: expected int, got {seed!r}")
    model_raw = raw["model"]
    if not isinstance(model_raw, dict):
        raise ConfigError(f"model: expected a mapping, got {model_raw!r}")
    if "family" not in model_raw:
        raise ConfigError("model.family: missing required key")
    fam = get_family(str(model_raw["family"]))
    model = from_dict(fam.config, {k: v for k, v in model_raw.items() if k != "family"}, "model")
    data = from_dict(DataConfig, raw["data"], "data")
    if data.generate is not None:
        gen = dict(data.generate)
        if "problem" not in gen:
            raise ConfigError("data.generate.problem: missing required key")
        prob = get_problem(str(gen.pop("problem")))
        from_dict(prob.config, gen, "data.generate")  # validate now, before any work
    train = from_dict(TrainConfig, raw.get("train"), "train")
    transfer = raw.get("transfer")
    transfer = None if transfer is None else from_dict(TransferConfig, transfer, "transfer")
    return Config(name=name, data=data, model=model, family=fam.name, train=train, seed=seed,
                  transfer=transfer)


def config_to_dict(config: Config) -> dict[str, Any]:
    """The YAML form of a config (the inverse of `config_from_dict`)."""
    out = {"name": config.name, "seed": config.seed, "data": to_dict(config.data),
           "model": {"family": config.family, **to_dict(config.model)},
           "train": to_dict(config.train)}
    if config.transfer is not None:
        out["transfer"] = to_dict(config.transfer)
    return out


def load_config(path: str | pathlib.Path, overrides: Sequence[str] = ()) -> Config:
    """Read `path` (YAML), apply ``dotted.key=value`` overrides, validate."""
    raw = apply_overrides(load_yaml(path), overrides)
    return config_from_dict(raw)
