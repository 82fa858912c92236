"""Errors that reach the user as one clear line (the CLI exits with status 2 on these)."""


class SciopsError(Exception):
    """Base class: a user-facing error whose message names the key, file, line or shape."""


class ConfigError(SciopsError, ValueError):
    """A configuration key is unknown, missing, of the wrong type or out of range."""


class DataError(SciopsError, ValueError):
    """A data file is missing, corrupt, lacks a key, or its shapes do not fit the run."""


class TrainingError(SciopsError, RuntimeError):
    """Training cannot go on (for example a NaN/Inf loss); the last good checkpoint is kept."""
