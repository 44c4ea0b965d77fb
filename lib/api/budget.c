/* The token budget planner. */
#include "internal.h"

#include <math.h>

#include "../vision/onevision.h"

#define MAX_TOKENS ((int64_t)1 << 40)

/* LLaVA-OneVision follows the frames of a video with one image_newline embedding. */
static int64_t video_extra(const llavanext_model *m, int64_t frames)
{
    return m->cfg.family == LNX_FAMILY_ONEVISION && frames > 0 ? 1 : 0;
}

static int64_t visual(const llavanext_model *m, int64_t frames, int32_t stride, int64_t image_tokens)
{
    return frames * llavanext_model_tokens_per_frame(m, stride) + video_extra(m, frames) + image_tokens;
}

static llavanext_status api_model_plan_budget(llavanext_budget *out, const llavanext_model *m,
                                                           int32_t frames, int32_t pool_stride, int64_t image_tokens,
                                                           int64_t text_tokens, int32_t max_new_tokens,
                                                           double rope_scale, int64_t context_limit);

LLAVANEXT_API llavanext_status llavanext_model_plan_budget(llavanext_budget *out, const llavanext_model *m,
                                                           int32_t frames, int32_t pool_stride, int64_t image_tokens,
                                                           int64_t text_tokens, int32_t max_new_tokens,
                                                           double rope_scale, int64_t context_limit)
{
    return lnx_err_record(m ? &m->err : NULL, api_model_plan_budget(out, m, frames, pool_stride, image_tokens, text_tokens, max_new_tokens, rope_scale, context_limit));
}

static llavanext_status api_model_plan_budget(llavanext_budget *out, const llavanext_model *m,
                                                           int32_t frames, int32_t pool_stride, int64_t image_tokens,
                                                           int64_t text_tokens, int32_t max_new_tokens,
                                                           double rope_scale, int64_t context_limit)
{
    API_CHECK(out && m, "llavanext_model_plan_budget: NULL argument");
    API_CHECK(out->struct_size >= sizeof(uint32_t), "llavanext_model_plan_budget: set out->struct_size first");
    API_CHECK(frames >= 0 && pool_stride >= 0 && image_tokens >= 0 && text_tokens >= 0 && max_new_tokens >= 0,
              "llavanext_model_plan_budget: negative count");
    API_CHECK(context_limit >= 0, "llavanext_model_plan_budget: negative context limit");
    /* bounds that keep every sum below INT64_MAX; no context comes near them */
    API_CHECK(image_tokens <= MAX_TOKENS && text_tokens <= MAX_TOKENS,
              "llavanext_model_plan_budget: more than %lld image or text tokens", (long long)MAX_TOKENS);
    API_CHECK(!isnan(rope_scale) && rope_scale <= 1024.0,
              "llavanext_model_plan_budget: rope_scale %g must be at most 1024", rope_scale);
    int32_t g = m->cfg.vision.image_size / m->cfg.vision.patch_size;
    int32_t stride = pool_stride ? pool_stride : m->cfg.pool_stride;
    API_CHECK(stride <= g, "llavanext_model_plan_budget: pool stride %d is larger than the %d-patch grid", (int)stride,
              (int)g);
    llavanext_budget b;
    memset(&b, 0, sizeof b);
    b.tokens_per_frame = llavanext_model_tokens_per_frame(m, stride);
    b.visual_tokens = visual(m, frames, stride, image_tokens);
    b.total_tokens = b.visual_tokens + text_tokens + max_new_tokens;
    int64_t max_pos = m->cfg.text.max_pos;
    if (rope_scale < 0) {
        double f = ceil((double)(frames * (int64_t)b.tokens_per_frame + 1000) / (double)max_pos);
        b.rope_scale = f >= 2 ? f : 1.0;
    } else {
        b.rope_scale = rope_scale > 0 ? rope_scale : m->cfg.text.rope_factor;
    }
    b.context_length = (int64_t)((double)max_pos * b.rope_scale);
    if (context_limit > 0 && context_limit < b.context_length)
        b.context_length = context_limit;
    b.fits = b.total_tokens <= b.context_length;
    int64_t room = b.context_length - image_tokens - text_tokens - max_new_tokens - video_extra(m, frames);
    b.suggested_frames = room > 0 && b.tokens_per_frame > 0 ? (int32_t)(room / b.tokens_per_frame) : 0;
    if (b.suggested_frames > frames)
        b.suggested_frames = frames;
    for (int32_t s = stride; s <= g; s++) {
        if (visual(m, frames, s, image_tokens) + text_tokens + max_new_tokens <= b.context_length) {
            b.suggested_pool_stride = s;
            break;
        }
    }
    uint32_t n = out->struct_size < sizeof b ? out->struct_size : (uint32_t)sizeof b;
    b.struct_size = n;
    memcpy(out, &b, n);
    return LNX_OK;
}

LLAVANEXT_API int64_t llavanext_model_image_tokens(const llavanext_model *m, int32_t height, int32_t width)
{
    if (!m || height <= 0 || width <= 0)
        return -1;
    lnx_anyres_plan plan;
    if (lnx_anyres_plan_for(&plan, height, width, (const int32_t(*)[2])m->cfg.pinpoints, m->cfg.n_pinpoints,
                            m->cfg.vision.image_size, m->cfg.vision.patch_size) != LNX_OK)
        return -1;
    int32_t g = m->cfg.vision.image_size / m->cfg.vision.patch_size;
    int32_t max_tiles = m->cfg.family == LNX_FAMILY_ONEVISION ? m->cfg.anyres_max : 0;
    return lnx_onevision_packed_tokens(height, width, plan.rows, plan.cols, g, max_tiles,
                                       m->proj.newline != NULL || !m->st);
}
