"""User-facing errors.

Anything a user can cause (a bad file, a bad config key, a missing field) raises
:class:`MWeightError` with a one-line message naming the file, the field and what
was expected. The CLI prints it as ``mweight: error: <message>`` and exits 2,
without a traceback.
"""


class MWeightError(Exception):
    """An error caused by user input; the message is shown as one line."""


class TrainingDiverged(MWeightError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
