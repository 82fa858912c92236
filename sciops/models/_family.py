"""The contract between a model family and the rest of sciops, and the family registry.

The training driver, evaluation and the CLI know a family only through its `Family` record:
how to build the model from its config and the training split, its loss over a batch, its
per-sample evaluation metrics, and the optional hooks only some families have (a figure,
host-side data preparation, a rollout of a simulator, the choice of trainable parts). Nothing
reaches into a family's modules or probes its model with `hasattr`/`isinstance`.

A family is added by calling `register_family` (see docs/adding-a-family.md); the built-in
families register themselves when their subpackage is imported, which `family(name)` does
lazily so that one family's optional dependencies (e3nn-jax for `mlip`) are needed only when
that family is used.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax

from .._config import closest, from_dict
from .._errors import ConfigError

__all__ = ["Family", "family", "family_names", "model_config", "register_family",
           "default_trainable"]


def _is_frozen(x: Any) -> bool:
    return bool(getattr(type(x), "__sciops_frozen__", False))


def default_trainable(model: Any) -> Any:
    """The leaves an optimizer may update: every floating-point array that does not lie inside a
    frozen module (`sciops.data.Normalizer` and other modules whose class sets
    ``__sciops_frozen__ = True``: fitted statistics, fixed tables).

    **Arguments:**

    - `model`: a model (any pytree).

    **Returns:** a pytree of bools with the structure of `model`.
    """
    frozen: list[tuple] = []
    jax.tree_util.tree_map_with_path(
        lambda path, x: frozen.append(tuple(path)) if _is_frozen(x) else None, model,
        is_leaf=_is_frozen)
    flat, treedef = jax.tree_util.tree_flatten_with_path(model)
    return jax.tree_util.tree_unflatten(treedef, [
        eqx.is_inexact_array(x) and not any(tuple(path[:len(q)]) == q for q in frozen)
        for path, x in flat])


@dataclasses.dataclass(frozen=True)
class Family:
    """What a model family gives the driver, evaluation and the CLI.

    **Fields:**

    - `name`: the value of `model.family` in a config.
    - `config`: a frozen dataclass for the `model:` section (without the `family` key); its
      field names are the model constructor's arguments.
    - `build(config, train, *, key) -> eqx.Module`: the model, given the training split (a
      `sciops.data.Dataset`, raw: before `prepare`), from which it reads shapes and fits
      normalisers. It raises `DataError` naming the key and shapes when the data do not fit.
    - `loss(config, model, batch, *, key) -> (scalar, dict[str, scalar])`: the training loss
      over a batch (a dict of arrays with a leading batch axis) and named scalar metrics.
    - `metrics(config, model, batch) -> dict[str, Float[Array, "batch"]]`: per-sample
      evaluation metrics, averaged by the driver over a whole test set. A metric that does not
      apply to a sample (another task's error in a multi-task model) is NaN there and is
      averaged over the samples where it applies; every other value must be finite.
    - `plot(config, model, batch, path, *, fields=None, sample_ids=None)`: optional; writes a
      PNG comparing prediction and truth for the first few samples of a (numpy) batch, through
      `sciops.plot`; `fields` are the data file's per-field attributes (names, units),
      `sample_ids` the samples' indices in the data set.
    - `prepare(config, dataset) -> Dataset`: optional; host-side preprocessing applied to every
      split after `build` (e.g. padded graph fields, edge lists and positional encodings of
      meshes), by the driver, by evaluation and by rollouts alike.
    - `rollout(run, data_path, *, steps, start, mode, boundary, out_dir, inflow, animation,
      progress, plots) -> dict`: optional, for simulators; rolls the model of a loaded run
      (`sciops.train.Run`) out on the trajectories of a file and writes predictions, errors
      and figures to `out_dir`; returns a JSON-able summary (with a printable ``"table"`` if
      it has one). `sciops rollout` calls it with its options (`start`, `inflow`, `animation`
      matter to mesh simulators; `plots=False` writes no figure).
    - `trainable(model) -> PyTree[bool]`: which leaves the optimizer may ever update (default
      `default_trainable`: every float array outside frozen modules). A transfer run's
      `transfer.trainable` paths narrow this further.
    - `partition(config, dataset, parts) -> Dataset`: optional; splits every sample of a
      prepared data set over `parts` devices of the mesh axis ``space`` (a mesh partition
      with halos, `sciops.models.meshformer.partition`); the fields it splits carry a
      ``space_axis`` field attribute. The driver calls it on the training split when the
      run's mesh has a ``space`` axis of more than one device.
    - `units`: optional; the unit of each metric name (e.g. ``{"forces_mae": "eV/Å"}``), printed
      beside the values by the CLI.
    """

    name: str
    config: type
    build: Callable[..., Any]
    loss: Callable[..., Any]
    metrics: Callable[..., Any]
    plot: Callable[..., Any] | None = None
    prepare: Callable[..., Any] | None = None
    rollout: Callable[..., dict] | None = None
    trainable: Callable[[Any], Any] = default_trainable
    partition: Callable[..., Any] | None = None
    units: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"Family.name: expected a non-empty string, got {self.name!r}")
        if not dataclasses.is_dataclass(self.config):
            raise ConfigError(f"Family {self.name!r}: config must be a dataclass type, got "
                              f"{self.config!r}")
        for hook in ("build", "loss", "metrics", "trainable"):
            if not callable(getattr(self, hook)):
                raise ConfigError(f"Family {self.name!r}: {hook} must be callable")
        for hook in ("plot", "prepare", "rollout", "partition"):
            value = getattr(self, hook)
            if value is not None and not callable(value):
                raise ConfigError(f"Family {self.name!r}: {hook} must be callable or None")


# The built-in families: name -> the module whose import registers it.
_BUILTIN = {
    "fno": "sciops.models.fno",
    "deeponet": "sciops.models.deeponet",
    "meshformer": "sciops.models.meshformer",
    "meshgraphnet": "sciops.models.meshformer",
    "wavecnn": "sciops.models.wavecnn",
    "mlip": "sciops.models.mlip",
}
_REGISTRY: dict[str, Family] = {}


def register_family(family: Family, *, replace: bool = False) -> Family:
    """Make `family` available as ``model.family: <family.name>`` in configs.

    **Arguments:**

    - `family`: the record.
    - `replace`: allow replacing a family registered under the same name (otherwise a
      `ConfigError`).

    **Returns:** `family`, so a module can write ``FAMILY = register_family(Family(...))``.
    """
    if not isinstance(family, Family):
        raise ConfigError(f"register_family: expected a sciops.models.Family, got "
                          f"{type(family).__name__}")
    old = _REGISTRY.get(family.name)
    if old is not None and old is not family and not replace:
        raise ConfigError(f"register_family: a family named {family.name!r} is already "
                          "registered (pass replace=True to replace it)")
    _REGISTRY[family.name] = family
    return family


def family_names() -> list[str]:
    """The names of the built-in and registered families."""
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def family(name: str) -> Family:
    """Look up a family by its `model.family` name (ConfigError naming the closest one)."""
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        known = family_names()
        raise ConfigError(f"model.family: unknown family {name!r}{closest(name, known)}; "
                          f"known: {', '.join(known)}")
    return _REGISTRY[name]


def model_config(name: str, section: Mapping[str, Any] | None = None, *, path: str = "model"):
    """The model config of family `name`, built from a mapping as a config file's ``model:``
    section is (without its ``family`` key): unknown, missing and ill-typed keys are a
    `ConfigError` naming ``<path>.<key>``; keys not given keep the config's defaults.

    **Example:** ``model_config("fno", {"n_modes": [12, 12], "hidden_channels": 32})``.
    """
    return from_dict(family(name).config, section, path)
