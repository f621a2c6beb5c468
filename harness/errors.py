"""The one error type for user mistakes; the CLI prints it as one line and exits 2."""


class UserError(Exception):
    """A mistake in user input (config key, file, column, shape). The message names the key/file/line."""
