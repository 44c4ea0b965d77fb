"""Python bindings of libllavanext (ctypes): run LLaVA-NeXT-Video models on a CPU.

The shared library is loaded on first use; see llavanext._lib for how it is found
(LLAVANEXT_LIBRARY, LD_LIBRARY_PATH / the loader, pkg-config).
"""

from ._api import (Budget, CacheSampling, CacheStats, EmbeddingCache, Frames, FrameSampler, Generator, KVCache, LoadMode, LogLevel, MediaInfo, Model,
                   PixelFormat, PoolMode, Pooler, Precision, SpecialToken, Stage, Tensor,
                   TensorKind, Token, Weights,
                   VisionEncoder, last_error, media_hash, set_default_log, version, version_number)
from ._errors import (AbortedError, ContextFullError, FormatError, InternalError,
                      InvalidArgumentError, IOFailedError, LimitError, LlavaNextError, MediaError,
                      NoMemoryError, StateError, Status, TemplateError, UnsupportedError,
                      status_string)
from ._lib import BINDING_VERSION_NUMBER, LibraryNotFound, library_path

__version__ = "0.1.0"

__all__ = [
    "AbortedError", "BINDING_VERSION_NUMBER", "Budget", "CacheSampling", "CacheStats", "ContextFullError",
    "EmbeddingCache", "FormatError",
    "Frames", "FrameSampler", "Generator", "InternalError", "InvalidArgumentError",
    "IOFailedError", "KVCache", "LibraryNotFound", "LimitError", "LlavaNextError", "LoadMode", "LogLevel",
    "MediaError", "MediaInfo", "Model", "NoMemoryError", "PixelFormat", "PoolMode", "Pooler", "Precision",
    "SpecialToken", "Stage", "StateError", "Status", "TemplateError", "Tensor", "TensorKind",
    "Token", "UnsupportedError", "VisionEncoder", "Weights", "last_error", "library_path", "media_hash",
    "set_default_log", "status_string", "version", "version_number",
]
