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
 *    Thread counts are parameters: a handle created with N threads keeps at most N cores
 *    computing (its products run single-threaded on its own N workers; builds without oneDNN
 *    hand float32 products to BLAS, threaded as the host configured BLAS). Handles can share one
 *    pool (llavanext_threadpool). The library changes no process-wide state except the default
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

/* ---------------------------------------------------------------------------------------------
 * Model: configuration, weights, tokenizer and chat template of one checkpoint directory
 * ------------------------------------------------------------------------------------------- */

/**
 * A loaded checkpoint. Immutable after llavanext_model_load() and safe to use from many threads
 * at once. Encoders, poolers and generators created from it keep it alive (it is reference
 * counted), so llavanext_model_free() may be called before or after them.
 * @since 0.1
 */
typedef struct llavanext_model llavanext_model;

/** How llavanext_model_load() makes the weights available. @since 0.1 */
enum llavanext_load_mode {
    /** Memory-map the safetensors files: fast start, pages shared with the page cache. */
    LLAVANEXT_LOAD_MMAP = 0,
    /** Read the weights into the library's own memory: steadier decode speed on hosts that
     * reclaim idle file-backed pages. */
    LLAVANEXT_LOAD_READ = 1,
    /** Only config, tokenizer and chat template: for tokenizing and rendering prompts. Handles
     * that need weights fail to create with LLAVANEXT_E_STATE. */
    LLAVANEXT_LOAD_NO_WEIGHTS = 2
};

/**
 * Compute precision of the large matrix products (vision tower, projector and prompt
 * evaluation). @since 0.1
 */
enum llavanext_precision {
    /** BF16 where the CPU has AVX512-BF16 (and the library was built with oneDNN), else F32. */
    LLAVANEXT_PRECISION_AUTO = 0,
    /** float32 products of the stored weights: the path that matches the reference (default). */
    LLAVANEXT_PRECISION_F32 = 1,
    /** bf16 activations and weights with float32 accumulation (oneDNN, AVX512-BF16/AMX), and a
     * half-precision KV cache: several times faster prompts and frames, half the KV memory, with
     * relative logit errors around 1e-2 (docs/performance.md). Loading fails with
     * LLAVANEXT_E_UNSUPPORTED where it cannot run. */
    LLAVANEXT_PRECISION_BF16 = 2
};

/**
 * The form the weights are kept in (llavanext_model_params.weights). Quantized formats are
 * described byte for byte in docs/quantization.md, with their measured accuracy.
 * @since 0.2
 */
enum llavanext_weights {
    /** As stored in the checkpoint (default): BF16/F16/F32, or the formats of a directory written
     * by `llavanext-cli quantize`, mapped or read with no conversion. */
    LLAVANEXT_WEIGHTS_STORED = 0,
    /** Linear layers and embeddings converted to bf16 on load (halves a float32 checkpoint). */
    LLAVANEXT_WEIGHTS_BF16 = 1,
    /** 8-bit: every linear layer and the embeddings in blocks of 32 int8 values with a scale,
     * quantized on load; products run as int8 dot products. */
    LLAVANEXT_WEIGHTS_Q8 = 2,
    /** 4-bit: the decoder's linear layers and embeddings in 4-bit super-blocks with quantized
     * scales and minimums; the LM head, vision tower and projector in 8-bit. */
    LLAVANEXT_WEIGHTS_Q4 = 3
};

/** Parameters of llavanext_model_load(). Initialise with llavanext_model_params_init(). @since 0.1 */
typedef struct llavanext_model_params {
    uint32_t struct_size;                 /**< sizeof the struct, set by the init function */
    int32_t load_mode;                    /**< llavanext_load_mode; default LLAVANEXT_LOAD_MMAP */
    int32_t check_finite;                 /**< non-zero: scan every weight for NaN/Inf (default 0) */
    llavanext_progress_callback progress; /**< optional; stage LLAVANEXT_STAGE_LOAD */
    void *progress_user_data;
    llavanext_log_callback log;           /**< optional; else the process default */
    void *log_user_data;
    /** llavanext_precision; default LLAVANEXT_PRECISION_F32 (the reference-exact path). Every
     * encoder and generator of the model computes in it. @since 0.1 */
    int32_t precision;
    /** llavanext_weights; default (0) LLAVANEXT_WEIGHTS_STORED. A conversion runs on load,
     * threaded, reported to `progress` (stage LLAVANEXT_STAGE_LOAD, one unit per converted
     * tensor, then the binding steps); tensors stored quantized already are used as they are.
     * A matrix whose rows do not fit the format falls back to the next wider one. 64-bit so that
     * it starts past the 0.1 struct's tail padding (old callers may leave that uninitialised).
     * @since 0.2 */
    int64_t weights;
    /** Threads converting weights on load; 0 = one per CPU. @since 0.2 */
    int32_t threads;
} llavanext_model_params;

/**
 * Fills `params` with the defaults and sets params->struct_size = size. Pass sizeof(*params).
 * @since 0.1
 */
LLAVANEXT_API void llavanext_model_params_init(llavanext_model_params *params, size_t size);

/**
 * Loads a Hugging Face LLaVA-NeXT-Video checkpoint directory as it is downloaded: config.json,
 * model.safetensors or model.safetensors.index.json with its shards, tokenizer.json,
 * tokenizer_config.json, chat_template.json (or the template inside tokenizer_config.json),
 * preprocessor_config.json and generation_config.json (the last three optional). Every tensor is
 * validated against the file sizes and the shapes the config implies.
 * On failure *out is NULL and llavanext_last_error() names the file (and tensor).
 * @param out     receives the model; free with llavanext_model_free()
 * @param dir     path of the directory (UTF-8)
 * @param params  NULL for defaults
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_model_load(llavanext_model **out, const char *dir,
                                                    const llavanext_model_params *params);

/** Releases the caller's reference. NULL-safe; callable from any thread. @since 0.1 */
LLAVANEXT_API void llavanext_model_free(llavanext_model *model);
/**
 * Copies into `buf` (at most `size` bytes, always NUL-terminated when size > 0; buf may be NULL
 * with size 0 to ask the length) the message of the most recent call on `model` that failed,
 * and returns the message's length in bytes (0 when no call on it has failed yet; the message
 * stays until another call on it fails). Unlike llavanext_last_error(), which belongs to the
 * calling thread, this follows the handle, so a binding that makes a call on one thread and
 * reads its error on another gets the right message. Errors of a call that creates a handle are
 * in llavanext_last_error() only. Thread-safe; NULL model returns 0. @since 0.2
 */
LLAVANEXT_API size_t llavanext_model_last_error(const llavanext_model *model, char *buf, size_t size);

/** Special tokens, for llavanext_model_token_id(). @since 0.1 */
enum llavanext_special_token {
    LLAVANEXT_TOKEN_BOS = 0,
    LLAVANEXT_TOKEN_EOS = 1,
    LLAVANEXT_TOKEN_PAD = 2,
    LLAVANEXT_TOKEN_UNK = 3,
    LLAVANEXT_TOKEN_VIDEO = 4, /**< the <video> placeholder */
    LLAVANEXT_TOKEN_IMAGE = 5  /**< the <image> placeholder */
};

/** Id of a special token (llavanext_special_token), or -1 when the model has none. @since 0.1 */
LLAVANEXT_API int32_t llavanext_model_token_id(const llavanext_model *model, int32_t which);

/** Size of the vocabulary (rows of the embedding table). @since 0.1 */
LLAVANEXT_API int32_t llavanext_model_vocab_size(const llavanext_model *model);

/**
 * Context length in tokens: max_position_embeddings times the RoPE linear scaling factor
 * `rope_scale` (pass 0 for the factor in config.json, 1 for the unscaled length). 0 for a NULL
 * model or a factor that is NaN or above 1024.
 * @since 0.1
 */
LLAVANEXT_API int64_t llavanext_model_context_length(const llavanext_model *model, double rope_scale);

/**
 * Embeddings one video frame turns into with pooling stride `pool_stride` (0 = the config's),
 * e.g. 144 for the 7B models' 24x24 grid pooled 2x2.
 * @since 0.1
 */
LLAVANEXT_API int32_t llavanext_model_tokens_per_frame(const llavanext_model *model, int32_t pool_stride);

/**
 * Embeddings an image of height x width pixels turns into (AnyRes: base tile + unpadded grid
 * with newline embeddings), i.e. what its <image> placeholder expands to.
 * Returns -1 for an invalid size.
 * @since 0.1
 */
LLAVANEXT_API int64_t llavanext_model_image_tokens(const llavanext_model *model, int32_t height, int32_t width);

/**
 * A JSON description of the model (architecture sizes, RoPE, pooling, tokens per frame, context
 * lengths, special tokens). *out is a NUL-terminated UTF-8 string; free with llavanext_free().
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_model_describe(char **out, const llavanext_model *model);

/**
 * Tokenizes UTF-8 text with the checkpoint's tokenizer. Special tokens written in the text
 * (such as "<video>") become their ids. With add_bos non-zero the tokenizer's BOS is prepended
 * when the tokenizer is configured to add one.
 * @param out        receives a malloc'ed array of ids; free with llavanext_free()
 * @param out_count  receives the number of ids
 * Invalid UTF-8 gives LLAVANEXT_E_INVALID_ARGUMENT with the byte offset.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_model_tokenize(int32_t **out, size_t *out_count,
                                                        const llavanext_model *model, const char *text,
                                                        size_t text_len, int32_t add_bos);

/**
 * Turns token ids back into text as the Hugging Face tokenizer's decode() does.
 * @param out  receives a NUL-terminated UTF-8 string; free with llavanext_free()
 * @param skip_special  non-zero to leave out special tokens
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_model_detokenize(char **out, const llavanext_model *model,
                                                          const int32_t *ids, size_t count,
                                                          int32_t skip_special);

/**
 * Renders a conversation with the checkpoint's own chat template, exactly as transformers'
 * apply_chat_template(messages, add_generation_prompt=...) does.
 * @param out            receives the prompt; free with llavanext_free()
 * @param messages_json  a JSON array in the Hugging Face messages format: objects with "role"
 *                       and "content", content being a string or a list of
 *                       {"type": "text", "text": ...}, {"type": "image"}, {"type": "video"}
 * Errors raised by the template itself give LLAVANEXT_E_TEMPLATE with its message.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_model_render_chat(char **out, const llavanext_model *model,
                                                           const char *messages_json,
                                                           int32_t add_generation_prompt);

/* ---------------------------------------------------------------------------------------------
 * Token budget: frames x tokens per frame against the context
 * ------------------------------------------------------------------------------------------- */

/** The outcome of llavanext_model_plan_budget(). @since 0.1 */
typedef struct llavanext_budget {
    uint32_t struct_size;
    int32_t tokens_per_frame;      /**< with the requested pooling stride */
    int64_t visual_tokens;         /**< frames x tokens_per_frame + image_tokens (LLaVA-OneVision:
                                        + 1, the newline after the video, when frames > 0) */
    int64_t total_tokens;          /**< visual + text + max_new_tokens */
    double rope_scale;             /**< the RoPE factor the plan uses */
    int64_t context_length;        /**< max_position_embeddings x rope_scale, or the smaller limit */
    int32_t fits;                  /**< non-zero when total_tokens <= context_length */
    int32_t suggested_frames;      /**< most frames that fit with the requested stride (0: none) */
    int32_t suggested_pool_stride; /**< smallest stride >= the requested one that fits all frames
                                        (0: none does) */
} llavanext_budget;

/**
 * Plans a request before anything is decoded or encoded: do `frames` video frames (over all
 * videos) pooled with `pool_stride` (0 = config's), `image_tokens` image embeddings,
 * `text_tokens` prompt tokens and `max_new_tokens` generated tokens fit into the context?
 * rope_scale: 0 = config.json's factor; > 0 = that factor; < 0 = "auto", the original
 * LLaVA-NeXT-Video recipe's rule: factor = ceil((frames x tokens_per_frame + 1000) /
 * max_position_embeddings) when that is at least 2, else 1 (no scaling).
 * context_limit > 0 caps the context (a host's smaller KV cache); 0 = the scaled length.
 * Set out->struct_size = sizeof(*out) first.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_model_plan_budget(llavanext_budget *out, const llavanext_model *model,
                                                           int32_t frames, int32_t pool_stride,
                                                           int64_t image_tokens, int64_t text_tokens,
                                                           int32_t max_new_tokens, double rope_scale,
                                                           int64_t context_limit);

/* ---------------------------------------------------------------------------------------------
 * Frames: decoded RGB24 pictures, the currency between frame sampler and vision encoder
 * ------------------------------------------------------------------------------------------- */

/** A batch of RGB24 frames of one size, each with its source index and timestamp. @since 0.1 */
typedef struct llavanext_frames llavanext_frames;

/** Number of frames. @since 0.1 */
LLAVANEXT_API int32_t llavanext_frames_count(const llavanext_frames *frames);
/** Width in pixels. @since 0.1 */
LLAVANEXT_API int32_t llavanext_frames_width(const llavanext_frames *frames);
/** Height in pixels. @since 0.1 */
LLAVANEXT_API int32_t llavanext_frames_height(const llavanext_frames *frames);
/**
 * Pixels of frame `index`: height rows of width * 3 bytes (R, G, B), no padding; the frames of
 * a batch are contiguous, so frame 0's pointer spans all of them. Borrowed: valid until the
 * frames are freed. NULL for an index out of range.
 * @since 0.1
 */
LLAVANEXT_API const uint8_t *llavanext_frames_data(const llavanext_frames *frames, int32_t index);
/** 0-based index of the frame in the source's decode order, -1 if unknown. @since 0.1 */
LLAVANEXT_API int64_t llavanext_frames_source_index(const llavanext_frames *frames, int32_t index);
/** Presentation time of the frame in seconds, NAN if unknown. @since 0.1 */
LLAVANEXT_API double llavanext_frames_timestamp(const llavanext_frames *frames, int32_t index);

/** Pixel formats of host-provided frames. @since 0.1 */
enum llavanext_pixel_format {
    LLAVANEXT_PIXEL_RGB24 = 0,   /**< one plane, 3 bytes per pixel */
    LLAVANEXT_PIXEL_YUV420P = 1, /**< three planes (Y, U, V), chroma halved both ways, BT.601 */
    LLAVANEXT_PIXEL_NV12 = 2     /**< two planes (Y, interleaved UV) */
};

/**
 * Copies one host frame (from a camera, a decoder of the host's own, ...) into a new
 * one-frame batch, converting YUV to RGB24 the way FFmpeg's swscale does by default.
 * @param planes   plane pointers (unused ones NULL)
 * @param strides  bytes per row of each plane
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_frames_from_host(llavanext_frames **out, int32_t pixel_format,
                                                          const uint8_t *const planes[3],
                                                          const int32_t strides[3], int32_t width,
                                                          int32_t height);

/** Frees frames. NULL-safe. @since 0.1 */
LLAVANEXT_API void llavanext_frames_free(llavanext_frames *frames);

/* ---------------------------------------------------------------------------------------------
 * Frame sampler: one opened video or image
 * ------------------------------------------------------------------------------------------- */

/** An opened media source (video file, image file, memory buffer or host stream). @since 0.1 */
typedef struct llavanext_frame_sampler llavanext_frame_sampler;

/** Parameters of the frame sampler. Initialise with llavanext_frame_sampler_params_init(). @since 0.1 */
typedef struct llavanext_frame_sampler_params {
    uint32_t struct_size;
    int32_t threads;           /**< decoder threads; 0 = automatic; 1 = one thread. Unless 1, reads
                                    of 4+ frames from a path or memory source split their targets
                                    over two decoders (two threads) */
    int32_t apply_rotation;    /**< non-zero (default): honour the display rotation; 0: raw frames as
                                    the reference implementation decodes them */
    int32_t skip_corrupt;      /**< non-zero: a frame that cannot be decoded is replaced by the next
                                    decodable one; 0 (default): the read fails with LLAVANEXT_E_MEDIA */
    int64_t max_frame_pixels;  /**< largest width x height accepted; 0 = 16384 x 16384 */
    /**
     * Optional; else the process default (llavanext_set_default_log). Receives libav's own
     * messages about this source (demuxer, decoder, scaler), prefixed "libav: ", at the matching
     * level (libav's trace level is dropped): the library never lets them reach stderr. To do that
     * it installs, once, a process-wide libav log callback that passes every message not raised
     * by the library's own libav calls on to libav's default callback, so a host's own libav use
     * logs as before; a host that sets its own libav callback afterwards takes over all libav
     * messages. Called on the thread doing the work (for frame-threaded decoders, one of
     * libav's threads). @since 0.2
     */
    llavanext_log_callback log;
    void *log_user_data;
} llavanext_frame_sampler_params;

/** Fills the defaults; pass sizeof(*params). @since 0.1 */
LLAVANEXT_API void llavanext_frame_sampler_params_init(llavanext_frame_sampler_params *params, size_t size);

/** Opens a media file by path. @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_open(llavanext_frame_sampler **out, const char *path,
                                                            const llavanext_frame_sampler_params *params);
/** Opens media held in memory (the bytes are copied). @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_open_memory(llavanext_frame_sampler **out,
                                                                   const void *data, size_t size,
                                                                   const llavanext_frame_sampler_params *params);

/** Reads up to `size` bytes into `buf`; returns the count, 0 at the end, negative on error. @since 0.1 */
typedef int32_t (*llavanext_read_callback)(void *user_data, uint8_t *buf, int32_t size);
/**
 * Seeks like fseek (whence 0 = SET, 1 = CUR, 2 = END) and returns the new position, or with
 * whence = LLAVANEXT_SEEK_SIZE returns the total size (or -1 if unknown); negative on error.
 * @since 0.1
 */
typedef int64_t (*llavanext_seek_callback)(void *user_data, int64_t offset, int32_t whence);
/** `whence` value asking a seek callback for the stream size. @since 0.1 */
enum llavanext_seek_whence { LLAVANEXT_SEEK_SIZE = 0x10000 };

/**
 * Opens media read through host callbacks. Both callbacks are required: the sampler indexes the
 * stream once, then seeks back to decode the frames it picks (a non-seekable source can be
 * buffered by the host and opened with llavanext_frame_sampler_open_memory()). The callbacks
 * are called on the thread that calls into the sampler, until llavanext_frame_sampler_free()
 * returns.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_open_callbacks(llavanext_frame_sampler **out,
                                                                      llavanext_read_callback read,
                                                                      llavanext_seek_callback seek,
                                                                      const llavanext_frame_sampler_params *params,
                                                                      void *user_data);

/** Frees the sampler. NULL-safe. @since 0.1 */
LLAVANEXT_API void llavanext_frame_sampler_free(llavanext_frame_sampler *sampler);
/**
 * Copies into `buf` (at most `size` bytes, always NUL-terminated when size > 0; buf may be NULL
 * with size 0 to ask the length) the message of the most recent call on `sampler` that failed,
 * and returns the message's length in bytes (0 when no call on it has failed yet; the message
 * stays until another call on it fails). Unlike llavanext_last_error(), which belongs to the
 * calling thread, this follows the handle, so a binding that makes a call on one thread and
 * reads its error on another gets the right message. Errors of a call that creates a handle are
 * in llavanext_last_error() only. Thread-safe; NULL sampler returns 0. @since 0.2
 */
LLAVANEXT_API size_t llavanext_frame_sampler_last_error(const llavanext_frame_sampler *sampler, char *buf, size_t size);

/** What a media source is. @since 0.1 */
typedef struct llavanext_media_info {
    uint32_t struct_size;
    int32_t width;             /**< of the frames returned (after rotation if applied) */
    int32_t height;
    int32_t rotation;          /**< display rotation in degrees clockwise: 0, 90, 180, 270 */
    int32_t is_image;          /**< non-zero for a still image (one frame) */
    int32_t frame_count_exact; /**< non-zero when frame_count was counted to a clean end */
    int64_t frame_count;       /**< number of decodable frames */
    double duration;           /**< seconds */
    double fps;                /**< average frame rate; 0 if unknown */
    char container[64];        /**< demuxer name, NUL-terminated */
    char codec[64];            /**< decoder name, NUL-terminated */
} llavanext_media_info;

/**
 * Describes the source. Set out->struct_size = sizeof(*out) first; the library fills what that
 * size covers.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_info(llavanext_media_info *out,
                                                            const llavanext_frame_sampler *sampler);

/**
 * Returns `count` frames spread uniformly as the reference implementation picks them:
 * frame k is index floor(k * frame_count / count). count must be 1 .. frame_count.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_uniform(llavanext_frames **out,
                                                               llavanext_frame_sampler *sampler, int32_t count);
/** Frames at `fps` per second (the frame showing at t = 0, 1/fps, ...), at most max_count. @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_by_fps(llavanext_frames **out,
                                                              llavanext_frame_sampler *sampler, double fps,
                                                              int32_t max_count);
/** The frames showing at the given times (seconds, any order). @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_at_times(llavanext_frames **out,
                                                                llavanext_frame_sampler *sampler,
                                                                const double *times, int32_t count);
/** The frames with the given 0-based indices (ascending). @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_at_indices(llavanext_frames **out,
                                                                  llavanext_frame_sampler *sampler,
                                                                  const int64_t *indices, int32_t count);

/**
 * Pull interface: plans `count` uniformly spread frames without decoding them; then
 * llavanext_frame_sampler_next() returns them in batches, so that a long video is never held
 * in memory all at once.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_begin_uniform(llavanext_frame_sampler *sampler,
                                                                     int32_t count);
/**
 * The next up to `max_batch` planned frames; LLAVANEXT_DONE (with *out NULL) when all were
 * returned. @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_frame_sampler_next(llavanext_frames **out,
                                                            llavanext_frame_sampler *sampler,
                                                            int32_t max_batch);

/* ---------------------------------------------------------------------------------------------
 * Tensors: float32 arrays exchanged between vision encoder, pooler and generator
 * ------------------------------------------------------------------------------------------- */

/** A float32 array with a shape and a kind. @since 0.1 */
typedef struct llavanext_tensor llavanext_tensor;

/** What a tensor holds (which step produced it, and for which kind of media). @since 0.1 */
enum llavanext_tensor_kind {
    LLAVANEXT_TENSOR_VIDEO_PIXELS = 0,     /**< [frames, 3, S, S] preprocessed frames */
    LLAVANEXT_TENSOR_IMAGE_PIXELS = 1,     /**< [patches, 3, S, S] AnyRes patches, base first */
    LLAVANEXT_TENSOR_VIDEO_FEATURES = 2,   /**< [frames, g*g, vision_hidden] CLIP features */
    LLAVANEXT_TENSOR_IMAGE_FEATURES = 3,   /**< [patches, g*g, vision_hidden] */
    LLAVANEXT_TENSOR_VIDEO_POOLED = 4,     /**< [frames, tokens_per_frame, vision_hidden] */
    LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS = 5, /**< [frames, tokens_per_frame, text_hidden]: fills <video> */
    LLAVANEXT_TENSOR_IMAGE_PROJECTED = 6,  /**< [patches, g*g, text_hidden] */
    LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS = 7, /**< [tokens, text_hidden] packed AnyRes: fills <image> */
    LLAVANEXT_TENSOR_OTHER = 8,            /**< anything else (e.g. host-made embeddings) */
    /** [frames, g*g, text_hidden] LLaVA-OneVision: the projector's output per frame, before the
     *  resize to tokens_per_frame (that family projects first, then pools). @since 0.2 */
    LLAVANEXT_TENSOR_VIDEO_PROJECTED = 9
};

/** The tensor's llavanext_tensor_kind. @since 0.1 */
LLAVANEXT_API int32_t llavanext_tensor_kind(const llavanext_tensor *tensor);
/** Number of dimensions (1 .. 8). @since 0.1 */
LLAVANEXT_API int32_t llavanext_tensor_ndim(const llavanext_tensor *tensor);
/** Size of dimension `dim`; 0 when dim is out of range. @since 0.1 */
LLAVANEXT_API int64_t llavanext_tensor_dim(const llavanext_tensor *tensor, int32_t dim);
/** Total number of elements. @since 0.1 */
LLAVANEXT_API int64_t llavanext_tensor_numel(const llavanext_tensor *tensor);
/** The values, row-major. Borrowed: valid until the tensor is freed. @since 0.1 */
LLAVANEXT_API const float *llavanext_tensor_data(const llavanext_tensor *tensor);
/** For image kinds: the original image height and width in pixels (0 otherwise). @since 0.1 */
LLAVANEXT_API int32_t llavanext_tensor_image_height(const llavanext_tensor *tensor);
/** See llavanext_tensor_image_height(). @since 0.1 */
LLAVANEXT_API int32_t llavanext_tensor_image_width(const llavanext_tensor *tensor);
/**
 * Creates a tensor from host data (copied), e.g. embeddings computed elsewhere or kept on disk.
 * image_height/image_width matter only for image kinds.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_tensor_create(llavanext_tensor **out, int32_t kind, int32_t ndim,
                                                       const int64_t *dims, const float *data,
                                                       int32_t image_height, int32_t image_width);
/**
 * Concatenates tensors of one kind along their first dimension (the other dimensions must be
 * equal), e.g. the video embeddings of frame batches encoded one after another, so that a long
 * video streams through sampler, encoder and pooler with bounded memory. The image size is
 * taken from the first tensor.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_tensor_concat(llavanext_tensor **out,
                                                       const llavanext_tensor *const *tensors, int32_t count);
/** Frees a tensor. NULL-safe. @since 0.1 */
LLAVANEXT_API void llavanext_tensor_free(llavanext_tensor *tensor);

/* ---------------------------------------------------------------------------------------------
 * Thread pools shared between handles
 * ------------------------------------------------------------------------------------------- */

/**
 * A pool of worker threads that several handles (vision encoders, poolers, generators, of one
 * model or several) can compute on, so that a host running them side by side keeps exactly the
 * pool's number of cores busy instead of the sum of the handles' own thread counts. Pass it in
 * the `threadpool` field of llavanext_vision_encoder_params, llavanext_pooler_params or
 * llavanext_generator_params; that handle's `threads` is then ignored. Handles sharing a pool may
 * be called from different threads at the same time: their parallel loops take turns on the
 * pool (one loop runs at a time; the other callers wait without spinning), so results are exactly
 * those of unshared handles of the same thread count. Each handle keeps a reference: the pool's
 * threads end when llavanext_threadpool_free() has been called and the last handle using it is
 * freed. Thread-safe. @since 0.2
 */
typedef struct llavanext_threadpool llavanext_threadpool;

/**
 * Creates a pool of `threads` workers (the calling thread of each computing call counts as one of
 * them); 0 = one per CPU the process may run on; at most 1024. @since 0.2
 */
LLAVANEXT_API llavanext_status llavanext_threadpool_create(llavanext_threadpool **out, int32_t threads);
/** Drops the host's reference (the threads end with the last handle using the pool). NULL-safe.
 * @since 0.2 */
LLAVANEXT_API void llavanext_threadpool_free(llavanext_threadpool *pool);
/** The number of workers (0 for NULL). @since 0.2 */
LLAVANEXT_API int32_t llavanext_threadpool_threads(const llavanext_threadpool *pool);

/* ---------------------------------------------------------------------------------------------
 * Vision encoder: frames to CLIP features
 * ------------------------------------------------------------------------------------------- */

/** Per-thread scratch and thread pool for the vision tower of one model. @since 0.1 */
typedef struct llavanext_vision_encoder llavanext_vision_encoder;

/** Parameters of the vision encoder. Initialise with llavanext_vision_encoder_params_init(). @since 0.1 */
typedef struct llavanext_vision_encoder_params {
    uint32_t struct_size;
    int32_t threads;                      /**< worker threads; 0 = one per CPU */
    int32_t max_batch_frames;             /**< frames per GEMM batch; 0 = 8 */
    llavanext_progress_callback progress; /**< optional; stage LLAVANEXT_STAGE_ENCODE */
    void *progress_user_data;
    llavanext_log_callback log;
    void *log_user_data;
    /**
     * Cap on the memory one preprocess or encode call may allocate: the preprocessed pixels
     * (frames x 3 x S x S floats), the features of all frames and the vision tower's activations
     * for one batch. A request over it fails up front with LLAVANEXT_E_LIMIT, and a message giving
     * the estimate, instead of running the process out of memory. 0 = 8 GiB; must not be
     * negative. Stream long videos through llavanext_frame_sampler_next() in batches to stay
     * under it. @since 0.1
     */
    int64_t max_request_bytes;
    /** Shared pool to compute on instead of the encoder's own (then `threads` is ignored); NULL =
     * its own pool of `threads` workers. The encoder keeps a reference. @since 0.2 */
    llavanext_threadpool *threadpool;
} llavanext_vision_encoder_params;

/** Fills the defaults; pass sizeof(*params). @since 0.1 */
LLAVANEXT_API void llavanext_vision_encoder_params_init(llavanext_vision_encoder_params *params, size_t size);

/** Creates an encoder for `model` (which it keeps alive). @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_vision_encoder_create(llavanext_vision_encoder **out,
                                                               llavanext_model *model,
                                                               const llavanext_vision_encoder_params *params);
/** Frees the encoder. NULL-safe. @since 0.1 */
LLAVANEXT_API void llavanext_vision_encoder_free(llavanext_vision_encoder *encoder);
/**
 * Copies into `buf` (at most `size` bytes, always NUL-terminated when size > 0; buf may be NULL
 * with size 0 to ask the length) the message of the most recent call on `encoder` that failed,
 * and returns the message's length in bytes (0 when no call on it has failed yet; the message
 * stays until another call on it fails). Unlike llavanext_last_error(), which belongs to the
 * calling thread, this follows the handle, so a binding that makes a call on one thread and
 * reads its error on another gets the right message. Errors of a call that creates a handle are
 * in llavanext_last_error() only. Thread-safe; NULL encoder returns 0. @since 0.2
 */
LLAVANEXT_API size_t llavanext_vision_encoder_last_error(const llavanext_vision_encoder *encoder, char *buf, size_t size);

/**
 * Preprocesses video frames exactly as the Hugging Face processor does (shortest-edge bicubic
 * resize, centre crop, rescale, normalise): LLAVANEXT_TENSOR_VIDEO_PIXELS [F, 3, S, S].
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_vision_encoder_preprocess_video(llavanext_tensor **out,
                                                                         llavanext_vision_encoder *encoder,
                                                                         const llavanext_frames *frames);
/**
 * Preprocesses frame `index` of `frames` as an image (AnyRes): LLAVANEXT_TENSOR_IMAGE_PIXELS
 * [P, 3, S, S] with the base image first, carrying the image size.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_vision_encoder_preprocess_image(llavanext_tensor **out,
                                                                         llavanext_vision_encoder *encoder,
                                                                         const llavanext_frames *frames,
                                                                         int32_t index);
/**
 * Runs the vision tower on preprocessed pixels (VIDEO_PIXELS or IMAGE_PIXELS), all frames in
 * the same GEMMs (in batches of max_batch_frames), up to the configured feature layer:
 * VIDEO_FEATURES or IMAGE_FEATURES. The tower's working buffers for one batch (float32
 * activations of max_batch_frames frames: about 120 MiB at 8 frames of CLIP ViT-L/14-336) serve
 * all of the call's batches and are released when it returns.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_vision_encoder_encode_pixels(llavanext_tensor **out,
                                                                      llavanext_vision_encoder *encoder,
                                                                      const llavanext_tensor *pixels);
/** preprocess_video + encode_pixels, streaming frames through in batches. @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_vision_encoder_encode_video(llavanext_tensor **out,
                                                                     llavanext_vision_encoder *encoder,
                                                                     const llavanext_frames *frames);
/** preprocess_image + encode_pixels. @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_vision_encoder_encode_image(llavanext_tensor **out,
                                                                     llavanext_vision_encoder *encoder,
                                                                     const llavanext_frames *frames,
                                                                     int32_t index);
/**
 * Asks the encoder to stop: the preprocess or encode call running now, or, when none is running,
 * the next one to start, fails with LLAVANEXT_E_ABORTED. A cancel is never lost and stops exactly
 * one call: that call consumes it (a call that completes before it sees the request leaves it
 * pending for the next call). May be called from any thread, at any time: the only call that may
 * overlap others on the same encoder. @since 0.1 (this rule since 0.2; 0.1 cleared a request
 * that arrived before a call started)
 */
LLAVANEXT_API void llavanext_vision_encoder_cancel(llavanext_vision_encoder *encoder);

/* ---------------------------------------------------------------------------------------------
 * Pooler: features to LLM embeddings (the token budget)
 * ------------------------------------------------------------------------------------------- */

/** Spatial pooling + projector MLP (+ AnyRes packing for images). @since 0.1 */
typedef struct llavanext_pooler llavanext_pooler;

/** Pooling modes. @since 0.1 */
enum llavanext_pool_mode {
    LLAVANEXT_POOL_DEFAULT = -1, /**< as config.json says */
    LLAVANEXT_POOL_AVERAGE = 0,
    LLAVANEXT_POOL_MAX = 1
};

/** Parameters of the pooler. Initialise with llavanext_pooler_params_init(). @since 0.1 */
typedef struct llavanext_pooler_params {
    uint32_t struct_size;
    int32_t threads;     /**< 0 = one per CPU */
    int32_t pool_stride; /**< 0 = config's; 1 = no pooling; s: s x s cells per token */
    int32_t pool_mode;   /**< llavanext_pool_mode; default LLAVANEXT_POOL_DEFAULT (the only one a
                              LLaVA-OneVision model accepts: its frames are resized bilinearly to
                              ceil(g / pool_stride) per side) */
    /** Shared pool to compute on (then `threads` is ignored); NULL = its own. @since 0.2 */
    llavanext_threadpool *threadpool;
} llavanext_pooler_params;

/** Fills the defaults; pass sizeof(*params). @since 0.1 */
LLAVANEXT_API void llavanext_pooler_params_init(llavanext_pooler_params *params, size_t size);
/** Creates a pooler for `model` (kept alive). @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_pooler_create(llavanext_pooler **out, llavanext_model *model,
                                                       const llavanext_pooler_params *params);
/** Frees the pooler. NULL-safe. @since 0.1 */
LLAVANEXT_API void llavanext_pooler_free(llavanext_pooler *pooler);
/**
 * Copies into `buf` (at most `size` bytes, always NUL-terminated when size > 0; buf may be NULL
 * with size 0 to ask the length) the message of the most recent call on `pooler` that failed,
 * and returns the message's length in bytes (0 when no call on it has failed yet; the message
 * stays until another call on it fails). Unlike llavanext_last_error(), which belongs to the
 * calling thread, this follows the handle, so a binding that makes a call on one thread and
 * reads its error on another gets the right message. Errors of a call that creates a handle are
 * in llavanext_last_error() only. Thread-safe; NULL pooler returns 0. @since 0.2
 */
LLAVANEXT_API size_t llavanext_pooler_last_error(const llavanext_pooler *pooler, char *buf, size_t size);
/** Embeddings per video frame with this pooler's stride. @since 0.1 */
LLAVANEXT_API int32_t llavanext_pooler_tokens_per_frame(const llavanext_pooler *pooler);
/**
 * VIDEO_FEATURES -> VIDEO_POOLED (spatial pooling only). For LLaVA-OneVision models, which project
 * before pooling: VIDEO_PROJECTED -> VIDEO_EMBEDDINGS (bilinear resize of each frame's g x g grid
 * to ceil(g / stride) per side, as the reference does); the generator adds the one image_newline
 * that follows a video when it places VIDEO_EMBEDDINGS of such a model.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_pooler_pool(llavanext_tensor **out, llavanext_pooler *pooler,
                                                     const llavanext_tensor *features);
/**
 * VIDEO_POOLED -> VIDEO_EMBEDDINGS, IMAGE_FEATURES -> IMAGE_PROJECTED (projector MLP). For
 * LLaVA-OneVision models: VIDEO_FEATURES -> VIDEO_PROJECTED (then llavanext_pooler_pool).
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_pooler_project(llavanext_tensor **out, llavanext_pooler *pooler,
                                                        const llavanext_tensor *features);
/** IMAGE_PROJECTED -> IMAGE_EMBEDDINGS (unpadding, newline embeddings, base first). @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_pooler_pack_image(llavanext_tensor **out, llavanext_pooler *pooler,
                                                           const llavanext_tensor *projected);
/**
 * Features to the embeddings the generator splices in: VIDEO_FEATURES -> pool -> project ->
 * VIDEO_EMBEDDINGS (LLaVA-OneVision: project -> pool); IMAGE_FEATURES -> project -> pack ->
 * IMAGE_EMBEDDINGS (LLaVA-OneVision: with the anyres_max resize-down of large grids).
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_pooler_apply(llavanext_tensor **out, llavanext_pooler *pooler,
                                                      const llavanext_tensor *features);

/* ---------------------------------------------------------------------------------------------
 * Generator: one conversation (token history, KV cache, sampler)
 * ------------------------------------------------------------------------------------------- */

/** One conversation with the language model. @since 0.1 */
typedef struct llavanext_generator llavanext_generator;

/**
 * Storage of the generator's KV cache (llavanext_generator_params.kv_cache). A prompt evaluated
 * in one block attends to its own keys in float32 whatever the type; later positions read the
 * stored, rounded ones. docs/quantization.md gives what each type does to the fixtures' logits.
 * @since 0.2
 */
enum llavanext_kv_cache {
    /** float32 on the reference-exact path (precision F32 with float weights); IEEE half with
     * precision BF16 and with 8-bit weights on CPUs with F16C; 8-bit (Q8) with 4-bit weights. */
    LLAVANEXT_KV_CACHE_AUTO = 0,
    /** float32: 8 bytes per position, head dimension and layer (keys and values). */
    LLAVANEXT_KV_CACHE_F32 = 1,
    /** IEEE half: half of float32's memory and decode reads. */
    LLAVANEXT_KV_CACHE_F16 = 2,
    /** 8-bit: blocks of 32 int8 values with a half scale (34 bytes per 32 values, 53% of half).
     * A model whose head dimension is not a multiple of 16, or whose key rows (kv heads x head
     * dimension) are not a multiple of 32, gets the half cache instead. */
    LLAVANEXT_KV_CACHE_Q8 = 3
};

/** Parameters of the generator. Initialise with llavanext_generator_params_init(). @since 0.1 */
typedef struct llavanext_generator_params {
    uint32_t struct_size;
    int32_t threads;            /**< 0 = one per CPU */
    int64_t context_length;     /**< KV cache size in tokens; 0 = the model's (RoPE-scaled) length */
    double rope_scale;          /**< RoPE linear factor; 0 = config.json's; e.g. 4 to reach twice a
                                     factor-2 model's context (quality degrades: see docs) */
    int32_t max_new_tokens;     /**< per generation; 0 = generation_config.json's (else 256) */
    float temperature;          /**< 0 = greedy; < 0 = generation_config.json's (greedy unless it
                                     sets do_sample) */
    int32_t top_k;              /**< 0 = off; < 0 = generation config's */
    float top_p;                /**< 1 = off; < 0 = generation config's */
    float min_p;                /**< 0 = off; < 0 = generation config's */
    float repetition_penalty;   /**< 1 = off; < 0 = generation config's */
    uint64_t seed;              /**< random seed of the sampler */
    int32_t prefill_chunk;      /**< tokens per prefill block; 0 = 2048 (the float32 path widens
                                     each stored weight once per block) */
    llavanext_progress_callback progress; /**< optional; stages PREFILL and GENERATE */
    void *progress_user_data;
    llavanext_log_callback log;
    void *log_user_data;
    /**
     * Cap on the memory the generator may allocate, checked by llavanext_generator_create(): the
     * KV cache of context_length positions, the prompt's input rows, one prefill_chunk block of
     * activations, the logits and the rows scoring uses. Over it, create fails with LLAVANEXT_E_LIMIT and a message giving
     * the estimate (lower context_length or prefill_chunk). 0 = no cap: the KV cache's pages are
     * only touched as positions fill, so a context larger than physical memory can still serve
     * shorter conversations. Must not be negative. @since 0.1
     */
    int64_t max_request_bytes;
    /** Shared pool to compute on instead of the generator's own (then `threads` is ignored);
     * NULL = its own pool of `threads` workers. The generator keeps a reference. @since 0.2 */
    llavanext_threadpool *threadpool;
    /** llavanext_kv_cache: how the KV cache stores keys and values; default (0)
     * LLAVANEXT_KV_CACHE_AUTO. @since 0.2 */
    int32_t kv_cache;
} llavanext_generator_params;

/** Fills the defaults; pass sizeof(*params). @since 0.1 */
LLAVANEXT_API void llavanext_generator_params_init(llavanext_generator_params *params, size_t size);
/** Creates a generator for `model` (kept alive). @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_generator_create(llavanext_generator **out, llavanext_model *model,
                                                          const llavanext_generator_params *params);
/** Frees the generator. NULL-safe. @since 0.1 */
LLAVANEXT_API void llavanext_generator_free(llavanext_generator *generator);
/**
 * Copies into `buf` (at most `size` bytes, always NUL-terminated when size > 0; buf may be NULL
 * with size 0 to ask the length) the message of the most recent call on `generator` that failed,
 * and returns the message's length in bytes (0 when no call on it has failed yet; the message
 * stays until another call on it fails). Unlike llavanext_last_error(), which belongs to the
 * calling thread, this follows the handle, so a binding that makes a call on one thread and
 * reads its error on another gets the right message. Errors of a call that creates a handle are
 * in llavanext_last_error() only. Thread-safe; NULL generator returns 0. @since 0.2
 */
LLAVANEXT_API size_t llavanext_generator_last_error(const llavanext_generator *generator, char *buf, size_t size);

/**
 * Appends prompt text. The text is tokenized (a BOS is added at the very start of the
 * conversation if the tokenizer adds one); every <video> / <image> placeholder in it is replaced,
 * in order, by the rows of the next tensor of `media` (VIDEO_EMBEDDINGS for <video>,
 * IMAGE_EMBEDDINGS for <image>). The number of placeholders must equal media_count
 * (LLAVANEXT_E_INVALID_ARGUMENT naming both numbers otherwise). Nothing is computed yet: the
 * tokens are evaluated by the next prefill, generate or score. The tensors are copied.
 * LLAVANEXT_E_CONTEXT_FULL if the result would not fit into the context (nothing is appended).
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_generator_append_prompt(llavanext_generator *generator,
                                                                 const char *text, size_t text_len,
                                                                 const llavanext_tensor *const *media,
                                                                 int32_t media_count);
/** Appends token ids as they are (no BOS added). @since 0.1 */
LLAVANEXT_API llavanext_status llavanext_generator_append_tokens(llavanext_generator *generator,
                                                                 const int32_t *ids, size_t count);
/**
 * Evaluates everything appended so far (the prompt) through the decoder in blocks, reporting
 * LLAVANEXT_STAGE_PREFILL progress. Called implicitly by next/generate/score.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_generator_prefill(llavanext_generator *generator);

/**
 * Pull one generated token. On LLAVANEXT_OK *out_piece points to the UTF-8 text it completes
 * (possibly empty while a multi-byte character is incomplete; always whole characters),
 * *out_len is its length and *out_token its id. The piece is borrowed until the next call on
 * the generator. Returns LLAVANEXT_DONE when generation stopped (EOS, a stop string,
 * max_new_tokens); then *out_piece holds any text still pending (usually empty) and *out_token
 * is -1. LLAVANEXT_E_CONTEXT_FULL when no position is left. Any argument but the generator may
 * be NULL.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_generator_next(llavanext_generator *generator, const char **out_piece,
                                                        size_t *out_len, int32_t *out_token);

/**
 * Receives each generated piece (whole UTF-8 characters, not NUL-terminated) and its token id
 * (-1 for the final flush). Return 0 to go on, non-zero to stop generation.
 * @since 0.1
 */
typedef int32_t (*llavanext_token_callback)(const char *piece, size_t len, int32_t token, void *user_data);

/**
 * Push helper: runs llavanext_generator_next() until done, calling `callback` for every
 * piece. Returns LLAVANEXT_OK when generation ended normally or the callback stopped it.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_generator_generate(llavanext_generator *generator,
                                                            llavanext_token_callback callback, void *user_data);

/**
 * Adds a stop string: generation ends when the generated text contains it (the stop string
 * itself is still delivered). Up to 16 per generator; cleared by reset.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_generator_add_stop_string(llavanext_generator *generator,
                                                                   const char *stop);

/**
 * Log-probability (natural log) of `continuation` (tokenized without BOS) following the current
 * context, summed over its tokens, computed in one prefill pass without generating. The
 * conversation is left as it was. *out_tokens receives the number of tokens scored (may be NULL).
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_generator_score(double *out, int32_t *out_tokens,
                                                         llavanext_generator *generator,
                                                         const char *continuation, size_t len);

/** Forgets the conversation (keeps the allocated cache). @since 0.1 */
LLAVANEXT_API void llavanext_generator_reset(llavanext_generator *generator);

/**
 * Logits of the last evaluated position (vocab_size floats), borrowed until the next call on
 * the generator; LLAVANEXT_E_STATE when nothing has been evaluated.
 * @since 0.1
 */
LLAVANEXT_API llavanext_status llavanext_generator_logits(const float **out, int32_t *out_count,
                                                          llavanext_generator *generator);
/** Tokens in the conversation so far (prompt + generated), evaluated or not. @since 0.1 */
LLAVANEXT_API int64_t llavanext_generator_position(const llavanext_generator *generator);
/** The context length (KV cache capacity) in tokens. @since 0.1 */
LLAVANEXT_API int64_t llavanext_generator_context_length(const llavanext_generator *generator);
/**
 * The token ids of the conversation (placeholder-expanded positions hold the placeholder id).
 * Borrowed until the next call on the generator.
 * @since 0.1
 */
LLAVANEXT_API const int32_t *llavanext_generator_tokens(const llavanext_generator *generator);
/**
 * Asks the generator to stop: the prefill, next, generate or score call running now, or, when
 * none is running, the next one to start, fails with LLAVANEXT_E_ABORTED, leaving the
 * conversation as it was before the positions it did not evaluate. A cancel is never lost and
 * stops exactly one call, which consumes it; llavanext_generator_reset() drops a pending one (so a
 * late cancel of a finished conversation cannot hit the next). A host that reuses a generator
 * without reset must cancel only while its own request runs. May be called from any thread, at any
 * time: the only call that may overlap others on the same generator. @since 0.1 (this rule since
 * 0.2; 0.1 cleared a request that arrived before an operation started)
 */
LLAVANEXT_API void llavanext_generator_cancel(llavanext_generator *generator);

/* ---------------------------------------------------------------------------------------------
 * Embedding cache: media embeddings kept on disk, so that a second question about the same
 * video skips decoding and the vision tower (@since 0.2; this whole block is additive)
 * ------------------------------------------------------------------------------------------- */

/**
 * A directory of cached embeddings (what the pooler hands the generator: pooled and projected
 * video features, or packed image embeddings), one safetensors file per entry. Entries are keyed
 * by the SHA-256 of the media bytes, how frames were sampled and how many (and whether the display
 * rotation was applied), the model (its vision and projector settings, compute precision and a
 * fingerprint of the vision tower and projector weights) and the pooling settings. The total size
 * is capped: the least recently used entries are deleted first. An entry is written to a temporary
 * file and renamed into place, so several threads and processes may share one directory; an entry
 * that fails any check on reading (header, key, shape, checksum of the values) is deleted and
 * reported as a miss, never used. The checks catch damage, not forgery: keep the directory
 * writable by trusted users only. Unlike most handles, the cache may be used from many threads
 * at once.
 * @since 0.2
 */
typedef struct llavanext_embedding_cache llavanext_embedding_cache;

/**
 * Parameters of llavanext_embedding_cache_open(). Initialise with
 * llavanext_embedding_cache_params_init(). @since 0.2
 */
typedef struct llavanext_embedding_cache_params {
    uint32_t struct_size;
    /** Size cap in bytes of all entries together; after each write the least recently used
     * entries are deleted until the directory is under it. 0 = 4 GiB; must not be negative. */
    int64_t max_bytes;
} llavanext_embedding_cache_params;

/** Fills the defaults; pass sizeof(*params). @since 0.2 */
LLAVANEXT_API void llavanext_embedding_cache_params_init(llavanext_embedding_cache_params *params, size_t size);

/**
 * Opens (and creates, mode 0700, if missing; its parent must exist) a cache directory.
 * Temporary files left over by writers that died are removed when older than ten minutes.
 * @param out     receives the cache; free with llavanext_embedding_cache_free()
 * @param dir     path of the directory (UTF-8)
 * @param params  NULL for defaults
 * @since 0.2
 */
LLAVANEXT_API llavanext_status llavanext_embedding_cache_open(llavanext_embedding_cache **out, const char *dir,
                                                              const llavanext_embedding_cache_params *params);

/** Closes the cache (the entries stay on disk). NULL-safe. @since 0.2 */
LLAVANEXT_API void llavanext_embedding_cache_free(llavanext_embedding_cache *cache);

/** How the frames of a cached entry were chosen (llavanext_embedding_key.sampling). @since 0.2 */
enum llavanext_cache_sampling {
    LLAVANEXT_CACHE_UNIFORM = 0, /**< llavanext_frame_sampler_uniform / begin_uniform with `frames` */
    LLAVANEXT_CACHE_FPS = 1,     /**< llavanext_frame_sampler_by_fps with `fps` and max count `frames` */
    LLAVANEXT_CACHE_IMAGE = 2    /**< a still image (IMAGE_EMBEDDINGS); `frames` and `fps` are 0 */
};

/**
 * What identifies one cache entry besides the model. Initialise with
 * llavanext_embedding_key_init(), then set the fields. Use the values as the request gave them
 * (e.g. the frame count asked for, before clamping to the video's length): equal requests then
 * find the entry without opening the media.
 * @since 0.2
 */
typedef struct llavanext_embedding_key {
    uint32_t struct_size;
    uint8_t media_sha256[32]; /**< SHA-256 of the media bytes (llavanext_media_hash_memory/_file) */
    int32_t sampling;         /**< llavanext_cache_sampling */
    int32_t frames;           /**< UNIFORM: frame count; FPS: the max count (0 = none); IMAGE: 0 */
    double fps;               /**< FPS: frames per second; else 0 */
    int32_t pool_stride;      /**< the pooler's pool_stride (0 = config's; resolved before keying) */
    int32_t pool_mode;        /**< the pooler's pool_mode (LLAVANEXT_POOL_DEFAULT is resolved) */
    int32_t raw_orientation;  /**< non-zero when the frames were read with the frame sampler's
                                   apply_rotation = 0 (0: rotation applied, the default) */
} llavanext_embedding_key;

/** Fills a key with zeros (UNIFORM, default pooling) and sets struct_size; pass sizeof(*key). @since 0.2 */
LLAVANEXT_API void llavanext_embedding_key_init(llavanext_embedding_key *key, size_t size);

/**
 * SHA-256 of `size` bytes of media held in memory.
 * @param out  receives 32 bytes
 * @since 0.2
 */
LLAVANEXT_API llavanext_status llavanext_media_hash_memory(uint8_t *out, const void *data, size_t size);

/**
 * SHA-256 of a media file's bytes (read in blocks; LLAVANEXT_E_IO naming the file on failure).
 * @param out  receives 32 bytes
 * @since 0.2
 */
LLAVANEXT_API llavanext_status llavanext_media_hash_file(uint8_t *out, const char *path);

/**
 * Looks an entry up. On a hit *out receives a new tensor (VIDEO_EMBEDDINGS or IMAGE_EMBEDDINGS,
 * with the image size) and the entry becomes the most recently used; on a miss *out is NULL and
 * the status is still LLAVANEXT_OK. A damaged entry is deleted and counted as corrupt and as a
 * miss. Errors are only for bad arguments and for failures other than a missing or damaged entry.
 * @since 0.2
 */
LLAVANEXT_API llavanext_status llavanext_embedding_cache_get(llavanext_tensor **out, llavanext_embedding_cache *cache,
                                                             const llavanext_model *model,
                                                             const llavanext_embedding_key *key);

/**
 * Stores `embeddings` (VIDEO_EMBEDDINGS [frames, tokens_per_frame, text_hidden] for UNIFORM and
 * FPS keys, IMAGE_EMBEDDINGS [tokens, text_hidden] for IMAGE keys) under the key, replacing an
 * entry with the same key, then evicts least recently used entries down to the size cap. An
 * entry larger than the cap itself is not stored (LLAVANEXT_E_LIMIT).
 * @since 0.2
 */
LLAVANEXT_API llavanext_status llavanext_embedding_cache_put(llavanext_embedding_cache *cache,
                                                             const llavanext_model *model,
                                                             const llavanext_embedding_key *key,
                                                             const llavanext_tensor *embeddings);

/**
 * The message of the most recent failed call on `cache`, copied into `buf` as
 * llavanext_model_last_error() does (snprintf-style; returns its length, 0 when none failed).
 * Thread-safe; NULL cache returns 0. @since 0.2
 */
LLAVANEXT_API size_t llavanext_embedding_cache_last_error(const llavanext_embedding_cache *cache, char *buf,
                                                          size_t size);

/** Counters of one cache handle and the directory's current contents. @since 0.2 */
typedef struct llavanext_embedding_cache_stats {
    uint32_t struct_size;
    int64_t hits;      /**< gets that returned an entry (this handle) */
    int64_t misses;    /**< gets that found none (this handle; corrupt ones included) */
    int64_t corrupt;   /**< damaged entries found and deleted (this handle) */
    int64_t writes;    /**< entries stored (this handle) */
    int64_t evictions; /**< entries deleted for the size cap (this handle) */
    int64_t entries;   /**< entries in the directory now */
    int64_t bytes;     /**< their total size in bytes */
} llavanext_embedding_cache_stats;

/**
 * Fills `out` (set out->struct_size = sizeof(*out) first; the library fills what that size
 * covers). Scans the directory for entries and bytes.
 * @since 0.2
 */
LLAVANEXT_API llavanext_status llavanext_embedding_cache_stats_get(llavanext_embedding_cache_stats *out,
                                                                   llavanext_embedding_cache *cache);

#ifdef __cplusplus
}
#endif

#endif
