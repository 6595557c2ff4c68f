"""One exception type for every error a user can cause, so the CLI can print it as one line."""


class SynthscapeError(Exception):
    """Bad input or a failed check; the message names the file or value and what was expected."""


class TrainingDiverged(SynthscapeError):
    """A loss or a weight became NaN or Inf; the last good checkpoint is left as it was."""
