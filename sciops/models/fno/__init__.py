"""The `fno` family: Fourier neural operators on regular grids (Li et al., ICLR 2021), with the
MG-TFNO extensions (factorized spectral weights, layer blocks, multi-grid patching)."""

from .._family import Family, register_family
from ._family import FieldOperator as FieldOperator
from ._family import FNOConfig as FNOConfig
from ._family import Normalizer as Normalizer
from ._family import build, loss, metrics, plot
from ._family import relative_h1 as relative_h1
from ._family import relative_l2 as relative_l2
from ._fno import FNO as FNO
from ._mg import MGOperator as MGOperator
from ._mg import MGPatching as MGPatching

FAMILIES = {"fno": register_family(Family("fno", FNOConfig, build, loss, metrics, plot,
                                          units={"l2": "1", "h1": "1"}))}
"""The `fno` family record(s), by name, as `sciops.models.family` finds them."""
