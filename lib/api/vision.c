/* llavanext_vision_encoder and llavanext_pooler. */
#include "internal.h"

#include <stdlib.h>

#include "../base/alloc.h"
#include "../vision/onevision.h"

/* Default of llavanext_vision_encoder_params.max_request_bytes. */
#define DEFAULT_MAX_REQUEST_BYTES ((int64_t)8 << 30)

struct llavanext_vision_encoder {
    lnx_err_slot err;
    llavanext_model *model;
    lnx_pool *pool;
    llavanext_vision_encoder_params p;
    lnx_logger log;
    atomic_int cancel;
    int64_t progress_done, progress_total;
};

struct llavanext_pooler {
    lnx_err_slot err;
    llavanext_model *model;
    lnx_pool *pool;
    int32_t stride, mode;
};

LLAVANEXT_API void llavanext_vision_encoder_params_init(llavanext_vision_encoder_params *p, size_t size)
{
    llavanext_vision_encoder_params d;
    memset(&d, 0, sizeof d);
    d.max_batch_frames = 8;
    lnx_params_init(p, size, &d, sizeof d);
}

static lnx_status need_weights(const llavanext_model *m, const char *fn)
{
    if (!m->st)
        return lnx_error(LNX_E_STATE, "%s: the model was loaded without weights (LLAVANEXT_LOAD_NO_WEIGHTS)", fn);
    return LNX_OK;
}

LLAVANEXT_API llavanext_status llavanext_vision_encoder_create(llavanext_vision_encoder **out, llavanext_model *model,
                                                               const llavanext_vision_encoder_params *params)
{
    API_CHECK(out, "llavanext_vision_encoder_create: out is NULL");
    *out = NULL;
    API_CHECK(model, "llavanext_vision_encoder_create: model is NULL");
    LNX_TRY(need_weights(model, "llavanext_vision_encoder_create"));
    llavanext_vision_encoder_params p;
    llavanext_vision_encoder_params_init(&p, sizeof p);
    LNX_TRY(lnx_params_copy(&p, sizeof p, params, "llavanext_vision_encoder_params"));
    API_CHECK(p.threads >= 0 && p.threads <= 1024, "llavanext_vision_encoder_params: threads = %d", (int)p.threads);
    API_CHECK(p.max_batch_frames >= 0 && p.max_batch_frames <= 4096,
              "llavanext_vision_encoder_params: max_batch_frames = %d", (int)p.max_batch_frames);
    API_CHECK(p.max_request_bytes >= 0, "llavanext_vision_encoder_params: max_request_bytes = %lld",
              (long long)p.max_request_bytes);
    if (p.max_batch_frames == 0)
        p.max_batch_frames = 8;
    if (p.max_request_bytes == 0)
        p.max_request_bytes = DEFAULT_MAX_REQUEST_BYTES;
    llavanext_vision_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    lnx_status st = lnx_api_pool(&e->pool, p.threads, p.threadpool);
    if (st != LNX_OK) {
        free(e);
        return st;
    }
    e->p = p;
    e->log.fn = p.log;
    e->log.user_data = p.log_user_data;
    atomic_init(&e->cancel, 0);
    lnx_model_retain(model);
    e->model = model;
    *out = e;
    return LNX_OK;
}

LLAVANEXT_API void llavanext_vision_encoder_free(llavanext_vision_encoder *e)
{
    if (!e)
        return;
    lnx_pool_free(e->pool);
    lnx_model_release(e->model);
    free(e);
}

LLAVANEXT_API void llavanext_vision_encoder_cancel(llavanext_vision_encoder *e)
{
    if (e)
        atomic_store(&e->cancel, 1);
}

/* A pending cancel (llavanext_vision_encoder_cancel's rule) fails the call now starting. */
static lnx_status take_cancel(llavanext_vision_encoder *e, const char *what)
{
    if (atomic_exchange(&e->cancel, 0))
        return lnx_error(LNX_E_ABORTED, "%s: cancelled before it started (llavanext_vision_encoder_cancel)", what);
    return LNX_OK;
}

static int32_t S_of(const llavanext_model *m)
{
    return m->cfg.vision.image_size;
}

/* Refuses, before anything is allocated, a request for `frames` images whose buffers would exceed
 * max_request_bytes: their preprocessed pixels (with_pixels) and, when encoding, their features
 * plus the tower's activations for one batch, as lnx_clip_forward allocates them. */
static lnx_status check_request(const llavanext_vision_encoder *e, int64_t frames, int with_pixels, int encode,
                                const char *fn)
{
    const lnx_clip *c = &e->model->clip;
    const double S = c->cfg.image_size, D = c->cfg.hidden, I = c->cfg.intermediate, P = c->cfg.patch_size;
    const double T = c->tokens, patches = (double)c->grid * c->grid, fl = sizeof(float);
    const double batch = (double)(frames < e->p.max_batch_frames ? frames : e->p.max_batch_frames);
    double pixels = with_pixels ? (double)frames * 3 * S * S * fl : 0;
    double features = encode ? (double)frames * lnx_clip_out_tokens(c) * D * fl : 0;
    double act = encode ? batch * (2 * T * D + T * (I > 3 * D ? I : 3 * D) + patches * 3 * P * P) * fl : 0;
    double total = pixels + features + act;
    if (total <= (double)e->p.max_request_bytes)
        return LNX_OK;
    const double MiB = 1024.0 * 1024.0;
    return lnx_error(LNX_E_LIMIT,
                     "%s: %lld images of %dx%d need about %.1f MiB (pixels %.1f, features %.1f, activations %.1f MiB), "
                     "more than max_request_bytes = %lld; pass fewer frames per call or raise the limit",
                     fn, (long long)frames, (int)S, (int)S, total / MiB, pixels / MiB, features / MiB, act / MiB,
                     (long long)e->p.max_request_bytes);
}

/* The AnyRes plan of frame `index` of `frames` as an image. */
static lnx_status image_plan(lnx_anyres_plan *plan, const llavanext_vision_encoder *e, const lnx_frames *f,
                             int32_t index, const char *fn)
{
    API_CHECK(index >= 0 && index < f->count, "%s: frame %d of %d", fn, (int)index, (int)f->count);
    const lnx_model_cfg *c = &e->model->cfg;
    return lnx_anyres_plan_for(plan, f->height, f->width, (const int32_t(*)[2])c->pinpoints, c->n_pinpoints,
                               c->vision.image_size, c->vision.patch_size);
}

static llavanext_status api_vision_encoder_preprocess_video(llavanext_tensor **out,
                                                                         llavanext_vision_encoder *e,
                                                                         const llavanext_frames *frames);

LLAVANEXT_API llavanext_status llavanext_vision_encoder_preprocess_video(llavanext_tensor **out,
                                                                         llavanext_vision_encoder *e,
                                                                         const llavanext_frames *frames)
{
    return lnx_err_record(e ? &e->err : NULL, api_vision_encoder_preprocess_video(out, e, frames));
}

static llavanext_status api_vision_encoder_preprocess_video(llavanext_tensor **out,
                                                                         llavanext_vision_encoder *e,
                                                                         const llavanext_frames *frames)
{
    API_CHECK(out, "llavanext_vision_encoder_preprocess_video: out is NULL");
    *out = NULL;
    API_CHECK(e && frames, "llavanext_vision_encoder_preprocess_video: NULL argument");
    const lnx_frames *f = frames->f;
    API_CHECK(f->count > 0, "llavanext_vision_encoder_preprocess_video: no frames");
    LNX_TRY(check_request(e, f->count, 1, 0, "llavanext_vision_encoder_preprocess_video"));
    LNX_TRY(take_cancel(e, "llavanext_vision_encoder_preprocess_video"));
    int32_t S = S_of(e->model);
    int64_t dims[4] = { f->count, 3, S, S };
    llavanext_tensor *t;
    LNX_TRY(lnx_tensor_new(&t, LLAVANEXT_TENSOR_VIDEO_PIXELS, 4, dims));
    /* one resampling plan for the batch (all frames share a size): each frame is resized,
     * cropped and normalised straight into its slot of the output */
    lnx_frame_prep *fp = NULL;
    lnx_status st = lnx_frame_prep_create(&fp, &e->model->pre, f->width, f->height);
    for (int32_t i = 0; st == LNX_OK && i < f->count; i++)
        st = lnx_frame_prep_run(fp, lnx_frame_ptr(f, i), f->width * 3, t->data + (size_t)i * 3 * (size_t)S * (size_t)S,
                                e->pool);
    lnx_frame_prep_free(fp);
    if (st != LNX_OK) {
        llavanext_tensor_free(t);
        return st;
    }
    *out = t;
    return LNX_OK;
}

static llavanext_status api_vision_encoder_preprocess_image(llavanext_tensor **out,
                                                                         llavanext_vision_encoder *e,
                                                                         const llavanext_frames *frames, int32_t index);

LLAVANEXT_API llavanext_status llavanext_vision_encoder_preprocess_image(llavanext_tensor **out,
                                                                         llavanext_vision_encoder *e,
                                                                         const llavanext_frames *frames, int32_t index)
{
    return lnx_err_record(e ? &e->err : NULL, api_vision_encoder_preprocess_image(out, e, frames, index));
}

static llavanext_status api_vision_encoder_preprocess_image(llavanext_tensor **out,
                                                                         llavanext_vision_encoder *e,
                                                                         const llavanext_frames *frames, int32_t index)
{
    API_CHECK(out, "llavanext_vision_encoder_preprocess_image: out is NULL");
    *out = NULL;
    API_CHECK(e && frames, "llavanext_vision_encoder_preprocess_image: NULL argument");
    const lnx_frames *f = frames->f;
    lnx_anyres_plan plan;
    LNX_TRY(image_plan(&plan, e, f, index, "llavanext_vision_encoder_preprocess_image"));
    LNX_TRY(check_request(e, plan.patches, 1, 0, "llavanext_vision_encoder_preprocess_image"));
    LNX_TRY(take_cancel(e, "llavanext_vision_encoder_preprocess_image"));
    int32_t S = S_of(e->model);
    int64_t dims[4] = { plan.patches, 3, S, S };
    llavanext_tensor *t;
    LNX_TRY(lnx_tensor_new(&t, LLAVANEXT_TENSOR_IMAGE_PIXELS, 4, dims));
    lnx_status st = lnx_preprocess_anyres(&e->model->pre, &plan, lnx_frame_ptr(f, index), f->width, f->height,
                                          f->width * 3, t->data, e->pool);
    if (st != LNX_OK) {
        llavanext_tensor_free(t);
        return st;
    }
    t->image_h = f->height;
    t->image_w = f->width;
    *out = t;
    return LNX_OK;
}

static int32_t clip_progress(int64_t done, int64_t total, void *user)
{
    llavanext_vision_encoder *e = user;
    if (atomic_exchange(&e->cancel, 0))
        return 1;
    if (e->p.progress)
        return e->p.progress(LLAVANEXT_STAGE_ENCODE, e->progress_done + done, e->progress_total,
                             e->p.progress_user_data);
    (void)total;
    return 0;
}

/* Runs the tower over `frames` images of pixels in batches, appending to out. */
static lnx_status encode_batches(llavanext_vision_encoder *e, const float *pixels, int64_t frames, float *out)
{
    const lnx_clip *clip = &e->model->clip;
    int64_t S = clip->cfg.image_size, T = lnx_clip_out_tokens(clip), D = clip->cfg.hidden;
    int64_t batch = e->p.max_batch_frames;
    e->progress_done = 0;
    e->progress_total = ((frames + batch - 1) / batch) * clip->run_layers;
    /* the tower's activations serve all of this call's batches (fresh ones per batch cost a page
     * fault per page written); they are not kept past the call, since the generator's memory peak
     * comes after encoding, with the encoder often still alive */
    lnx_clip_ws ws = { { NULL, 0 }, { NULL, 0 } };
    lnx_status st = LNX_OK;
    for (int64_t f0 = 0; f0 < frames && st == LNX_OK; f0 += batch) {
        int64_t nb = frames - f0 < batch ? frames - f0 : batch;
        st = lnx_clip_forward(clip, e->pool, pixels + f0 * 3 * S * S, (int32_t)nb, out + f0 * T * D, NULL, clip_progress,
                              e, &ws);
        e->progress_done += clip->run_layers;
    }
    lnx_clip_ws_free(&ws);
    return st;
}

static llavanext_status api_vision_encoder_encode_pixels(llavanext_tensor **out,
                                                                      llavanext_vision_encoder *e,
                                                                      const llavanext_tensor *pixels);

LLAVANEXT_API llavanext_status llavanext_vision_encoder_encode_pixels(llavanext_tensor **out,
                                                                      llavanext_vision_encoder *e,
                                                                      const llavanext_tensor *pixels)
{
    return lnx_err_record(e ? &e->err : NULL, api_vision_encoder_encode_pixels(out, e, pixels));
}

static llavanext_status api_vision_encoder_encode_pixels(llavanext_tensor **out,
                                                                      llavanext_vision_encoder *e,
                                                                      const llavanext_tensor *pixels)
{
    API_CHECK(out, "llavanext_vision_encoder_encode_pixels: out is NULL");
    *out = NULL;
    API_CHECK(e && pixels, "llavanext_vision_encoder_encode_pixels: NULL argument");
    int32_t S = S_of(e->model);
    API_CHECK(pixels->kind == LLAVANEXT_TENSOR_VIDEO_PIXELS || pixels->kind == LLAVANEXT_TENSOR_IMAGE_PIXELS,
              "llavanext_vision_encoder_encode_pixels: tensor kind %d is not pixels", (int)pixels->kind);
    API_CHECK(pixels->ndim == 4 && pixels->dims[1] == 3 && pixels->dims[2] == S && pixels->dims[3] == S &&
                  pixels->dims[0] > 0,
              "llavanext_vision_encoder_encode_pixels: pixels must be [N, 3, %d, %d]", (int)S, (int)S);
    LNX_TRY(check_request(e, pixels->dims[0], 0, 1, "llavanext_vision_encoder_encode_pixels"));
    LNX_TRY(take_cancel(e, "llavanext_vision_encoder_encode_pixels"));
    const lnx_clip *clip = &e->model->clip;
    int64_t dims[3] = { pixels->dims[0], lnx_clip_out_tokens(clip), clip->cfg.hidden };
    int32_t kind = pixels->kind == LLAVANEXT_TENSOR_VIDEO_PIXELS ? LLAVANEXT_TENSOR_VIDEO_FEATURES
                                                                  : LLAVANEXT_TENSOR_IMAGE_FEATURES;
    llavanext_tensor *t;
    LNX_TRY(lnx_tensor_new(&t, kind, 3, dims));
    lnx_status st = encode_batches(e, pixels->data, pixels->dims[0], t->data);
    if (st != LNX_OK) {
        llavanext_tensor_free(t);
        return st;
    }
    t->image_h = pixels->image_h;
    t->image_w = pixels->image_w;
    *out = t;
    return LNX_OK;
}

static llavanext_status api_vision_encoder_encode_video(llavanext_tensor **out,
                                                                     llavanext_vision_encoder *e,
                                                                     const llavanext_frames *frames);

LLAVANEXT_API llavanext_status llavanext_vision_encoder_encode_video(llavanext_tensor **out,
                                                                     llavanext_vision_encoder *e,
                                                                     const llavanext_frames *frames)
{
    return lnx_err_record(e ? &e->err : NULL, api_vision_encoder_encode_video(out, e, frames));
}

static llavanext_status api_vision_encoder_encode_video(llavanext_tensor **out,
                                                                     llavanext_vision_encoder *e,
                                                                     const llavanext_frames *frames)
{
    API_CHECK(out, "llavanext_vision_encoder_encode_video: out is NULL");
    *out = NULL;
    API_CHECK(e && frames, "llavanext_vision_encoder_encode_video: NULL argument");
    LNX_TRY(check_request(e, frames->f->count, 1, 1, "llavanext_vision_encoder_encode_video"));
    llavanext_tensor *pixels;
    LNX_TRY(llavanext_vision_encoder_preprocess_video(&pixels, e, frames));
    lnx_status st = llavanext_vision_encoder_encode_pixels(out, e, pixels);
    llavanext_tensor_free(pixels);
    return st;
}

static llavanext_status api_vision_encoder_encode_image(llavanext_tensor **out,
                                                                     llavanext_vision_encoder *e,
                                                                     const llavanext_frames *frames, int32_t index);

LLAVANEXT_API llavanext_status llavanext_vision_encoder_encode_image(llavanext_tensor **out,
                                                                     llavanext_vision_encoder *e,
                                                                     const llavanext_frames *frames, int32_t index)
{
    return lnx_err_record(e ? &e->err : NULL, api_vision_encoder_encode_image(out, e, frames, index));
}

static llavanext_status api_vision_encoder_encode_image(llavanext_tensor **out,
                                                                     llavanext_vision_encoder *e,
                                                                     const llavanext_frames *frames, int32_t index)
{
    API_CHECK(out, "llavanext_vision_encoder_encode_image: out is NULL");
    *out = NULL;
    API_CHECK(e && frames, "llavanext_vision_encoder_encode_image: NULL argument");
    lnx_anyres_plan plan;
    LNX_TRY(image_plan(&plan, e, frames->f, index, "llavanext_vision_encoder_encode_image"));
    LNX_TRY(check_request(e, plan.patches, 1, 1, "llavanext_vision_encoder_encode_image"));
    llavanext_tensor *pixels;
    LNX_TRY(llavanext_vision_encoder_preprocess_image(&pixels, e, frames, index));
    lnx_status st = llavanext_vision_encoder_encode_pixels(out, e, pixels);
    llavanext_tensor_free(pixels);
    return st;
}

/* ---- pooler ---- */

LLAVANEXT_API void llavanext_pooler_params_init(llavanext_pooler_params *p, size_t size)
{
    llavanext_pooler_params d;
    memset(&d, 0, sizeof d);
    d.pool_mode = LLAVANEXT_POOL_DEFAULT;
    lnx_params_init(p, size, &d, sizeof d);
}

LLAVANEXT_API llavanext_status llavanext_pooler_create(llavanext_pooler **out, llavanext_model *model,
                                                       const llavanext_pooler_params *params)
{
    API_CHECK(out, "llavanext_pooler_create: out is NULL");
    *out = NULL;
    API_CHECK(model, "llavanext_pooler_create: model is NULL");
    LNX_TRY(need_weights(model, "llavanext_pooler_create"));
    llavanext_pooler_params p;
    llavanext_pooler_params_init(&p, sizeof p);
    LNX_TRY(lnx_params_copy(&p, sizeof p, params, "llavanext_pooler_params"));
    int32_t g = model->clip.grid;
    API_CHECK(p.pool_stride >= 0 && p.pool_stride <= g, "llavanext_pooler_params: pool_stride %d must be 1 .. %d",
              (int)p.pool_stride, (int)g);
    API_CHECK(p.pool_mode >= LLAVANEXT_POOL_DEFAULT && p.pool_mode <= LLAVANEXT_POOL_MAX,
              "llavanext_pooler_params: pool_mode %d is unknown", (int)p.pool_mode);
    API_CHECK(p.threads >= 0 && p.threads <= 1024, "llavanext_pooler_params: threads = %d", (int)p.threads);
    if (model->cfg.family == LNX_FAMILY_ONEVISION && p.pool_mode != LLAVANEXT_POOL_DEFAULT)
        return lnx_error(LNX_E_UNSUPPORTED, "llavanext_pooler_params: this LLaVA-OneVision model resizes each frame's "
                         "grid (bilinear); pool_mode must be LLAVANEXT_POOL_DEFAULT");
    llavanext_pooler *pl = calloc(1, sizeof *pl);
    if (!pl)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    lnx_status st = lnx_api_pool(&pl->pool, p.threads, p.threadpool);
    if (st != LNX_OK) {
        free(pl);
        return st;
    }
    pl->stride = p.pool_stride ? p.pool_stride : model->cfg.pool_stride;
    pl->mode = p.pool_mode == LLAVANEXT_POOL_DEFAULT ? model->cfg.pool_mode
               : p.pool_mode == LLAVANEXT_POOL_MAX   ? LNX_POOL_MAX
                                                     : LNX_POOL_AVERAGE;
    lnx_model_retain(model);
    pl->model = model;
    *out = pl;
    return LNX_OK;
}

LLAVANEXT_API void llavanext_pooler_free(llavanext_pooler *pl)
{
    if (!pl)
        return;
    lnx_pool_free(pl->pool);
    lnx_model_release(pl->model);
    free(pl);
}

static int onevision(const llavanext_model *m)
{
    return m->cfg.family == LNX_FAMILY_ONEVISION;
}

/* Side of a pooled frame: floor(g / s) for LLaVA-NeXT-Video's pooling, ceil(g / s) for
 * OneVision's bilinear resize. */
static int32_t pooled_side(const llavanext_pooler *pl)
{
    int32_t g = pl->model->clip.grid;
    return onevision(pl->model) ? lnx_onevision_pool_side(g, pl->stride) : lnx_pool_out_side(g, pl->stride);
}

LLAVANEXT_API int32_t llavanext_pooler_tokens_per_frame(const llavanext_pooler *pl)
{
    if (!pl)
        return 0;
    int32_t o = pooled_side(pl);
    return o * o;
}

static lnx_status check_features(const llavanext_tensor *t, int32_t kind, int64_t tokens,
                                 int64_t dim, const char *fn)
{
    API_CHECK(t->kind == kind, "%s: tensor kind %d is not the expected %d", fn, (int)t->kind, (int)kind);
    API_CHECK(t->ndim == 3 && t->dims[0] > 0 && t->dims[1] == tokens && t->dims[2] == dim,
              "%s: tensor must be [N, %lld, %lld]", fn, (long long)tokens, (long long)dim);
    return LNX_OK;
}

static llavanext_status api_pooler_pool(llavanext_tensor **out, llavanext_pooler *pl,
                                                     const llavanext_tensor *features);

LLAVANEXT_API llavanext_status llavanext_pooler_pool(llavanext_tensor **out, llavanext_pooler *pl,
                                                     const llavanext_tensor *features)
{
    return lnx_err_record(pl ? &pl->err : NULL, api_pooler_pool(out, pl, features));
}

static llavanext_status api_pooler_pool(llavanext_tensor **out, llavanext_pooler *pl,
                                                     const llavanext_tensor *features)
{
    API_CHECK(out, "llavanext_pooler_pool: out is NULL");
    *out = NULL;
    API_CHECK(pl && features, "llavanext_pooler_pool: NULL argument");
    const lnx_clip *clip = &pl->model->clip;
    int32_t g = clip->grid;
    if (onevision(pl->model)) {
        /* OneVision: VIDEO_PROJECTED -> bilinear resize of each frame's grid -> VIDEO_EMBEDDINGS */
        if (features->kind == LLAVANEXT_TENSOR_VIDEO_FEATURES)
            return lnx_error(LNX_E_INVALID, "llavanext_pooler_pool: this LLaVA-OneVision model projects before it "
                             "pools: pass VIDEO_FEATURES to llavanext_pooler_project first");
        int32_t Dt = pl->model->proj.out_dim, o = pooled_side(pl);
        LNX_TRY(check_features(features, LLAVANEXT_TENSOR_VIDEO_PROJECTED, (int64_t)g * g, Dt, "llavanext_pooler_pool"));
        int64_t dims[3] = { features->dims[0], (int64_t)o * o, Dt };
        llavanext_tensor *t;
        LNX_TRY(lnx_tensor_new(&t, LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS, 3, dims));
        lnx_bilinear_resize(pl->pool, features->data, (int32_t)features->dims[0], g, g, Dt, o, o, t->data);
        *out = t;
        return LNX_OK;
    }
    if (features->kind == LLAVANEXT_TENSOR_VIDEO_FEATURES && features->ndim == 3 && features->dims[1] != (int64_t)g * g)
        return lnx_error(LNX_E_UNSUPPORTED,
                         "llavanext_pooler_pool: %lld tokens per frame do not form a square grid (the \"full\" "
                         "select strategy keeps the CLS token; pooling needs %d)",
                         (long long)features->dims[1], (int)(g * g));
    LNX_TRY(check_features(features, LLAVANEXT_TENSOR_VIDEO_FEATURES, (int64_t)g * g, clip->cfg.hidden,
                       "llavanext_pooler_pool"));
    int32_t o = lnx_pool_out_side(g, pl->stride);
    int64_t dims[3] = { features->dims[0], (int64_t)o * o, clip->cfg.hidden };
    llavanext_tensor *t;
    LNX_TRY(lnx_tensor_new(&t, LLAVANEXT_TENSOR_VIDEO_POOLED, 3, dims));
    lnx_pool_frames(pl->pool, features->data, (int32_t)features->dims[0], g, clip->cfg.hidden, pl->stride, pl->mode,
                    t->data);
    *out = t;
    return LNX_OK;
}

static llavanext_status api_pooler_project(llavanext_tensor **out, llavanext_pooler *pl,
                                                        const llavanext_tensor *in);

LLAVANEXT_API llavanext_status llavanext_pooler_project(llavanext_tensor **out, llavanext_pooler *pl,
                                                        const llavanext_tensor *in)
{
    return lnx_err_record(pl ? &pl->err : NULL, api_pooler_project(out, pl, in));
}

static llavanext_status api_pooler_project(llavanext_tensor **out, llavanext_pooler *pl,
                                                        const llavanext_tensor *in)
{
    API_CHECK(out, "llavanext_pooler_project: out is NULL");
    *out = NULL;
    API_CHECK(pl && in, "llavanext_pooler_project: NULL argument");
    const lnx_projector *pr = &pl->model->proj;
    int32_t kind;
    if (onevision(pl->model) && in->kind == LLAVANEXT_TENSOR_VIDEO_FEATURES)
        kind = LLAVANEXT_TENSOR_VIDEO_PROJECTED;
    else if (in->kind == LLAVANEXT_TENSOR_VIDEO_POOLED && !onevision(pl->model))
        kind = LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS;
    else if (in->kind == LLAVANEXT_TENSOR_IMAGE_FEATURES)
        kind = LLAVANEXT_TENSOR_IMAGE_PROJECTED;
    else
        return lnx_error(LNX_E_INVALID, "llavanext_pooler_project: tensor kind %d is neither %s nor "
                         "IMAGE_FEATURES", (int)in->kind, onevision(pl->model) ? "VIDEO_FEATURES" : "VIDEO_POOLED");
    API_CHECK(in->ndim == 3 && in->dims[2] == pr->in_dim && in->dims[0] > 0 && in->dims[1] > 0,
              "llavanext_pooler_project: tensor must be [N, T, %d]", (int)pr->in_dim);
    int64_t dims[3] = { in->dims[0], in->dims[1], pr->out_dim };
    llavanext_tensor *t;
    LNX_TRY(lnx_tensor_new(&t, kind, 3, dims));
    lnx_status st = lnx_project(pr, pl->pool, in->data, in->dims[0] * in->dims[1], t->data);
    if (st != LNX_OK) {
        llavanext_tensor_free(t);
        return st;
    }
    t->image_h = in->image_h;
    t->image_w = in->image_w;
    *out = t;
    return LNX_OK;
}

static llavanext_status api_pooler_pack_image(llavanext_tensor **out, llavanext_pooler *pl,
                                                           const llavanext_tensor *in);

LLAVANEXT_API llavanext_status llavanext_pooler_pack_image(llavanext_tensor **out, llavanext_pooler *pl,
                                                           const llavanext_tensor *in)
{
    return lnx_err_record(pl ? &pl->err : NULL, api_pooler_pack_image(out, pl, in));
}

static llavanext_status api_pooler_pack_image(llavanext_tensor **out, llavanext_pooler *pl,
                                                           const llavanext_tensor *in)
{
    API_CHECK(out, "llavanext_pooler_pack_image: out is NULL");
    *out = NULL;
    API_CHECK(pl && in, "llavanext_pooler_pack_image: NULL argument");
    const llavanext_model *m = pl->model;
    const lnx_clip *clip = &m->clip;
    int32_t g = clip->grid;
    LNX_TRY(check_features(in, LLAVANEXT_TENSOR_IMAGE_PROJECTED, (int64_t)g * g, m->proj.out_dim,
                       "llavanext_pooler_pack_image"));
    API_CHECK(in->image_h > 0 && in->image_w > 0, "llavanext_pooler_pack_image: the tensor carries no image size");
    lnx_anyres_plan plan;
    LNX_TRY(lnx_anyres_plan_for(&plan, in->image_h, in->image_w, (const int32_t(*)[2])m->cfg.pinpoints, m->cfg.n_pinpoints,
                            m->cfg.vision.image_size, m->cfg.vision.patch_size));
    if (in->dims[0] != plan.patches)
        return lnx_error(LNX_E_INVALID, "llavanext_pooler_pack_image: %lld patches, the %dx%d image needs %d",
                         (long long)in->dims[0], (int)in->image_w, (int)in->image_h, (int)plan.patches);
    int32_t max_tiles = onevision(m) ? m->cfg.anyres_max : 0;
    int64_t n = lnx_onevision_packed_tokens(in->image_h, in->image_w, plan.rows, plan.cols, g, max_tiles,
                                            m->proj.newline != NULL);
    int64_t dims[2] = { n, m->proj.out_dim };
    llavanext_tensor *t;
    LNX_TRY(lnx_tensor_new(&t, LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS, 2, dims));
    lnx_status st = LNX_OK;
    if (max_tiles)
        st = lnx_onevision_pack(pl->pool, in->data, in->image_h, in->image_w, plan.rows, plan.cols, g, m->proj.out_dim,
                                max_tiles, m->proj.newline, t->data);
    else
        lnx_anyres_pack(in->data, in->image_h, in->image_w, plan.rows, plan.cols, g, m->proj.out_dim, m->proj.newline,
                        t->data);
    if (st != LNX_OK) {
        llavanext_tensor_free(t);
        return st;
    }
    t->image_h = in->image_h;
    t->image_w = in->image_w;
    *out = t;
    return LNX_OK;
}

static llavanext_status api_pooler_apply(llavanext_tensor **out, llavanext_pooler *pl,
                                                      const llavanext_tensor *features);

LLAVANEXT_API llavanext_status llavanext_pooler_apply(llavanext_tensor **out, llavanext_pooler *pl,
                                                      const llavanext_tensor *features)
{
    return lnx_err_record(pl ? &pl->err : NULL, api_pooler_apply(out, pl, features));
}

static llavanext_status api_pooler_apply(llavanext_tensor **out, llavanext_pooler *pl,
                                                      const llavanext_tensor *features)
{
    API_CHECK(out, "llavanext_pooler_apply: out is NULL");
    *out = NULL;
    API_CHECK(pl && features, "llavanext_pooler_apply: NULL argument");
    llavanext_tensor *mid;
    lnx_status st;
    if (features->kind == LLAVANEXT_TENSOR_VIDEO_FEATURES && onevision(pl->model)) {
        LNX_TRY(llavanext_pooler_project(&mid, pl, features));
        st = llavanext_pooler_pool(out, pl, mid);
    } else if (features->kind == LLAVANEXT_TENSOR_VIDEO_FEATURES) {
        LNX_TRY(llavanext_pooler_pool(&mid, pl, features));
        st = llavanext_pooler_project(out, pl, mid);
    } else if (features->kind == LLAVANEXT_TENSOR_IMAGE_FEATURES) {
        LNX_TRY(llavanext_pooler_project(&mid, pl, features));
        st = llavanext_pooler_pack_image(out, pl, mid);
    } else {
        return lnx_error(LNX_E_INVALID, "llavanext_pooler_apply: tensor kind %d is neither VIDEO_FEATURES nor "
                         "IMAGE_FEATURES", (int)features->kind);
    }
    llavanext_tensor_free(mid);
    return st;
}

LLAVANEXT_API size_t llavanext_vision_encoder_last_error(const llavanext_vision_encoder *handle, char *buf, size_t size)
{
    return lnx_err_copy(handle ? &handle->err : NULL, buf, size);
}

LLAVANEXT_API size_t llavanext_pooler_last_error(const llavanext_pooler *handle, char *buf, size_t size)
{
    return lnx_err_copy(handle ? &handle->err : NULL, buf, size);
}
