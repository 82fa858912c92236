"""The package version, in a leaf module that imports nothing: the data layer (HDF5 attributes)
and checkpoints (headers) read it without importing the package's top level."""

__version__ = "0.1.0"
