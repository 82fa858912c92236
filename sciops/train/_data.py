"""From `config.data` to the train / validation / test splits, generating data when needed."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from .._config import from_dict, to_dict
from .._errors import DataError
from ..data import Dataset, detect_format, read_dataset, read_hdf5, split
from ..pde import problem as get_problem
from ._config import DataConfig

__all__ = ["DataBundle", "prepare_data", "ensure_generated", "check_finite", "read_data"]


@dataclasses.dataclass
class DataBundle:
    """The splits of a run: `train`, optional `val`, and named `tests`."""

    train: Dataset
    val: Dataset | None
    tests: dict[str, Dataset]


def read_data(config: DataConfig, path) -> Dataset:
    """`path` read with the reader options of a `data:` section (`format`, `keys`, `layout`,
    `subsample`, `units`: `sciops.data.read_dataset`), as `fit` reads its files."""
    return _read(config, path)


def _read(config: DataConfig, path) -> Dataset:
    """`path` read with the config's reader options (users' own formats: sciops.data.read_dataset)."""
    return read_dataset(path, format=config.format, keys=config.keys, layout=config.layout,
                        subsample=config.subsample, units=config.units)


def ensure_generated(config: DataConfig, *, progress: bool = True) -> pathlib.Path:
    """Make `config.path` with `config.generate` if it does not exist; check provenance if it does.

    A file that exists and is not a sciops data set (a user's .mat, PDEBench, npz, ... file)
    is read as it is: `generate` does not apply to it.
    """
    path = pathlib.Path(config.path)
    if path.is_file() and detect_format(path) != "sciops":
        return path
    if config.generate is not None and path.suffix not in (".h5", ".hdf5"):
        raise DataError(f"data.path: {path}: data file not found (data.generate writes only "
                        ".h5 files)")
    if config.generate is None:
        if not path.is_file():
            raise DataError(f"data.path: {path}: data file not found (and no data.generate "
                            "section to make it)")
        return path
    gen = dict(config.generate)
    prob = get_problem(str(gen.pop("problem")))
    gen_config = from_dict(prob.config, gen, "data.generate")
    wanted = to_dict(gen_config)
    if path.is_file():
        ds = read_hdf5(path)
        made = ds.attrs.get("config")
        if isinstance(made, str):
            made = json.loads(made)
        if ds.attrs.get("problem") != prob.name or not isinstance(made, dict):
            raise DataError(f"data.path: {path} exists but was not made by problem "
                            f"{prob.name!r}; remove it or choose another data.path")
        diff = sorted(k for k in set(made) | set(wanted)
                      if json.dumps(made.get(k)) != json.dumps(wanted.get(k)))
        if diff:
            raise DataError(f"data.path: {path} was generated with different parameters "
                            f"({', '.join(f'{k}: {made.get(k)!r} in file vs {wanted.get(k)!r}' for k in diff)}); "
                            "remove the file to regenerate it, or choose another data.path")
        return path
    prob.generate(gen_config, path, progress=progress)
    return path


def check_finite(dataset: Dataset, source: str, split_name: str, batch_size: int = 256) -> None:
    """Raise a `DataError` at the first NaN/Inf of a floating-point field of `dataset`.

    Reads the data set batch by batch (lazily stored fields stay on disk).

    **Arguments:**

    - `dataset`: the split to check.
    - `source`: the file it came from (named in the error).
    - `split_name`: the split (``train``, ``val``, ``test`` or a test set's name).

    **Raises:** `DataError` naming the file, split, field and sample (index in the split and
    in the file).
    """
    keys = [k for k in dataset.keys() if np.issubdtype(dataset.dtype(k), np.inexact)]
    if not keys or len(dataset) == 0:
        return
    for start in range(0, len(dataset), batch_size):
        stop = min(start + batch_size, len(dataset))
        batch = dataset.take(slice(start, stop))
        for k in keys:
            v = np.asarray(batch[k])
            bad = ~np.isfinite(v.reshape(len(v), -1)).all(axis=1)
            if bad.any():
                i = start + int(np.argmax(bad))
                what = "NaN" if np.isnan(np.asarray(batch[k][i - start])).any() else "Inf"
                raise DataError(f"{source}: split {split_name!r}, sample {i} (sample "
                                f"{int(dataset.indices[i])} of the file): field {k!r} holds {what}")


def prepare_data(config: DataConfig, *, progress: bool = True) -> DataBundle:
    """Read (generating if configured), split and check the data set of a run.

    Every floating-point field of every split is checked for NaN/Inf (`check_finite`).
    """
    path = ensure_generated(config, progress=progress)
    try:
        parts = split(_read(config, path), config.n_train, config.n_val, config.n_test)
    except DataError as e:
        raise DataError(f"data: {e}") from None
    for name in ("train", "val", "test"):
        check_finite(parts[name], str(path), name)
    train = parts["train"].in_memory() if config.in_memory else parts["train"]
    val = parts["val"] if config.n_val else None
    tests = {"test": parts["test"]} if config.n_test else {}
    for name, test_path in config.test.items():
        if name in tests:
            raise DataError(f"data.test.{name}: the name 'test' is taken by data.n_test")
        try:
            tests[name] = _read(config, test_path)
        except DataError as e:
            raise DataError(f"data.test.{name}: {e}") from None
        check_finite(tests[name], str(test_path), name)
    return DataBundle(train=train, val=val, tests=tests)
