"""The errors the ``cycle`` command reports as a clear message instead of a traceback."""


class ConfigError(ValueError):
    """A configuration value or file that cannot be used; the message says where and why."""


class DatasetError(ValueError):
    """A dataset that is missing or malformed; the message names the path and what to do."""


class Preempted(Exception):
    """A preemption signal arrived; a checkpoint was saved and a rerun resumes from it."""


class CheckpointError(ValueError):
    """A checkpoint of an unknown format or of another architecture; the message names the file."""
