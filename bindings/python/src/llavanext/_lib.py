"""Finding libllavanext and declaring its C functions with ctypes.

The shared library is looked up, in this order:

1. ``LLAVANEXT_LIBRARY``: the path of ``libllavanext.so`` (or of the directory holding it);
2. the dynamic loader's own search (``LD_LIBRARY_PATH``, the ldconfig cache), then
   ``ctypes.util.find_library("llavanext")``;
3. ``pkg-config``: the ``-L`` directories of ``pkg-config --libs-only-L llavanext`` (these are
   right for meson's uninstalled ``.pc`` files in ``BUILD/meson-uninstalled`` too), then
   ``pkg-config --variable=libdir llavanext``.
"""

import ctypes
import ctypes.util
import glob
import os
import shutil
import subprocess

#: The library version this binding was written for (LLAVANEXT_VERSION_NUMBER encoding).
BINDING_VERSION_NUMBER = 100  # 0.1.0
_ABI = 0  # the soname number, libllavanext.so.0

c_int32 = ctypes.c_int32
c_int64 = ctypes.c_int64
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_size_t = ctypes.c_size_t
c_double = ctypes.c_double
c_float = ctypes.c_float
c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
POINTER = ctypes.POINTER

# ---- callback types --------------------------------------------------------------------------

LogCallback = ctypes.CFUNCTYPE(None, c_int32, c_char_p, c_void_p)
ProgressCallback = ctypes.CFUNCTYPE(c_int32, c_int32, c_int64, c_int64, c_void_p)
# The piece is not NUL-terminated, so it is declared as a plain pointer.
TokenCallback = ctypes.CFUNCTYPE(c_int32, c_void_p, c_size_t, c_int32, c_void_p)

# ---- parameter and result structs (mirrors of llavanext.h) -----------------------------------


class ModelParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("load_mode", c_int32),
        ("check_finite", c_int32),
        ("progress", ProgressCallback),
        ("progress_user_data", c_void_p),
        ("log", LogCallback),
        ("log_user_data", c_void_p),
        ("precision", c_int32),
        ("weights", ctypes.c_int64),
        ("threads", c_int32),
    ]


class Budget(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("tokens_per_frame", c_int32),
        ("visual_tokens", c_int64),
        ("total_tokens", c_int64),
        ("rope_scale", c_double),
        ("context_length", c_int64),
        ("fits", c_int32),
        ("suggested_frames", c_int32),
        ("suggested_pool_stride", c_int32),
    ]


class FrameSamplerParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("threads", c_int32),
        ("apply_rotation", c_int32),
        ("skip_corrupt", c_int32),
        ("max_frame_pixels", c_int64),
        ("log", LogCallback),
        ("log_user_data", c_void_p),
    ]


class MediaInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("width", c_int32),
        ("height", c_int32),
        ("rotation", c_int32),
        ("is_image", c_int32),
        ("frame_count_exact", c_int32),
        ("frame_count", c_int64),
        ("duration", c_double),
        ("fps", c_double),
        ("container", ctypes.c_char * 64),
        ("codec", ctypes.c_char * 64),
    ]


class VisionEncoderParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("threads", c_int32),
        ("max_batch_frames", c_int32),
        ("progress", ProgressCallback),
        ("progress_user_data", c_void_p),
        ("log", LogCallback),
        ("log_user_data", c_void_p),
        ("max_request_bytes", c_int64),
        ("threadpool", c_void_p),
    ]


class PoolerParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("threads", c_int32),
        ("pool_stride", c_int32),
        ("pool_mode", c_int32),
        ("threadpool", c_void_p),
    ]


class GeneratorParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("threads", c_int32),
        ("context_length", c_int64),
        ("rope_scale", c_double),
        ("max_new_tokens", c_int32),
        ("temperature", c_float),
        ("top_k", c_int32),
        ("top_p", c_float),
        ("min_p", c_float),
        ("repetition_penalty", c_float),
        ("seed", c_uint64),
        ("prefill_chunk", c_int32),
        ("progress", ProgressCallback),
        ("progress_user_data", c_void_p),
        ("log", LogCallback),
        ("log_user_data", c_void_p),
        ("max_request_bytes", c_int64),
        ("threadpool", c_void_p),
        ("kv_cache", c_int32),
    ]


class EmbeddingCacheParams(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("max_bytes", c_int64),
    ]


class EmbeddingKey(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("media_sha256", ctypes.c_uint8 * 32),
        ("sampling", c_int32),
        ("frames", c_int32),
        ("fps", c_double),
        ("pool_stride", c_int32),
        ("pool_mode", c_int32),
        ("raw_orientation", c_int32),
    ]


class EmbeddingCacheStats(ctypes.Structure):
    _fields_ = [
        ("struct_size", c_uint32),
        ("hits", c_int64),
        ("misses", c_int64),
        ("corrupt", c_int64),
        ("writes", c_int64),
        ("evictions", c_int64),
        ("entries", c_int64),
        ("bytes", c_int64),
    ]


# ---- function table --------------------------------------------------------------------------

_st = c_int32  # llavanext_status
_pp = POINTER(c_void_p)  # `T **out` for an opaque handle
_vp = c_void_p

# name: (restype, argtypes)
_FUNCTIONS = {
    "llavanext_version": (c_char_p, []),
    "llavanext_version_number": (c_int32, []),
    "llavanext_status_string": (c_char_p, [_st]),
    "llavanext_last_error": (c_char_p, []),
    "llavanext_free": (None, [_vp]),
    "llavanext_set_default_log": (None, [LogCallback, _vp]),
    # model
    "llavanext_model_params_init": (None, [POINTER(ModelParams), c_size_t]),
    "llavanext_model_load": (_st, [_pp, c_char_p, POINTER(ModelParams)]),
    "llavanext_model_free": (None, [_vp]),
    "llavanext_model_token_id": (c_int32, [_vp, c_int32]),
    "llavanext_model_vocab_size": (c_int32, [_vp]),
    "llavanext_model_context_length": (c_int64, [_vp, c_double]),
    "llavanext_model_tokens_per_frame": (c_int32, [_vp, c_int32]),
    "llavanext_model_image_tokens": (c_int64, [_vp, c_int32, c_int32]),
    "llavanext_model_describe": (_st, [_pp, _vp]),
    "llavanext_model_tokenize": (_st, [POINTER(POINTER(c_int32)), POINTER(c_size_t), _vp, c_char_p, c_size_t, c_int32]),
    "llavanext_model_detokenize": (_st, [_pp, _vp, POINTER(c_int32), c_size_t, c_int32]),
    "llavanext_model_render_chat": (_st, [_pp, _vp, c_char_p, c_int32]),
    "llavanext_model_plan_budget": (_st, [POINTER(Budget), _vp, c_int32, c_int32, c_int64, c_int64, c_int32, c_double, c_int64]),
    # frames
    "llavanext_frames_count": (c_int32, [_vp]),
    "llavanext_frames_width": (c_int32, [_vp]),
    "llavanext_frames_height": (c_int32, [_vp]),
    "llavanext_frames_data": (_vp, [_vp, c_int32]),
    "llavanext_frames_source_index": (c_int64, [_vp, c_int32]),
    "llavanext_frames_timestamp": (c_double, [_vp, c_int32]),
    "llavanext_frames_from_host": (_st, [_pp, c_int32, POINTER(c_void_p), POINTER(c_int32), c_int32, c_int32]),
    "llavanext_frames_free": (None, [_vp]),
    # frame sampler
    "llavanext_frame_sampler_params_init": (None, [POINTER(FrameSamplerParams), c_size_t]),
    "llavanext_frame_sampler_open": (_st, [_pp, c_char_p, POINTER(FrameSamplerParams)]),
    "llavanext_frame_sampler_open_memory": (_st, [_pp, _vp, c_size_t, POINTER(FrameSamplerParams)]),
    "llavanext_frame_sampler_free": (None, [_vp]),
    "llavanext_frame_sampler_info": (_st, [POINTER(MediaInfo), _vp]),
    "llavanext_frame_sampler_uniform": (_st, [_pp, _vp, c_int32]),
    "llavanext_frame_sampler_by_fps": (_st, [_pp, _vp, c_double, c_int32]),
    "llavanext_frame_sampler_at_times": (_st, [_pp, _vp, POINTER(c_double), c_int32]),
    "llavanext_frame_sampler_at_indices": (_st, [_pp, _vp, POINTER(c_int64), c_int32]),
    "llavanext_frame_sampler_begin_uniform": (_st, [_vp, c_int32]),
    "llavanext_frame_sampler_next": (_st, [_pp, _vp, c_int32]),
    # tensors
    "llavanext_tensor_kind": (c_int32, [_vp]),
    "llavanext_tensor_ndim": (c_int32, [_vp]),
    "llavanext_tensor_dim": (c_int64, [_vp, c_int32]),
    "llavanext_tensor_numel": (c_int64, [_vp]),
    "llavanext_tensor_data": (_vp, [_vp]),
    "llavanext_tensor_image_height": (c_int32, [_vp]),
    "llavanext_tensor_image_width": (c_int32, [_vp]),
    "llavanext_tensor_create": (_st, [_pp, c_int32, c_int32, POINTER(c_int64), _vp, c_int32, c_int32]),
    "llavanext_tensor_concat": (_st, [_pp, POINTER(c_void_p), c_int32]),
    "llavanext_tensor_free": (None, [_vp]),
    # vision encoder
    "llavanext_vision_encoder_params_init": (None, [POINTER(VisionEncoderParams), c_size_t]),
    "llavanext_vision_encoder_create": (_st, [_pp, _vp, POINTER(VisionEncoderParams)]),
    "llavanext_vision_encoder_free": (None, [_vp]),
    "llavanext_vision_encoder_preprocess_video": (_st, [_pp, _vp, _vp]),
    "llavanext_vision_encoder_preprocess_image": (_st, [_pp, _vp, _vp, c_int32]),
    "llavanext_vision_encoder_encode_pixels": (_st, [_pp, _vp, _vp]),
    "llavanext_vision_encoder_encode_video": (_st, [_pp, _vp, _vp]),
    "llavanext_vision_encoder_encode_image": (_st, [_pp, _vp, _vp, c_int32]),
    "llavanext_vision_encoder_cancel": (None, [_vp]),
    # pooler
    "llavanext_pooler_params_init": (None, [POINTER(PoolerParams), c_size_t]),
    "llavanext_pooler_create": (_st, [_pp, _vp, POINTER(PoolerParams)]),
    "llavanext_pooler_free": (None, [_vp]),
    "llavanext_threadpool_create": (_st, [ctypes.POINTER(_vp), c_int32]),
    "llavanext_threadpool_free": (None, [_vp]),
    "llavanext_threadpool_threads": (c_int32, [_vp]),
    "llavanext_pooler_tokens_per_frame": (c_int32, [_vp]),
    "llavanext_pooler_pool": (_st, [_pp, _vp, _vp]),
    "llavanext_pooler_project": (_st, [_pp, _vp, _vp]),
    "llavanext_pooler_pack_image": (_st, [_pp, _vp, _vp]),
    "llavanext_pooler_apply": (_st, [_pp, _vp, _vp]),
    # generator
    "llavanext_generator_params_init": (None, [POINTER(GeneratorParams), c_size_t]),
    "llavanext_generator_create": (_st, [_pp, _vp, POINTER(GeneratorParams)]),
    "llavanext_generator_free": (None, [_vp]),
    "llavanext_generator_append_prompt": (_st, [_vp, c_char_p, c_size_t, POINTER(c_void_p), c_int32]),
    "llavanext_generator_append_tokens": (_st, [_vp, POINTER(c_int32), c_size_t]),
    "llavanext_generator_prefill": (_st, [_vp]),
    "llavanext_generator_next": (_st, [_vp, POINTER(c_void_p), POINTER(c_size_t), POINTER(c_int32)]),
    "llavanext_generator_generate": (_st, [_vp, TokenCallback, _vp]),
    "llavanext_generator_add_stop_string": (_st, [_vp, c_char_p]),
    "llavanext_generator_score": (_st, [POINTER(c_double), POINTER(c_int32), _vp, c_char_p, c_size_t]),
    "llavanext_generator_reset": (None, [_vp]),
    "llavanext_generator_logits": (_st, [POINTER(POINTER(c_float)), POINTER(c_int32), _vp]),
    "llavanext_generator_position": (c_int64, [_vp]),
    "llavanext_generator_context_length": (c_int64, [_vp]),
    "llavanext_generator_tokens": (POINTER(c_int32), [_vp]),
    "llavanext_generator_cancel": (None, [_vp]),
    # per-handle error messages
    "llavanext_model_last_error": (c_size_t, [_vp, c_char_p, c_size_t]),
    "llavanext_frame_sampler_last_error": (c_size_t, [_vp, c_char_p, c_size_t]),
    "llavanext_vision_encoder_last_error": (c_size_t, [_vp, c_char_p, c_size_t]),
    "llavanext_pooler_last_error": (c_size_t, [_vp, c_char_p, c_size_t]),
    "llavanext_generator_last_error": (c_size_t, [_vp, c_char_p, c_size_t]),
    # embedding cache
    "llavanext_embedding_cache_params_init": (None, [POINTER(EmbeddingCacheParams), c_size_t]),
    "llavanext_embedding_cache_open": (_st, [_pp, c_char_p, POINTER(EmbeddingCacheParams)]),
    "llavanext_embedding_cache_free": (None, [_vp]),
    "llavanext_embedding_key_init": (None, [POINTER(EmbeddingKey), c_size_t]),
    "llavanext_media_hash_memory": (_st, [POINTER(ctypes.c_uint8), _vp, c_size_t]),
    "llavanext_media_hash_file": (_st, [POINTER(ctypes.c_uint8), c_char_p]),
    "llavanext_embedding_cache_get": (_st, [_pp, _vp, _vp, POINTER(EmbeddingKey)]),
    "llavanext_embedding_cache_put": (_st, [_vp, _vp, POINTER(EmbeddingKey), _vp]),
    "llavanext_embedding_cache_stats_get": (_st, [POINTER(EmbeddingCacheStats), _vp]),
    "llavanext_embedding_cache_last_error": (c_size_t, [_vp, c_char_p, c_size_t]),
}


class LibraryNotFound(OSError):
    """libllavanext could not be found or is not a version this binding supports."""


def _sonames():
    return ["libllavanext.so.%d" % _ABI, "libllavanext.so"]


def _in_dir(directory):
    for name in _sonames():
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    found = sorted(glob.glob(os.path.join(directory, "libllavanext.so.*")))
    return found[0] if found else None


def _pkg_config_dirs():
    exe = os.environ.get("PKG_CONFIG") or shutil.which("pkg-config")
    if not exe:
        return []
    dirs = []
    for args in (["--libs-only-L"], ["--variable=libdir"]):
        try:
            out = subprocess.run([exe] + args + ["llavanext"], check=True, capture_output=True,
                                 text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for word in out.split():
            d = word[2:] if word.startswith("-L") else word
            if d and d not in dirs:
                dirs.append(d)
    return dirs


def _candidates():
    """Yields (how, path-or-name) in search order."""
    env = os.environ.get("LLAVANEXT_LIBRARY")
    if env:
        if os.path.isdir(env):
            path = _in_dir(env)
            yield "LLAVANEXT_LIBRARY", path or os.path.join(env, _sonames()[0])
        else:
            yield "LLAVANEXT_LIBRARY", env
        return  # an explicit choice is not second-guessed
    for name in _sonames():
        yield "dynamic loader", name
    found = ctypes.util.find_library("llavanext")
    if found:
        yield "ctypes.util.find_library", found
    for d in _pkg_config_dirs():
        path = _in_dir(d)
        if path:
            yield "pkg-config", path


def _declare(lib):
    for name, (restype, argtypes) in _FUNCTIONS.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


def load_library():
    """Loads libllavanext and checks its version. Returns (CDLL, path)."""
    tried = []
    for how, path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s: %s (%s)" % (how, path, e))
            continue
        try:
            _declare(lib)
        except AttributeError as e:
            tried.append("%s: %s lacks a function (%s)" % (how, path, e))
            continue
        number = lib.llavanext_version_number()
        if number // 10000 != BINDING_VERSION_NUMBER // 10000 or number < BINDING_VERSION_NUMBER:
            raise LibraryNotFound(
                "libllavanext %s at %s is not compatible with this binding, written for %d.%d.%d"
                % (lib.llavanext_version().decode(), path, BINDING_VERSION_NUMBER // 10000,
                   BINDING_VERSION_NUMBER // 100 % 100, BINDING_VERSION_NUMBER % 100))
        return lib, path
    raise LibraryNotFound(
        "libllavanext not found; set LLAVANEXT_LIBRARY to the path of libllavanext.so, add its "
        "directory to LD_LIBRARY_PATH, or make `pkg-config llavanext` work (PKG_CONFIG_PATH). "
        "Tried: " + ("; ".join(tried) if tried else "nothing"))


_LIB = None
_LIB_PATH = None


def lib():
    """The loaded library (loaded on first use)."""
    global _LIB, _LIB_PATH
    if _LIB is None:
        _LIB, _LIB_PATH = load_library()
    return _LIB


def library_path():
    lib()
    return _LIB_PATH
