"""The one exception type users see: an expected failure with a one-line message."""


class UserError(Exception):
    """An expected failure (bad config, missing file, bad data) shown as one line.

    The CLI prints ``error: <message>`` on stderr and exits with status 2; no
    traceback reaches the user unless ``--debug`` is given.
    """
