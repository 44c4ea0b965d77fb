"""The object layer over the C API: Model, FrameSampler, Frames, Tensor, VisionEncoder, Pooler,
Generator."""

import array
import ctypes
import enum
import json
import os
import threading
from collections import namedtuple
from dataclasses import dataclass

from . import _lib
from ._errors import LlavaNextError, Status, check, error_for

try:  # numpy is optional: without it the buffer views are plain memoryviews
    import numpy as _np
except ImportError:  # pragma: no cover - depends on the environment
    _np = None


# ---- enumerations ----------------------------------------------------------------------------


class LogLevel(enum.IntEnum):
    ERROR = 0
    WARNING = 1
    INFO = 2
    DEBUG = 3


class Stage(enum.IntEnum):
    LOAD = 0
    SAMPLE = 1
    ENCODE = 2
    PREFILL = 3
    GENERATE = 4


class LoadMode(enum.IntEnum):
    MMAP = 0
    READ = 1
    NO_WEIGHTS = 2


class Precision(enum.IntEnum):
    AUTO = 0
    F32 = 1
    BF16 = 2


class Weights(enum.IntEnum):
    """The form the weights are kept in (llavanext_weights; docs/quantization.md)."""
    STORED = 0
    BF16 = 1
    Q8 = 2
    Q4 = 3


class KVCache(enum.IntEnum):
    """How the generator's KV cache stores keys and values (llavanext_kv_cache)."""
    AUTO = 0
    F32 = 1
    F16 = 2
    Q8 = 3


class SpecialToken(enum.IntEnum):
    BOS = 0
    EOS = 1
    PAD = 2
    UNK = 3
    VIDEO = 4
    IMAGE = 5


class PixelFormat(enum.IntEnum):
    RGB24 = 0
    YUV420P = 1
    NV12 = 2


class TensorKind(enum.IntEnum):
    VIDEO_PIXELS = 0
    IMAGE_PIXELS = 1
    VIDEO_FEATURES = 2
    IMAGE_FEATURES = 3
    VIDEO_POOLED = 4
    VIDEO_EMBEDDINGS = 5
    IMAGE_PROJECTED = 6
    IMAGE_EMBEDDINGS = 7
    OTHER = 8
    VIDEO_PROJECTED = 9  # LLaVA-OneVision: projected frames before the resize (library 0.2)


class PoolMode(enum.IntEnum):
    DEFAULT = -1
    AVERAGE = 0
    MAX = 1


def _enum_or_int(cls, value):
    try:
        return cls(value)
    except ValueError:
        return int(value)


# ---- helpers ---------------------------------------------------------------------------------


def _L():
    return _lib.lib()


def _encode(text):
    if isinstance(text, str):
        return text.encode("utf-8")
    return bytes(text)


def _path(p):
    return os.fsencode(p)


def _take_string(ptr):
    """Copies a NUL-terminated string the library gave away and frees it with llavanext_free."""
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        _L().llavanext_free(ptr)


class _Callbacks:
    """The ctypes trampolines of one handle's progress and log callbacks.

    A Python exception cannot cross the C library: the progress trampoline catches it (any
    BaseException, KeyboardInterrupt included), stores it and returns non-zero, which makes the
    library abort the operation cleanly with LLAVANEXT_E_ABORTED. After the C call returns,
    `finish()` re-raises the stored exception (chained to the LlavaNextError). Exceptions from a
    log callback are dropped (logging cannot abort anything).

    The object must outlive every C object that may call the trampolines; handles keep it in an
    attribute, and handles created from a model keep the model's.
    """

    def __init__(self, progress=None, log=None):
        self._progress = progress
        self._log = log
        self._errors = threading.local()
        self.c_progress = _lib.ProgressCallback(self._progress_trampoline) if progress else None
        self.c_log = _lib.LogCallback(self._log_trampoline) if log else None

    def _progress_trampoline(self, stage, done, total, user_data):
        if getattr(self._errors, "error", None) is not None:
            return 1
        try:
            go_on = self._progress(_enum_or_int(Stage, stage), int(done), int(total))
            return 0 if go_on is None or go_on else 1
        except BaseException as e:  # noqa: B902 - anything must be stopped at the C boundary
            self._errors.error = e
            return 1

    def _log_trampoline(self, level, message, user_data):
        try:
            self._log(_enum_or_int(LogLevel, level), message.decode("utf-8", "replace"))
        except BaseException:  # noqa: B902
            pass

    def install(self, params):
        if self.c_progress is not None:
            params.progress = self.c_progress
        if self.c_log is not None:
            params.log = self.c_log

    def finish(self, handle, status=None):
        """Turns a status into an exception after a call that may have run callbacks; with a
        handle (finish(handle, status)), the message is the handle's own last error."""
        if status is None:
            handle, status = None, handle
        err = None
        if status < 0:
            err = handle._error(status) if handle is not None else error_for(status)
        stored = getattr(self._errors, "error", None)
        if stored is not None:
            self._errors.error = None
            raise stored from err
        if err is not None:
            raise err
        return status


_NO_CALLBACKS = _Callbacks()


class _Handle:
    """An owned C handle freed by close(), the context manager or garbage collection."""

    _free_name = None
    _err_name = None  # llavanext_<object>_last_error: the handle's own error message

    def last_error(self):
        """The message of the most recent failed call on this handle ("" if none), whichever
        thread made it (llavanext_<object>_last_error)."""
        if not self._ptr or not self._err_name:
            return ""
        fn = getattr(_L(), self._err_name)
        n = fn(self._ptr, None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        fn(self._ptr, buf, n + 1)
        return buf.value.decode("utf-8", "replace")

    def _error(self, status):
        return error_for(status, self.last_error())

    def _check(self, status):
        """check() with the message taken from this handle rather than the thread."""
        if status < 0:
            raise self._error(status)
        return status

    def __init__(self):
        self._ptr = None

    def _set(self, ptr):
        self._ptr = ptr
        self._free = getattr(_L(), self._free_name)

    @property
    def _h(self):
        if not self._ptr:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._ptr

    @property
    def closed(self):
        return not self._ptr

    def close(self):
        """Frees the C object now. Calling close() again does nothing."""
        ptr, self._ptr = self._ptr, None
        if ptr:
            self._free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


class _Owner:
    """Owns a C pointer until nothing references it any more: Frames/Tensor objects and every
    buffer exported from them hold the owner, so close() on the value never pulls memory from
    under a numpy array still looking at it."""

    __slots__ = ("ptr", "_free")

    def __init__(self, ptr, free):
        self.ptr = ptr
        self._free = free

    def __del__(self):
        ptr, self.ptr = self.ptr, None
        if ptr:
            self._free(ptr)


class _Value:
    """Base of Frames and Tensor: a library-owned value with zero-copy buffer views."""

    _free_name = None

    def __init__(self, ptr):
        self._owner = _Owner(ptr, getattr(_L(), self._free_name))

    @property
    def _h(self):
        if self._owner is None:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._owner.ptr

    @property
    def closed(self):
        return self._owner is None

    def close(self):
        """Releases this object's hold on the C memory; it is freed at once unless buffers
        exported by buffer()/numpy() are still alive, then when the last one goes."""
        self._owner = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _raw(self, address, ctype, count):
        """A ctypes array over C memory that keeps the owner alive."""
        buf = (ctype * count).from_address(address)
        buf._llavanext_owner = self._owner  # ctypes instances take attributes: keeps it alive
        return buf


def _out():
    return ctypes.c_void_p()


# ---- frames and tensors ----------------------------------------------------------------------


class Frames(_Value):
    """A batch of RGB24 frames of one size (llavanext_frames).

    ``numpy()`` is a read-only uint8 array of shape (count, height, width, 3) over the library's
    memory (no copy); ``buffer()`` the same as a memoryview.
    """

    _free_name = "llavanext_frames_free"

    @classmethod
    def from_host(cls, pixel_format, planes, strides, width, height):
        """Copies one host frame (RGB24, YUV420P or NV12 planes: bytes-like objects) into a new
        one-frame batch."""
        keep = []
        c_planes = (ctypes.c_void_p * 3)()
        c_strides = (ctypes.c_int32 * 3)()
        for i, plane in enumerate(planes):
            if plane is None:
                continue
            mv = memoryview(plane).cast("B")
            if mv.readonly:
                mv = memoryview(bytearray(mv))
            cbuf = (ctypes.c_uint8 * mv.nbytes).from_buffer(mv)
            keep.append((mv, cbuf))
            c_planes[i] = ctypes.addressof(cbuf)
            c_strides[i] = strides[i]
        out = _out()
        check(_L().llavanext_frames_from_host(ctypes.byref(out), int(pixel_format), c_planes,
                                               c_strides, width, height))
        return cls(out.value)

    @classmethod
    def from_rgb(cls, pixels, width, height):
        """One frame from height x width x 3 RGB bytes (a bytes-like object or uint8 array)."""
        if _np is not None and isinstance(pixels, _np.ndarray):
            pixels = _np.ascontiguousarray(pixels, dtype=_np.uint8)
        return cls.from_host(PixelFormat.RGB24, [pixels, None, None], [width * 3, 0, 0], width,
                             height)

    @property
    def count(self):
        return _L().llavanext_frames_count(self._h)

    def __len__(self):
        return self.count

    @property
    def width(self):
        return _L().llavanext_frames_width(self._h)

    @property
    def height(self):
        return _L().llavanext_frames_height(self._h)

    def source_index(self, index):
        return _L().llavanext_frames_source_index(self._h, index)

    def timestamp(self, index):
        return _L().llavanext_frames_timestamp(self._h, index)

    def source_indices(self):
        return [self.source_index(i) for i in range(self.count)]

    def timestamps(self):
        return [self.timestamp(i) for i in range(self.count)]

    def buffer(self):
        """Read-only memoryview (count, height, width, 3) of uint8 over the C memory."""
        n, h, w = self.count, self.height, self.width
        size = n * h * w * 3
        if size == 0:
            return memoryview(b"")
        addr = _L().llavanext_frames_data(self._h, 0)
        raw = self._raw(addr, ctypes.c_uint8, size)
        return memoryview(raw).cast("B").cast("B", (n, h, w, 3)).toreadonly()

    def numpy(self):
        """Read-only numpy uint8 array (count, height, width, 3) sharing the C memory."""
        if _np is None:
            raise ImportError("numpy is not installed; use Frames.buffer()")
        n, h, w = self.count, self.height, self.width
        size = n * h * w * 3
        if size == 0:
            return _np.zeros((n, h, w, 3), dtype=_np.uint8)
        raw = self._raw(_L().llavanext_frames_data(self._h, 0), ctypes.c_uint8, size)
        arr = _np.frombuffer(raw, dtype=_np.uint8).reshape(n, h, w, 3)
        arr.flags.writeable = False
        return arr

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr.astype(dtype) if dtype is not None else arr

    def __repr__(self):
        if self.closed:
            return "<llavanext.Frames closed>"
        return "<llavanext.Frames %d x %dx%d>" % (self.count, self.width, self.height)


class Tensor(_Value):
    """A float32 array with a shape and a kind (llavanext_tensor).

    ``numpy()`` is a read-only float32 array over the library's memory (no copy); ``buffer()``
    the same as a memoryview.
    """

    _free_name = "llavanext_tensor_free"

    @classmethod
    def create(cls, kind, data, shape=None, image_height=0, image_width=0):
        """A new tensor holding a copy of `data` (a numpy array, a buffer of float32 or a
        sequence of numbers). `shape` defaults to the array's shape."""
        if _np is not None and isinstance(data, _np.ndarray):
            if shape is None:
                shape = data.shape
            data = _np.ascontiguousarray(data, dtype=_np.float32)
            mv = memoryview(data).cast("B")
        else:
            try:
                mv = memoryview(data)
                if mv.format not in ("f", "<f", "=f"):
                    raise TypeError
                if shape is None:
                    shape = mv.shape
                mv = mv.cast("B")
            except TypeError:
                values = array.array("f", data)
                if shape is None:
                    shape = (len(values),)
                mv = memoryview(values).cast("B")
        shape = tuple(int(d) for d in shape)
        dims = (ctypes.c_int64 * max(len(shape), 1))(*shape)
        if mv.readonly:
            mv = memoryview(bytearray(mv))
        cbuf = (ctypes.c_uint8 * mv.nbytes).from_buffer(mv) if mv.nbytes else None
        out = _out()
        check(_L().llavanext_tensor_create(ctypes.byref(out), int(kind), len(shape), dims,
                                           ctypes.addressof(cbuf) if cbuf is not None else None,
                                           image_height, image_width))
        return cls(out.value)

    @classmethod
    def concat(cls, tensors):
        """Concatenates tensors of one kind along their first dimension (e.g. the video
        embeddings of frame batches encoded one after another)."""
        tensors = list(tensors)
        arr = (ctypes.c_void_p * max(len(tensors), 1))(*[t._h for t in tensors])
        out = _out()
        check(_L().llavanext_tensor_concat(ctypes.byref(out), arr, len(tensors)))
        return cls(out.value)

    @property
    def kind(self):
        return _enum_or_int(TensorKind, _L().llavanext_tensor_kind(self._h))

    @property
    def ndim(self):
        return _L().llavanext_tensor_ndim(self._h)

    @property
    def shape(self):
        return tuple(_L().llavanext_tensor_dim(self._h, i) for i in range(self.ndim))

    @property
    def numel(self):
        return _L().llavanext_tensor_numel(self._h)

    @property
    def image_size(self):
        """(height, width) of the original image for image kinds, (0, 0) otherwise."""
        return (_L().llavanext_tensor_image_height(self._h), _L().llavanext_tensor_image_width(self._h))

    def buffer(self):
        """Read-only memoryview of float32 with the tensor's shape over the C memory."""
        n = self.numel
        if n == 0:
            return memoryview(array.array("f"))
        raw = self._raw(_L().llavanext_tensor_data(self._h), ctypes.c_float, n)
        return memoryview(raw).cast("B").cast("f", self.shape).toreadonly()

    def numpy(self):
        """Read-only numpy float32 array sharing the C memory."""
        if _np is None:
            raise ImportError("numpy is not installed; use Tensor.buffer()")
        n = self.numel
        if n == 0:
            return _np.zeros(self.shape, dtype=_np.float32)
        raw = self._raw(_L().llavanext_tensor_data(self._h), ctypes.c_float, n)
        arr = _np.frombuffer(raw, dtype=_np.float32).reshape(self.shape)
        arr.flags.writeable = False
        return arr

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        return arr.astype(dtype) if dtype is not None else arr

    def __repr__(self):
        if self.closed:
            return "<llavanext.Tensor closed>"
        return "<llavanext.Tensor %s %s>" % (self.kind.name if isinstance(self.kind, TensorKind)
                                             else self.kind, self.shape)


# ---- model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """The outcome of Model.plan_budget()."""

    tokens_per_frame: int
    visual_tokens: int
    total_tokens: int
    rope_scale: float
    context_length: int
    fits: bool
    suggested_frames: int
    suggested_pool_stride: int


class Model(_Handle):
    """A loaded checkpoint directory (llavanext_model). Immutable and safe to share between
    threads. Encoders, poolers and generators keep the C model alive, so it may be closed
    before them.

    progress(stage, done, total) is called during the load; return False to abort (None or True
    goes on); an exception it raises aborts the load and is re-raised by the constructor.
    log(level, message) receives the model's log messages. precision (a Precision) picks the
    compute precision of every encoder and generator of the model; None keeps the library's
    default (F32, the reference-exact path). weights (a Weights) converts the weights on load
    (Q8, Q4 or BF16; None keeps them as stored), with `threads` threads (0: one per CPU).
    """

    _free_name = "llavanext_model_free"
    _err_name = "llavanext_model_last_error"

    def __init__(self, path, *, load_mode=LoadMode.MMAP, check_finite=False, precision=None,
                 progress=None, log=None, weights=None, threads=0):
        super().__init__()
        lib = _L()
        self._callbacks = _Callbacks(progress, log)
        params = _lib.ModelParams()
        lib.llavanext_model_params_init(ctypes.byref(params), ctypes.sizeof(params))
        params.load_mode = int(load_mode)
        params.check_finite = 1 if check_finite else 0
        if precision is not None:
            params.precision = int(precision)
        if weights is not None:
            params.weights = int(weights)
        params.threads = int(threads)
        self._callbacks.install(params)
        out = _out()
        self._callbacks.finish(lib.llavanext_model_load(ctypes.byref(out), _path(path),
                                                        ctypes.byref(params)))
        self._set(out.value)

    def token_id(self, which):
        """Id of a SpecialToken, or -1 when the model has none."""
        return _L().llavanext_model_token_id(self._h, int(which))

    @property
    def bos_id(self):
        return self.token_id(SpecialToken.BOS)

    @property
    def eos_id(self):
        return self.token_id(SpecialToken.EOS)

    @property
    def video_token_id(self):
        return self.token_id(SpecialToken.VIDEO)

    @property
    def image_token_id(self):
        return self.token_id(SpecialToken.IMAGE)

    @property
    def vocab_size(self):
        return _L().llavanext_model_vocab_size(self._h)

    def context_length(self, rope_scale=0.0):
        return _L().llavanext_model_context_length(self._h, rope_scale)

    def tokens_per_frame(self, pool_stride=0):
        return _L().llavanext_model_tokens_per_frame(self._h, pool_stride)

    def image_tokens(self, height, width):
        return _L().llavanext_model_image_tokens(self._h, height, width)

    def describe(self):
        """The model description as a dict (parsed from llavanext_model_describe's JSON)."""
        out = _out()
        self._check(_L().llavanext_model_describe(ctypes.byref(out), self._h))
        return json.loads(_take_string(out.value))

    def tokenize(self, text, add_bos=True):
        """Token ids of `text` (str or UTF-8 bytes)."""
        data = _encode(text)
        ids = ctypes.POINTER(ctypes.c_int32)()
        count = ctypes.c_size_t()
        self._check(_L().llavanext_model_tokenize(ctypes.byref(ids), ctypes.byref(count), self._h, data,
                                            len(data), 1 if add_bos else 0))
        try:
            return ids[: count.value]
        finally:
            _L().llavanext_free(ids)

    def detokenize(self, ids, skip_special=True):
        ids = list(ids)
        arr = (ctypes.c_int32 * max(len(ids), 1))(*ids)
        out = _out()
        self._check(_L().llavanext_model_detokenize(ctypes.byref(out), self._h, arr, len(ids),
                                              1 if skip_special else 0))
        return _take_string(out.value)

    def render_chat(self, messages, add_generation_prompt=True):
        """The prompt for a conversation, rendered with the checkpoint's chat template.
        `messages` is a list of {"role", "content"} dicts (or that list as a JSON string)."""
        if not isinstance(messages, (str, bytes)):
            messages = json.dumps(messages, ensure_ascii=False)
        out = _out()
        self._check(_L().llavanext_model_render_chat(ctypes.byref(out), self._h, _encode(messages),
                                               1 if add_generation_prompt else 0))
        return _take_string(out.value)

    def plan_budget(self, frames, pool_stride=0, image_tokens=0, text_tokens=0,
                    max_new_tokens=0, rope_scale=0.0, context_limit=0):
        """Do `frames` video frames etc. fit into the context? rope_scale < 0 = "auto";
        context_limit > 0 caps the context."""
        b = _lib.Budget()
        b.struct_size = ctypes.sizeof(b)
        self._check(_L().llavanext_model_plan_budget(ctypes.byref(b), self._h, frames, pool_stride,
                                               image_tokens, text_tokens, max_new_tokens,
                                               rope_scale, context_limit))
        return Budget(b.tokens_per_frame, b.visual_tokens, b.total_tokens, b.rope_scale,
                      b.context_length, bool(b.fits), b.suggested_frames,
                      b.suggested_pool_stride)


# ---- frame sampler ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaInfo:
    width: int
    height: int
    rotation: int
    is_image: bool
    frame_count_exact: bool
    frame_count: int
    duration: float
    fps: float
    container: str
    codec: str


class FrameSampler(_Handle):
    """An opened video or image (llavanext_frame_sampler): a path, or the media's bytes."""

    _free_name = "llavanext_frame_sampler_free"
    _err_name = "llavanext_frame_sampler_last_error"

    def __init__(self, source, *, threads=0, apply_rotation=True, skip_corrupt=False,
                 max_frame_pixels=0, log=None):
        super().__init__()
        lib = _L()
        params = _lib.FrameSamplerParams()
        lib.llavanext_frame_sampler_params_init(ctypes.byref(params), ctypes.sizeof(params))
        params.threads = threads
        params.apply_rotation = 1 if apply_rotation else 0
        params.skip_corrupt = 1 if skip_corrupt else 0
        params.max_frame_pixels = max_frame_pixels
        # log(level, message): the demuxer's and decoder's (libav's) messages about this source
        self._callbacks = _Callbacks(log=log) if log else _NO_CALLBACKS
        self._callbacks.install(params)
        out = _out()
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            check(lib.llavanext_frame_sampler_open_memory(ctypes.byref(out), data, len(data),
                                                          ctypes.byref(params)))
        else:
            check(lib.llavanext_frame_sampler_open(ctypes.byref(out), _path(source),
                                                   ctypes.byref(params)))
        self._set(out.value)

    def info(self):
        i = _lib.MediaInfo()
        i.struct_size = ctypes.sizeof(i)
        self._check(_L().llavanext_frame_sampler_info(ctypes.byref(i), self._h))
        return MediaInfo(i.width, i.height, i.rotation, bool(i.is_image),
                         bool(i.frame_count_exact), i.frame_count, i.duration, i.fps,
                         i.container.decode("utf-8", "replace"), i.codec.decode("utf-8", "replace"))

    def _frames(self, fn, *args):
        out = _out()
        self._check(fn(ctypes.byref(out), self._h, *args))
        return Frames(out.value)

    def uniform(self, count):
        """`count` frames spread uniformly (frame k is index floor(k * frame_count / count))."""
        return self._frames(_L().llavanext_frame_sampler_uniform, count)

    def by_fps(self, fps, max_count):
        return self._frames(_L().llavanext_frame_sampler_by_fps, float(fps), max_count)

    def at_times(self, times):
        times = [float(t) for t in times]
        arr = (ctypes.c_double * max(len(times), 1))(*times)
        return self._frames(_L().llavanext_frame_sampler_at_times, arr, len(times))

    def at_indices(self, indices):
        indices = [int(i) for i in indices]
        arr = (ctypes.c_int64 * max(len(indices), 1))(*indices)
        return self._frames(_L().llavanext_frame_sampler_at_indices, arr, len(indices))

    def iter_uniform(self, count, max_batch=8):
        """Yields the `count` uniformly spread frames in batches of at most `max_batch`, never
        holding the whole selection in memory."""
        lib = _L()
        self._check(lib.llavanext_frame_sampler_begin_uniform(self._h, count))
        while True:
            out = _out()
            st = self._check(lib.llavanext_frame_sampler_next(ctypes.byref(out), self._h, max_batch))
            if st == Status.DONE:
                return
            yield Frames(out.value)


# ---- vision encoder and pooler ---------------------------------------------------------------


class VisionEncoder(_Handle):
    """The vision tower (llavanext_vision_encoder). progress(stage, done, total) as for Model
    (stage ENCODE); cancel() may be called from another thread. max_request_bytes caps the memory
    of one call (None: the library's default)."""

    _free_name = "llavanext_vision_encoder_free"
    _err_name = "llavanext_vision_encoder_last_error"

    def __init__(self, model, *, threads=0, max_batch_frames=0, max_request_bytes=None,
                 progress=None, log=None):
        super().__init__()
        lib = _L()
        self._model_callbacks = model._callbacks
        self._callbacks = _Callbacks(progress, log)
        params = _lib.VisionEncoderParams()
        lib.llavanext_vision_encoder_params_init(ctypes.byref(params), ctypes.sizeof(params))
        params.threads = threads
        params.max_batch_frames = max_batch_frames
        if max_request_bytes is not None:
            params.max_request_bytes = max_request_bytes
        self._callbacks.install(params)
        out = _out()
        check(lib.llavanext_vision_encoder_create(ctypes.byref(out), model._h, ctypes.byref(params)))
        self._set(out.value)

    def _tensor(self, fn, *args):
        out = _out()
        self._callbacks.finish(self, fn(ctypes.byref(out), self._h, *args))
        return Tensor(out.value)

    def preprocess_video(self, frames):
        return self._tensor(_L().llavanext_vision_encoder_preprocess_video, frames._h)

    def preprocess_image(self, frames, index=0):
        return self._tensor(_L().llavanext_vision_encoder_preprocess_image, frames._h, index)

    def encode_pixels(self, pixels):
        return self._tensor(_L().llavanext_vision_encoder_encode_pixels, pixels._h)

    def encode_video(self, frames):
        """Frames -> VIDEO_FEATURES."""
        return self._tensor(_L().llavanext_vision_encoder_encode_video, frames._h)

    def encode_image(self, frames, index=0):
        return self._tensor(_L().llavanext_vision_encoder_encode_image, frames._h, index)

    def cancel(self):
        ptr = self._ptr
        if ptr:
            _L().llavanext_vision_encoder_cancel(ptr)


class Pooler(_Handle):
    """Spatial pooling + projector (llavanext_pooler)."""

    _free_name = "llavanext_pooler_free"
    _err_name = "llavanext_pooler_last_error"

    def __init__(self, model, *, threads=0, pool_stride=0, pool_mode=PoolMode.DEFAULT):
        super().__init__()
        lib = _L()
        self._model_callbacks = model._callbacks
        params = _lib.PoolerParams()
        lib.llavanext_pooler_params_init(ctypes.byref(params), ctypes.sizeof(params))
        params.threads = threads
        params.pool_stride = pool_stride
        params.pool_mode = int(pool_mode)
        out = _out()
        check(lib.llavanext_pooler_create(ctypes.byref(out), model._h, ctypes.byref(params)))
        self._set(out.value)

    @property
    def tokens_per_frame(self):
        return _L().llavanext_pooler_tokens_per_frame(self._h)

    def _tensor(self, fn, features):
        out = _out()
        self._check(fn(ctypes.byref(out), self._h, features))
        return Tensor(out.value)

    def pool(self, features):
        return self._tensor(_L().llavanext_pooler_pool, features._h)

    def project(self, features):
        return self._tensor(_L().llavanext_pooler_project, features._h)

    def pack_image(self, projected):
        return self._tensor(_L().llavanext_pooler_pack_image, projected._h)

    def apply(self, features):
        """VIDEO_FEATURES -> VIDEO_EMBEDDINGS, IMAGE_FEATURES -> IMAGE_EMBEDDINGS."""
        return self._tensor(_L().llavanext_pooler_apply, features._h)


# ---- generator -------------------------------------------------------------------------------

#: One generated token: its text piece (whole UTF-8 characters, possibly empty) and its id
#: (-1 for the final flush of pending text).
Token = namedtuple("Token", ["piece", "id"])


class Generator(_Handle):
    """One conversation with the language model (llavanext_generator).

    Keyword arguments left as None keep the library's defaults (see llavanext.h): temperature
    -1 = generation_config.json's, 0 = greedy. progress(stage, done, total) reports PREFILL and
    GENERATE; return False or raise to abort (the exception is re-raised by the call).

    Iterating over a generator (or ``stream()``) yields the answer's text pieces as they are
    generated; ``tokens()`` yields Token(piece, id) tuples.
    """

    _free_name = "llavanext_generator_free"
    _err_name = "llavanext_generator_last_error"

    _PARAMS = ("threads", "context_length", "rope_scale", "max_new_tokens", "temperature",
               "top_k", "top_p", "min_p", "repetition_penalty", "seed", "prefill_chunk",
               "max_request_bytes", "kv_cache")

    def __init__(self, model, *, threads=None, context_length=None, rope_scale=None,
                 max_new_tokens=None, temperature=None, top_k=None, top_p=None, min_p=None,
                 repetition_penalty=None, seed=None, prefill_chunk=None, max_request_bytes=None,
                 kv_cache=None, progress=None, log=None):
        super().__init__()
        lib = _L()
        self._model_callbacks = model._callbacks
        self._callbacks = _Callbacks(progress, log)
        self._token_cb_error = None
        params = _lib.GeneratorParams()
        lib.llavanext_generator_params_init(ctypes.byref(params), ctypes.sizeof(params))
        values = dict(threads=threads, context_length=context_length, rope_scale=rope_scale,
                      max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                      top_p=top_p, min_p=min_p, repetition_penalty=repetition_penalty, seed=seed,
                      prefill_chunk=prefill_chunk, max_request_bytes=max_request_bytes,
                      kv_cache=kv_cache)
        for name, value in values.items():
            if value is not None:
                setattr(params, name, value)
        self._callbacks.install(params)
        out = _out()
        check(lib.llavanext_generator_create(ctypes.byref(out), model._h, ctypes.byref(params)))
        self._set(out.value)

    def append_prompt(self, text, media=()):
        """Appends prompt text; each <video>/<image> placeholder takes the next tensor of
        `media` (VIDEO_EMBEDDINGS / IMAGE_EMBEDDINGS, copied)."""
        data = _encode(text)
        media = list(media)
        arr = (ctypes.c_void_p * max(len(media), 1))(*[m._h for m in media])
        self._check(_L().llavanext_generator_append_prompt(self._h, data, len(data), arr, len(media)))

    def append_tokens(self, ids):
        ids = list(ids)
        arr = (ctypes.c_int32 * max(len(ids), 1))(*ids)
        self._check(_L().llavanext_generator_append_tokens(self._h, arr, len(ids)))

    def prefill(self):
        self._callbacks.finish(self, _L().llavanext_generator_prefill(self._h))

    def next_token(self):
        """Generates one token. Returns Token(piece, id); None when generation has stopped and
        no text is pending (at the stop any pending text comes as Token(piece, -1))."""
        piece = ctypes.c_void_p()
        length = ctypes.c_size_t()
        token = ctypes.c_int32()
        st = _L().llavanext_generator_next(self._h, ctypes.byref(piece), ctypes.byref(length),
                                           ctypes.byref(token))
        self._callbacks.finish(self, st)
        text = ctypes.string_at(piece.value, length.value).decode("utf-8") if length.value else ""
        if st == Status.DONE:
            return Token(text, -1) if text else None
        return Token(text, token.value)

    def tokens(self):
        """Yields Token(piece, id) until generation stops."""
        while True:
            t = self.next_token()
            if t is None:
                return
            yield t
            if t.id < 0:
                return

    def stream(self):
        """Yields the non-empty text pieces until generation stops."""
        for t in self.tokens():
            if t.piece:
                yield t.piece

    __iter__ = stream

    def generate_text(self):
        """Generates to the end and returns the whole answer."""
        return "".join(self.stream())

    def generate(self, callback):
        """Push helper (llavanext_generator_generate): callback(piece, token_id) for every piece;
        returning False stops generation; an exception stops it and is re-raised."""
        errors = []

        def trampoline(piece, length, token, user_data):
            try:
                text = ctypes.string_at(piece, length).decode("utf-8") if length else ""
                go_on = callback(text, int(token))
                return 0 if go_on is None or go_on else 1
            except BaseException as e:  # noqa: B902
                errors.append(e)
                return 1

        c_cb = _lib.TokenCallback(trampoline)
        st = _L().llavanext_generator_generate(self._h, c_cb, None)
        try:
            self._callbacks.finish(self, st)
        except BaseException as e:
            if errors:
                raise errors[0] from e
            raise
        if errors:
            raise errors[0]

    def add_stop_string(self, stop):
        self._check(_L().llavanext_generator_add_stop_string(self._h, _encode(stop)))

    def score(self, continuation):
        """(sum of natural-log probabilities, number of tokens) of `continuation`."""
        data = _encode(continuation)
        value = ctypes.c_double()
        n = ctypes.c_int32()
        self._callbacks.finish(self, _L().llavanext_generator_score(ctypes.byref(value), ctypes.byref(n),
                                                              self, data, len(data)))
        return value.value, n.value

    def reset(self):
        _L().llavanext_generator_reset(self._h)

    def logits(self):
        """A copy of the last position's logits as array.array('f')."""
        ptr = ctypes.POINTER(ctypes.c_float)()
        count = ctypes.c_int32()
        self._check(_L().llavanext_generator_logits(ctypes.byref(ptr), ctypes.byref(count), self._h))
        out = array.array("f")
        out.frombytes(ctypes.string_at(ptr, count.value * 4))
        return out

    @property
    def position(self):
        return _L().llavanext_generator_position(self._h)

    @property
    def context_length(self):
        return _L().llavanext_generator_context_length(self._h)

    def token_ids(self):
        """A copy of the conversation's token ids."""
        n = self.position
        ptr = _L().llavanext_generator_tokens(self._h)
        return ptr[:n] if n and ptr else []

    def cancel(self):
        """Stops a prefill/generation running on another thread (it fails with AbortedError)."""
        ptr = self._ptr
        if ptr:
            _L().llavanext_generator_cancel(ptr)


# ---- process-wide ----------------------------------------------------------------------------

# ---- embedding cache -------------------------------------------------------------------------


class CacheSampling(enum.IntEnum):
    UNIFORM = 0
    FPS = 1
    IMAGE = 2


def media_hash(data=None, *, path=None):
    """SHA-256 (32 bytes) of media bytes, or of the file at `path`: the cache's content key."""
    out = (ctypes.c_uint8 * 32)()
    if path is not None:
        check(_L().llavanext_media_hash_file(out, _path(path)))
    else:
        data = bytes(data)
        check(_L().llavanext_media_hash_memory(out, data, len(data)))
    return bytes(out)


@dataclass
class CacheStats:
    hits: int
    misses: int
    corrupt: int
    writes: int
    evictions: int
    entries: int
    bytes: int


class EmbeddingCache(_Handle):
    """A directory of cached media embeddings (llavanext_embedding_cache), safe to share between
    threads and processes. get() returns a Tensor or None; put() stores one. The key is the
    media's SHA-256 (media_hash()), the sampling, the frame count and fps, the pooling and the
    model."""

    _free_name = "llavanext_embedding_cache_free"
    _err_name = "llavanext_embedding_cache_last_error"

    def __init__(self, directory, *, max_bytes=0):
        super().__init__()
        lib = _L()
        params = _lib.EmbeddingCacheParams()
        lib.llavanext_embedding_cache_params_init(ctypes.byref(params), ctypes.sizeof(params))
        params.max_bytes = max_bytes
        out = _out()
        check(lib.llavanext_embedding_cache_open(ctypes.byref(out), _path(directory), ctypes.byref(params)))
        self._set(out.value)

    @staticmethod
    def _key(media_sha256, sampling, frames, fps, pool_stride, pool_mode, raw_orientation=False):
        key = _lib.EmbeddingKey()
        _L().llavanext_embedding_key_init(ctypes.byref(key), ctypes.sizeof(key))
        if len(media_sha256) != 32:
            raise ValueError("media_sha256 must be 32 bytes (media_hash())")
        key.media_sha256[:] = list(media_sha256)
        key.sampling = int(sampling)
        key.frames = frames
        key.fps = fps
        key.pool_stride = pool_stride
        key.pool_mode = int(pool_mode)
        key.raw_orientation = 1 if raw_orientation else 0
        return key

    def get(self, model, media_sha256, *, sampling=CacheSampling.UNIFORM, frames=0, fps=0.0, pool_stride=0,
            pool_mode=PoolMode.DEFAULT, raw_orientation=False):
        key = self._key(media_sha256, sampling, frames, fps, pool_stride, pool_mode, raw_orientation)
        out = _out()
        self._check(_L().llavanext_embedding_cache_get(ctypes.byref(out), self._h, model._h, ctypes.byref(key)))
        return Tensor(out.value) if out.value else None

    def put(self, model, media_sha256, embeddings, *, sampling=CacheSampling.UNIFORM, frames=0, fps=0.0,
            pool_stride=0, pool_mode=PoolMode.DEFAULT, raw_orientation=False):
        key = self._key(media_sha256, sampling, frames, fps, pool_stride, pool_mode, raw_orientation)
        self._check(_L().llavanext_embedding_cache_put(self._h, model._h, ctypes.byref(key), embeddings._h))

    def stats(self):
        s = _lib.EmbeddingCacheStats()
        s.struct_size = ctypes.sizeof(s)
        self._check(_L().llavanext_embedding_cache_stats_get(ctypes.byref(s), self._h))
        return CacheStats(s.hits, s.misses, s.corrupt, s.writes, s.evictions, s.entries, s.bytes)


_default_log = None
_default_log_lock = threading.Lock()


def set_default_log(callback):
    """Sets the process-wide default log callback(level, message); None silences the library."""
    global _default_log
    with _default_log_lock:
        cbs = _Callbacks(log=callback) if callback else None
        _L().llavanext_set_default_log(cbs.c_log if cbs else _lib.LogCallback(), None)
        _default_log = cbs  # the old trampoline is released only after the library let go


def version():
    """The linked library's version string."""
    return _L().llavanext_version().decode()


def version_number():
    return _L().llavanext_version_number()


def last_error():
    return _L().llavanext_last_error().decode("utf-8", "replace")


__all__ = [
    "Budget", "CacheSampling", "CacheStats", "EmbeddingCache", "Frames", "FrameSampler", "Generator",
    "LoadMode", "LogLevel", "MediaInfo", "media_hash",
    "Model", "PixelFormat", "PoolMode", "Precision", "Pooler", "SpecialToken", "Stage", "Tensor",
    "TensorKind", "Token", "VisionEncoder", "LlavaNextError", "set_default_log", "version",
    "version_number", "last_error",
]
