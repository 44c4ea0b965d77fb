/*
 * libllavanext — run LLaVA-NeXT-Video models on a CPU.
 *
 * Conventions (see docs/api-guide.md for the long version):
 *
 *  - Names: functions are llavanext_<object>_<verb>, types llavanext_<object>, constants
 *    LLAVANEXT_*. Objects are opaque handles created by *_create / *_open / *_load and destroyed
 *    by the matching *_free, which accepts NULL, never fails and may be called from any thread.
 *  - Errors: every fallible call returns an llavanext_status (int32_t). 0 is success, positive
 *    values are non-error outcomes (LLAVANEXT_DONE), negative values are errors. On failure the
 *    output parameter is set to NULL/0 and llavanext_last_error() returns a detail message for
 *    the calling thread naming what went wrong and where (file, tensor, byte offset, frame).
 *  - Output parameters: the single output parameter is called `out` and comes first.
 *  - Parameter structs: each starts with `uint32_t struct_size`. Fill one with
 *    llavanext_<object>_params_init(&p, sizeof p), which writes the defaults, then change fields.
 *    The library reads only the first struct_size bytes and uses defaults for fields it knows but
 *    the caller's (older) struct lacks; a caller's struct larger than the library's is accepted
 *    only if the extra bytes are all zero. New fields are only ever appended. Passing NULL where
 *    params are expected means "all defaults".
 *  - Ownership: objects the library returns are freed with their own *_free; strings the library
 *    gives away are freed with llavanext_free(). Accessors return borrowed pointers valid as
 *    long as the object they came from (documented per function). Inputs are copied unless a
 *    function says otherwise.
 *  - Threads: the model handle is immutable after load and may be used from many threads at
 *    once. Every other handle is used by one thread at a time (it may move between threads).
 *    Thread counts are parameters; the library changes no process-wide state except the default
 *    log callback when the host sets it.
 *  - Callbacks receive the `user_data` pointer given with them, and run on the thread that made
 *    the call that triggers them.
 *  - The library never prints to stdout or stderr, never calls exit() or abort().
 *  - Only fixed-width integers, float/double, size_t and pointers appear in signatures and
 *    structs; constants are enumerators used as int32_t.
 */
#ifndef LLAVANEXT_H
#define LLAVANEXT_H

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(LLAVANEXT_BUILDING_LIBRARY) && defined(__GNUC__)
#define LLAVANEXT_API __attribute__((visibility("default")))
#else
#define LLAVANEXT_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Version
 * ------------------------------------------------------------------------------------------- */

/**
 * Version of the library actually linked, as "MAJOR.MINOR.PATCH". Compare with the
 * LLAVANEXT_VERSION_* macros to detect a header/library mismatch. The string is static.
 * @since 0.1
 */
LLAVANEXT_API const char *llavanext_version(void);

/**
 * Version of the linked library as one integer (LLAVANEXT_VERSION_NUMBER's encoding).
 * @since 0.1
 */
LLAVANEXT_API int32_t llavanext_version_number(void);

/* ---------------------------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------------------------- */

/** Result of every fallible call: one of the LLAVANEXT_* status enumerators. @since 0.1 */
typedef int32_t llavanext_status;

/** Status values. Append-only; never renumbered. @since 0.1 */
enum llavanext_status_code {
    LLAVANEXT_OK = 0,                 /**< success */
    LLAVANEXT_DONE = 1,               /**< not an error: a stream has ended (e.g. generation) */
    LLAVANEXT_E_INVALID_ARGUMENT = -1, /**< a NULL pointer, an out-of-range value, bad params */
    LLAVANEXT_E_NO_MEMORY = -2,       /**< an allocation failed */
    LLAVANEXT_E_IO = -3,              /**< a file could not be opened, read or mapped */
    LLAVANEXT_E_FORMAT = -4,          /**< malformed or inconsistent data (JSON, safetensors) */
    LLAVANEXT_E_UNSUPPORTED = -5,     /**< valid input this library does not support */
    LLAVANEXT_E_MEDIA = -6,           /**< a media file could not be demuxed or decoded */
    LLAVANEXT_E_CONTEXT_FULL = -7,    /**< the token would not fit into the context */
    LLAVANEXT_E_ABORTED = -8,         /**< a callback asked to stop, or *_cancel was called */
    LLAVANEXT_E_INTERNAL = -9,        /**< a bug in the library; please report it */
    LLAVANEXT_E_STATE = -10,          /**< the call is not valid in the handle's current state */
    LLAVANEXT_E_LIMIT = -11,          /**< a configured resource limit would be exceeded */
    LLAVANEXT_E_TEMPLATE = -12        /**< the chat template raised an error or is unsupported */
};

/**
 * A short static English description of a status value. Total: returns "unknown status" for
 * values it does not know. Never NULL.
 * @since 0.1
 */
LLAVANEXT_API const char *llavanext_status_string(llavanext_status status);

/**
 * Detail message of the last error on the calling thread: what failed and where. The empty
 * string when no error has been recorded. The pointer is valid until the calling thread's next
 * call into the library. Never NULL.
 * @since 0.1
 */
LLAVANEXT_API const char *llavanext_last_error(void);

/**
 * Frees memory the library handed to the caller (strings and arrays documented as "free with
 * llavanext_free"). NULL is accepted.
 * @since 0.1
 */
LLAVANEXT_API void llavanext_free(void *ptr);

/* ---------------------------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------------------------- */

/** Log levels passed to llavanext_log_callback. @since 0.1 */
enum llavanext_log_level {
    LLAVANEXT_LOG_ERROR = 0,
    LLAVANEXT_LOG_WARNING = 1,
    LLAVANEXT_LOG_INFO = 2,
    LLAVANEXT_LOG_DEBUG = 3
};

/**
 * Receives one preformatted UTF-8 log message (no trailing newline). `level` is one of
 * llavanext_log_level. Called on the thread that is doing the work being logged; `message` is
 * valid only during the call.
 * @since 0.1
 */
typedef void (*llavanext_log_callback)(int32_t level, const char *message, void *user_data);

/**
 * Sets the process-wide default log callback, used by handles whose params give none.
 * NULL silences the library (the default). Thread-safe.
 * @since 0.1
 */
LLAVANEXT_API void llavanext_set_default_log(llavanext_log_callback callback, void *user_data);

/**
 * Progress callback for long operations (load, encode, prefill). `stage` is one of
 * llavanext_stage, `done` out of `total` units of work have been completed. Return 0 to go on,
 * non-zero to abort the operation, which then fails with LLAVANEXT_E_ABORTED. Called on the
 * thread that made the call.
 * @since 0.1
 */
typedef int32_t (*llavanext_progress_callback)(int32_t stage, int64_t done, int64_t total,
                                               void *user_data);

/** Stages reported to llavanext_progress_callback. @since 0.1 */
enum llavanext_stage {
    LLAVANEXT_STAGE_LOAD = 0,    /**< loading a model: units are tensors */
    LLAVANEXT_STAGE_SAMPLE = 1,  /**< sampling frames from media: units are frames */
    LLAVANEXT_STAGE_ENCODE = 2,  /**< vision encoder: units are layers x frame batches */
    LLAVANEXT_STAGE_PREFILL = 3, /**< prompt processing: units are tokens */
    LLAVANEXT_STAGE_GENERATE = 4 /**< generation: units are tokens */
};

#ifdef __cplusplus
}
#endif

#endif
