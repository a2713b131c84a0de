"""User-facing errors.

Anything a user can cause (a bad file, a bad config key, a missing field) raises
:class:`MWeightError` with a one-line message naming the file, the field and what
was expected. The CLI prints it as ``mweight: error: <message>`` and exits 2,
without a traceback.
"""


class MWeightError(Exception):
    """An error caused by user input; the message is shown as one line."""


class ConfigError(MWeightError, ValueError):
    """A config key, config file or command-line value is wrong.

    The message names the key (or file), what was given and what was expected.
    It is also a ``ValueError`` so library callers that catch bad values keep working.
    ``key`` is the dotted config key at fault (when there is one).
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class TrainingDiverged(MWeightError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
