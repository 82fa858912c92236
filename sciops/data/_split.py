"""Train / validation / test splits: contiguous views on a data set."""

from __future__ import annotations

from .._errors import DataError
from ._dataset import Dataset

__all__ = ["split"]


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DataError(f"data.{name}: expected a non-negative integer, got {value!r}")
    return value


def split(dataset: Dataset, n_train: int | None, n_val: int = 0,
          n_test: int = 0) -> dict[str, Dataset]:
    """Split `dataset` into contiguous views (no data read).

    The first `n_train` samples train, the next `n_val` validate and the last `n_test` test;
    samples between validation and test are unused. The split is by position, not random, so
    that a data set generated with one seed always splits the same way (and a test set stays
    disjoint from the training set when more training samples are appended).

    **Arguments:**

    - `dataset`: the samples.
    - `n_train`: training samples; `None` takes every sample not used for validation or test.
    - `n_val`, `n_test`: validation and test samples.

    **Returns:** ``{"train": ..., "val": ..., "test": ...}`` views (possibly empty).

    **Raises:** `DataError` naming the counts and the data set size when they do not fit.
    """
    n = len(dataset)
    n_val, n_test = _count("n_val", n_val), _count("n_test", n_test)
    if n_train is None:
        n_train = n - n_val - n_test
        if n_train <= 0:
            raise DataError(f"{dataset.name}: {n} samples leave none for training after "
                            f"n_val={n_val} and n_test={n_test}")
    n_train = _count("n_train", n_train)
    if n_train + n_val + n_test > n:
        raise DataError(f"{dataset.name}: has {n} samples, but n_train + n_val + n_test = "
                        f"{n_train} + {n_val} + {n_test} = {n_train + n_val + n_test}")
    return {"train": dataset.subset(slice(0, n_train)),
            "val": dataset.subset(slice(n_train, n_train + n_val)),
            "test": dataset.subset(slice(n - n_test, n))}
