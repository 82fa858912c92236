"""The contract between a model family and the training driver, and the family registry.

The driver knows nothing about a family beyond a `Family` record: how to build the model from
its config and the training split, its loss over a batch, its per-sample evaluation metrics,
and optionally how to draw a comparison figure.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from .._config import closest
from .._errors import ConfigError

__all__ = ["Family", "family", "family_names"]


@dataclasses.dataclass(frozen=True)
class Family:
    """What a model family gives the driver.

    **Fields:**

    - `name`: the value of `model.family` in a config.
    - `config`: a frozen dataclass for the `model:` section (without the `family` key); its
      field names are the model constructor's arguments.
    - `build(config, train, *, key) -> eqx.Module`: the model, given the training split (a
      `sciops.data.Dataset`), from which it reads shapes and fits normalisers. It raises
      `DataError` naming the key and shapes when the data do not fit the config.
    - `loss(config, model, batch, *, key) -> (scalar, dict[str, scalar])`: the training loss
      over a batch (a dict of arrays with a leading batch axis) and named scalar metrics.
    - `metrics(config, model, batch) -> dict[str, Float[Array, "batch"]]`: per-sample
      evaluation metrics (averaged by the driver over a whole test set).
    - `plot(config, model, batch, path)`: optional; writes a PNG comparing prediction and truth
      for the first few samples of a (numpy) batch.
    - `prepare(config, dataset) -> Dataset`: optional; host-side preprocessing applied by the
      driver to every split after `build` (e.g. padded graph fields, edge lists and positional
      encodings of meshes). `build` always sees the raw training split.
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
    units: Mapping[str, str] = dataclasses.field(default_factory=dict)


# family name -> module that defines `FAMILIES: dict[str, Family]`. Imported lazily so that a
# family's optional dependencies (e3nn-jax for mlip) are needed only when it is used.
_MODULES = {
    "fno": "sciops.models.fno",
    "deeponet": "sciops.models.deeponet",
    "meshformer": "sciops.models.meshformer",
    "meshgraphnet": "sciops.models.meshformer",
    "wavecnn": "sciops.models.wavecnn",
    "mlip": "sciops.models.mlip",
}


def family_names() -> list[str]:
    return sorted(_MODULES)


def family(name: str) -> Family:
    """Look up a family by its `model.family` name (ConfigError naming the closest one)."""
    if name not in _MODULES:
        raise ConfigError(f"model.family: unknown family {name!r}{closest(name, _MODULES)}; "
                          f"known: {', '.join(family_names())}")
    module = importlib.import_module(_MODULES[name])
    return module.FAMILIES[name]
