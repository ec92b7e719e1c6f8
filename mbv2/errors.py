"""Exceptions with messages a user can act on. The CLI turns any of these into one line and exit 2."""


class MbvError(Exception):
    """Base class of every error mbv2 raises on purpose."""


class ModelError(MbvError):
    """The ONNX file is missing, unreadable, or holds something the importer does not support."""


class InputError(MbvError):
    """An input tensor or argument is invalid (shape, rank, dtype, batch, NaN/Inf)."""


class BackendUnavailable(MbvError):
    """A backend cannot run on this machine; the message says why."""


class CudaError(MbvError):
    """A CUDA / cuDNN / cuBLAS call failed; the message names the function and the status string."""
