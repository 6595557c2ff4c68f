"""One exception type for every error a user can cause, so the CLI can print it as one line."""


class SynthscapeError(Exception):
    """Bad input or a failed check; the message names the file or value and what was expected."""


class TrainingDiverged(SynthscapeError):
    """A loss or a weight became NaN or Inf; the last good checkpoint is left as it was."""


def shown(value: object, limit: int = 72) -> str:
    """A value quoted in an error message: printable, on one line and short, whatever a corrupt
    file or a stray paste put in it, so that the message stays the one line the CLI promises."""
    text = value if isinstance(value, str) and value.isprintable() else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
