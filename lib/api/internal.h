/* The public handles' definitions, shared by the lib/api glue files. */
#ifndef LNX_API_INTERNAL_H
#define LNX_API_INTERNAL_H

#include <stdatomic.h>

#include "api.h"
#include "../base/alloc.h"
#include "../base/log.h"
#include "../base/parallel.h"
#include "../io/config.h"
#include "../io/safetensors.h"
#include "../io/weights.h"
#include "../kernels/gemm.h"
#include "../llm/llama.h"
#include "../media/frames.h"
#include "../media/sampler.h"
#include "../text/template.h"
#include "../text/tokenizer.h"
#include "../vision/clip.h"
#include "../vision/pooler.h"
#include "../vision/preprocess.h"

struct llavanext_model {
    atomic_int refs;
    char *dir;
    lnx_model_cfg cfg;
    lnx_tokenizer *tok;
    lnx_template *tmpl;
    lnx_st *st;          /* NULL when loaded without weights */
    lnx_wstore *ws;
    lnx_clip clip;
    lnx_projector proj;
    lnx_llama llama;
    lnx_gemm_ctx *gemm;  /* compute precision and its caches (shared by every handle) */
    lnx_preproc_cfg pre;
    lnx_logger log;
    lnx_err_slot err;    /* llavanext_model_last_error */
};

struct llavanext_frames {
    lnx_frames *f;
};

struct llavanext_tensor {
    int32_t kind;
    int32_t ndim;
    int64_t dims[8];
    int64_t numel;
    int32_t image_h, image_w;
    float *data;
};

/* Converts the weights as params->weights asks (quantize-on-load, lib/api/model_weights.c);
 * *converted = the number of tensors converted (progress units reported). */
lnx_status lnx_model_convert(llavanext_model *m, const llavanext_model_params *params, int64_t *converted);

/* Takes a reference; the matching release is lnx_model_release (= llavanext_model_free). */
void lnx_model_retain(llavanext_model *m);
void lnx_model_release(llavanext_model *m);

/* Allocates a tensor of the given shape (uninitialised data). */
lnx_status lnx_tensor_new(llavanext_tensor **out, int32_t kind, int32_t ndim, const int64_t *dims);

/* Wraps an internal frames object (takes ownership). */
lnx_status lnx_frames_wrap(llavanext_frames **out, lnx_frames *f);

/* A handle's pool: the shared one (a reference taken) or a new one of `threads` workers. Freed
 * with lnx_pool_free either way. */
lnx_status lnx_api_pool(lnx_pool **out, int32_t threads, llavanext_threadpool *shared);

#define API_CHECK(cond, ...)                                  \
    do {                                                      \
        if (!(cond))                                          \
            return lnx_error(LNX_E_INVALID, __VA_ARGS__);     \
    } while (0)

#endif
