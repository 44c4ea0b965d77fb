#include "clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../kernels/gemm.h"
#include "../kernels/ops.h"

static lnx_status bind_linear(lnx_wstore *ws, const char *prefix, const char *name, int64_t rows, int64_t cols,
                              lnx_wmat *w, const float **b)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s.weight", prefix, name);
    LNX_TRY(lnx_wstore_matrix(ws, buf, rows, cols, w));
    snprintf(buf, sizeof buf, "%s%s.bias", prefix, name);
    return lnx_wstore_vector(ws, buf, rows, b);
}

static lnx_status bind_norm(lnx_wstore *ws, const char *prefix, const char *name, int64_t n, const float **w,
                            const float **b)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s.weight", prefix, name);
    LNX_TRY(lnx_wstore_vector(ws, buf, n, w));
    snprintf(buf, sizeof buf, "%s%s.bias", prefix, name);
    return lnx_wstore_vector(ws, buf, n, b);
}

lnx_status lnx_clip_bind(lnx_clip *m, const lnx_model_cfg *cfg, lnx_wstore *ws, const char *prefix)
{
    memset(m, 0, sizeof *m);
    m->cfg = cfg->vision;
    const lnx_vision_cfg *v = &cfg->vision;
    int64_t D = v->hidden, P = v->patch_size;
    m->grid = v->image_size / v->patch_size;
    m->tokens = m->grid * m->grid + (v->siglip ? 0 : 1);
    m->run_layers = cfg->vision_feature_layer < 0 ? v->layers + 1 + cfg->vision_feature_layer : cfg->vision_feature_layer;
    m->select = cfg->select_strategy;
    char buf[512];
    snprintf(buf, sizeof buf, "%sembeddings.patch_embedding.weight", prefix);
    LNX_TRY(lnx_wstore_conv(ws, buf, D, 3, P, P, &m->patch));
    if (v->siglip) {
        snprintf(buf, sizeof buf, "%sembeddings.patch_embedding.bias", prefix);
        LNX_TRY(lnx_wstore_vector(ws, buf, D, &m->patch_b));
    } else {
        snprintf(buf, sizeof buf, "%sembeddings.class_embedding", prefix);
        LNX_TRY(lnx_wstore_vector(ws, buf, D, &m->class_emb));
    }
    snprintf(buf, sizeof buf, "%sembeddings.position_embedding.weight", prefix);
    int64_t pdims[2] = { m->tokens, D };
    LNX_TRY(lnx_wstore_floats(ws, buf, 2, pdims, &m->pos_emb));
    /* transformers' misspelling "pre_layrnorm" is the real tensor name */
    snprintf(buf, sizeof buf, "%spre_layrnorm", prefix);
    if (!v->siglip)
        LNX_TRY(bind_norm(ws, buf, "", D, &m->pre_ln_w, &m->pre_ln_b));
    m->layers = calloc((size_t)(m->run_layers ? m->run_layers : 1), sizeof *m->layers);
    if (!m->layers)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    for (int32_t l = 0; l < m->run_layers; l++) {
        lnx_clip_layer *L = &m->layers[l];
        char lp[512];
        snprintf(lp, sizeof lp, "%sencoder.layers.%d.", prefix, (int)l);
        LNX_TRY(bind_norm(ws, lp, "layer_norm1", D, &L->ln1_w, &L->ln1_b));
        LNX_TRY(bind_norm(ws, lp, "layer_norm2", D, &L->ln2_w, &L->ln2_b));
        LNX_TRY(bind_linear(ws, lp, "self_attn.q_proj", D, D, &L->q, &L->q_b));
        LNX_TRY(bind_linear(ws, lp, "self_attn.k_proj", D, D, &L->k, &L->k_b));
        LNX_TRY(bind_linear(ws, lp, "self_attn.v_proj", D, D, &L->v, &L->v_b));
        LNX_TRY(bind_linear(ws, lp, "self_attn.out_proj", D, D, &L->o, &L->o_b));
        LNX_TRY(bind_linear(ws, lp, "mlp.fc1", v->intermediate, D, &L->fc1, &L->fc1_b));
        LNX_TRY(bind_linear(ws, lp, "mlp.fc2", D, v->intermediate, &L->fc2, &L->fc2_b));
    }
    return LNX_OK;
}

void lnx_clip_unbind(lnx_clip *m)
{
    free(m->layers);
    m->layers = NULL;
}

int32_t lnx_clip_out_tokens(const lnx_clip *m)
{
    return m->select == LNX_SELECT_FULL ? m->tokens : m->tokens - 1;
}

/* im2col of one frame's patches: rows = patches (row-major), cols = c, ky, kx (conv weight order) */
typedef struct im2col_ctx {
    const float *pixels;
    int32_t S, P, grid;
    float *cols;
} im2col_ctx;

static void im2col_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const im2col_ctx *c = p;
    int64_t per_frame = (int64_t)c->grid * c->grid;
    int64_t K = 3 * (int64_t)c->P * c->P;
    for (int64_t r = begin; r < end; r++) {
        int64_t f = r / per_frame, patch = r % per_frame;
        int32_t py = (int32_t)(patch / c->grid), px = (int32_t)(patch % c->grid);
        const float *img = c->pixels + f * 3 * (int64_t)c->S * c->S;
        float *dst = c->cols + r * K;
        for (int32_t ch = 0; ch < 3; ch++)
            for (int32_t ky = 0; ky < c->P; ky++) {
                const float *src = img + ((int64_t)ch * c->S + (int64_t)py * c->P + ky) * c->S + (int64_t)px * c->P;
                memcpy(dst, src, sizeof(float) * (size_t)c->P);
                dst += c->P;
            }
    }
}

void lnx_clip_ws_free(lnx_clip_ws *ws)
{
    lnx_buf_free(&ws->act);
    lnx_buf_free(&ws->attn);
}

/* Floats rounded up to whole cache lines (each carved buffer starts 64-byte aligned). */
static size_t lines(size_t floats)
{
    return (floats + 15) & ~(size_t)15;
}

lnx_status lnx_clip_forward(const lnx_clip *m, lnx_pool *pool, const float *pixels, int32_t frames, float *out,
                            float *hidden_states, lnx_clip_progress progress, void *user, lnx_clip_ws *keep)
{
    const int64_t D = m->cfg.hidden, T = m->tokens, F = frames, I = m->cfg.intermediate;
    const int64_t rows = F * T;
    const int64_t npatch = (int64_t)m->grid * m->grid;
    const int64_t K = 3 * (int64_t)m->cfg.patch_size * m->cfg.patch_size;
    size_t big = (size_t)rows * (size_t)(I > 3 * D ? I : 3 * D);
    size_t nx = lines((size_t)rows * (size_t)D), nbig = lines(big), ncols = lines((size_t)(F * npatch) * (size_t)K);
    lnx_clip_ws local = { { NULL, 0 }, { NULL, 0 } };
    lnx_clip_ws *w = keep ? keep : &local;
    lnx_status rc = LNX_OK;
    float *x = lnx_buf_get(&w->act, sizeof(float) * (2 * nx + nbig + ncols));
    if (!x) {
        rc = lnx_error(LNX_E_NOMEM, "out of memory for the vision tower on %d frames", (int)frames);
        goto done;
    }
    float *h = x + nx, *qkv = h + nx, *cols = qkv + nbig;
    /* patch embedding as one GEMM over all frames' patches */
    im2col_ctx ic = { pixels, m->cfg.image_size, m->cfg.patch_size, m->grid, cols };
    lnx_parallel_for(pool, F * npatch, im2col_rows, &ic);
    lnx_gemm_x(m->gemm, pool, F * npatch, cols, K, &m->patch, m->patch_b, qkv, D, 0);
    for (int64_t f = 0; f < F && m->cfg.siglip; f++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t d = 0; d < D; d++)
                x[(f * T + t) * D + d] = qkv[(f * npatch + t) * D + d] + m->pos_emb[t * D + d];
    for (int64_t f = 0; f < F && !m->cfg.siglip; f++) {
        float *xf = x + f * T * D;
        for (int64_t d = 0; d < D; d++)
            xf[d] = m->class_emb[d] + m->pos_emb[d];
        for (int64_t t = 1; t < T; t++)
            for (int64_t d = 0; d < D; d++)
                xf[t * D + d] = qkv[(f * npatch + t - 1) * D + d] + m->pos_emb[t * D + d];
    }
    if (!m->cfg.siglip)
        lnx_layernorm(pool, x, rows, D, m->pre_ln_w, m->pre_ln_b, m->cfg.ln_eps, x);
    if (hidden_states)
        memcpy(hidden_states, x, sizeof(float) * (size_t)rows * (size_t)D);
    const float scale = 1.0f / sqrtf((float)(D / m->cfg.heads));
    for (int32_t l = 0; l < m->run_layers; l++) {
        const lnx_clip_layer *L = &m->layers[l];
        float *q = qkv, *k = qkv + rows * D, *v = qkv + 2 * rows * D;
        lnx_layernorm(pool, x, rows, D, L->ln1_w, L->ln1_b, m->cfg.ln_eps, h);
        const lnx_wmat *qkv_w[3] = { &L->q, &L->k, &L->v };
        const float *qkv_b[3] = { L->q_b, L->k_b, L->v_b };
        float *qkv_c[3] = { q, k, v };
        const int64_t qkv_ld[3] = { D, D, D };
        lnx_gemm_multi(m->gemm, pool, rows, h, D, 3, qkv_w, qkv_b, qkv_c, qkv_ld);
        for (int64_t f = 0; f < F && rc == LNX_OK; f++) {
            lnx_attn_args a = { .Tq = T, .Tk = T, .H = m->cfg.heads, .KV = m->cfg.heads,
                                .hd = (int32_t)(D / m->cfg.heads), .q = q + f * T * D, .q_stride = D,
                                .k = k + f * T * D, .v = v + f * T * D, .kv_stride = D,
                                .out = h + f * T * D, .out_stride = D, .scale = scale,
                                .gemm = m->gemm };
            rc = lnx_attention(pool, &a, &w->attn);
        }
        if (rc != LNX_OK)
            goto done;
        lnx_gemm_x(m->gemm, pool, rows, h, D, &L->o, L->o_b, x, D, 1);
        lnx_layernorm(pool, x, rows, D, L->ln2_w, L->ln2_b, m->cfg.ln_eps, h);
        lnx_gemm_mlp(m->gemm, pool, rows, h, D, &L->fc1, L->fc1_b, m->cfg.act, &L->fc2, L->fc2_b, qkv, x, D, 1);
        if (hidden_states)
            memcpy(hidden_states + (size_t)(l + 1) * (size_t)rows * (size_t)D, x, sizeof(float) * (size_t)rows * (size_t)D);
        if (progress && progress(l + 1, m->run_layers, user)) {
            rc = lnx_error(LNX_E_ABORTED, "vision encoding aborted after layer %d of %d", (int)l + 1, (int)m->run_layers);
            goto done;
        }
    }
    int64_t skip = m->select == LNX_SELECT_FULL ? 0 : 1;
    int64_t ot = T - skip;
    for (int64_t f = 0; f < F; f++)
        memcpy(out + f * ot * D, x + (f * T + skip) * D, sizeof(float) * (size_t)(ot * D));
done:
    lnx_clip_ws_free(&local);
    return rc;
}
