"""sciops.nn: reusable layers (MLPs, spectral convolutions, factorized tensors, sparse attention,
compressed convolutions, equivariant tensor products). Imports from sciops.data only."""

from ._mlp import MLP as MLP
