"""Status codes and exceptions."""

import enum

from . import _lib


class Status(enum.IntEnum):
    """llavanext_status_code values."""

    OK = 0
    DONE = 1
    E_INVALID_ARGUMENT = -1
    E_NO_MEMORY = -2
    E_IO = -3
    E_FORMAT = -4
    E_UNSUPPORTED = -5
    E_MEDIA = -6
    E_CONTEXT_FULL = -7
    E_ABORTED = -8
    E_INTERNAL = -9
    E_STATE = -10
    E_LIMIT = -11
    E_TEMPLATE = -12


class LlavaNextError(Exception):
    """A call into libllavanext failed.

    ``status`` is the (negative) llavanext_status, ``message`` the detail from
    llavanext_last_error() (what failed and where), ``status_string`` the library's short
    description of the status.
    """

    def __init__(self, status, message, status_string=""):
        self.status = int(status)
        self.message = message
        self.status_string = status_string
        try:
            name = Status(self.status).name
        except ValueError:
            name = str(self.status)
        text = "%s (%s)" % (status_string or name, name)
        if message:
            text += ": " + message
        super().__init__(text)

    @property
    def status_name(self):
        try:
            return Status(self.status).name
        except ValueError:
            return str(self.status)


class InvalidArgumentError(LlavaNextError, ValueError):
    pass


class NoMemoryError(LlavaNextError, MemoryError):
    pass


class IOFailedError(LlavaNextError, OSError):
    # OSError's constructor would reinterpret the arguments; keep LlavaNextError's.
    def __init__(self, status, message, status_string=""):
        LlavaNextError.__init__(self, status, message, status_string)

    def __str__(self):
        return self.args[0] if self.args else ""


class FormatError(LlavaNextError):
    pass


class UnsupportedError(LlavaNextError):
    pass


class MediaError(LlavaNextError):
    pass


class ContextFullError(LlavaNextError):
    pass


class AbortedError(LlavaNextError):
    pass


class InternalError(LlavaNextError):
    pass


class StateError(LlavaNextError):
    pass


class LimitError(LlavaNextError):
    pass


class TemplateError(LlavaNextError):
    pass


_CLASSES = {
    Status.E_INVALID_ARGUMENT: InvalidArgumentError,
    Status.E_NO_MEMORY: NoMemoryError,
    Status.E_IO: IOFailedError,
    Status.E_FORMAT: FormatError,
    Status.E_UNSUPPORTED: UnsupportedError,
    Status.E_MEDIA: MediaError,
    Status.E_CONTEXT_FULL: ContextFullError,
    Status.E_ABORTED: AbortedError,
    Status.E_INTERNAL: InternalError,
    Status.E_STATE: StateError,
    Status.E_LIMIT: LimitError,
    Status.E_TEMPLATE: TemplateError,
}


def status_string(status):
    return _lib.lib().llavanext_status_string(int(status)).decode("utf-8", "replace")


def error_for(status, message=None):
    """The exception for a failed call. Without a message, reads llavanext_last_error() of this
    thread, so call it right after the failing call; calls on a handle pass the handle's own
    message (llavanext_<object>_last_error) instead."""
    lib = _lib.lib()
    if message is None:
        message = lib.llavanext_last_error().decode("utf-8", "replace")
    cls = _CLASSES.get(status, LlavaNextError)
    return cls(status, message, status_string(status))


def check(status):
    """Raises for a negative status; returns the status (OK or DONE) otherwise."""
    if status < 0:
        raise error_for(status)
    return status
