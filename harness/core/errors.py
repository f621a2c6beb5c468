"""The one error type for user mistakes; the CLI prints it as one line and exits 2."""


def last_line(e: BaseException) -> str:
    """The last line of an exception's message (its type name when it has none): what a one-line report shows."""
    return str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__


class UserError(Exception):
    """A mistake in user input (config key, file, column, shape). The message names the key/file/line."""
