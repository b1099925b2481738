"""Errors whose text is what the panel shows the user."""

# Status numbers of the C ABI (include/adgan.h); they never change.
STATUS_OK = 0
STATUS_INVALID_ARGUMENT = 1
STATUS_IO = 2
STATUS_FORMAT = 3
STATUS_DEVICE = 4
STATUS_CANCELLED = 5
STATUS_PANIC = 6
STATUS_TORCH = 7

STATUS_NAMES = {
    STATUS_OK: "OK",
    STATUS_INVALID_ARGUMENT: "invalid argument",
    STATUS_IO: "I/O error",
    STATUS_FORMAT: "format error",
    STATUS_DEVICE: "device error",
    STATUS_CANCELLED: "cancelled",
    STATUS_PANIC: "internal error",
    STATUS_TORCH: "libtorch error",
}


class AdganError(RuntimeError):
    """An adGAN failure. ``str(error)`` is the complete message for the user;
    ``status`` is the C ABI status number when the library reported it."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status


class LibraryNotFoundError(AdganError):
    """libadgan (the shared library) could not be found or loaded."""


class BinaryNotFoundError(AdganError):
    """The ``adgan`` command-line program could not be found."""


class CancelledError(AdganError):
    """The user cancelled a running job."""

    def __init__(self, message="Cancelled.", status=STATUS_CANCELLED):
        super().__init__(message, status)


def status_name(status):
    return STATUS_NAMES.get(status, f"status {status}")
