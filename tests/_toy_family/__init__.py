"""A sixth model family, added in three files with no edit to sciops: `_model.py` (the
network), `_family.py` (config, build, loss, metrics) and this registration. The driver tests
(test_train.py) and the conformance test (test_contract.py) use it; docs/adding-a-family.md
walks through the same three files."""

from sciops.models import Family, register_family

from ._family import ToyConfig, build, loss, metrics

FAMILY = register_family(Family("toy", ToyConfig, build, loss, metrics))
