"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A problem caused by input (folder, image, parameter, checkpoint).

    The message is one sentence naming the thing and the fix; the command
    line prints it without a traceback and exits with status 2.
    """
