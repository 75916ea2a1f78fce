"""Errors a user can cause. Each carries one sentence: what was wrong, what was expected."""


class VitkitError(Exception):
    """Base class of every user-facing vitkit error; the CLI prints its message and exits non-zero."""


class ConfigError(VitkitError, ValueError):
    """A model name, override or configuration value that cannot be used."""


class InputError(VitkitError, ValueError):
    """A tensor of the wrong shape, size or channel count given to a model."""


class CheckpointError(VitkitError):
    """A weights file that is missing, unreadable or does not match the model."""


class DataError(VitkitError):
    """A dataset folder, image or video file that cannot be used."""
