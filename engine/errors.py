"""The two kinds of failure the engine reports.

`InputError` is the user's to fix (a wrong file, a wrong size, an empty mask): its message says
what is wrong and what to do, and the CLI exits with status 2. Anything else that escapes is a
bug in the engine (status 1).
"""


class InputError(ValueError):
    """Bad input: the message is written for the person who supplied it."""
