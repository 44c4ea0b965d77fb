#include "llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/cpu.h"
#include "../base/half.h"
#include "../base/quant.h"
#include "../kernels/gemm.h"
#include "../kernels/quant.h"

static lnx_status bind_lin(lnx_wstore *ws, const char *lp, const char *name, int64_t rows, int64_t cols, int bias,
                           lnx_wmat *w, const float **b)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s%s.weight", lp, name);
    LNX_TRY(lnx_wstore_matrix(ws, buf, rows, cols, w));
    *b = NULL;
    if (!bias)
        return LNX_OK;
    snprintf(buf, sizeof buf, "%s%s.bias", lp, name);
    return lnx_wstore_vector(ws, buf, rows, b);
}

lnx_status lnx_llama_bind(lnx_llama *m, const lnx_text_cfg *cfg, lnx_wstore *ws, const char *body_prefix,
                          const char *head_name)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    const int64_t D = cfg->hidden, qd = (int64_t)cfg->heads * cfg->head_dim, kvd = (int64_t)cfg->kv_heads * cfg->head_dim;
    char buf[512];
    snprintf(buf, sizeof buf, "%sembed_tokens.weight", body_prefix);
    LNX_TRY(lnx_wstore_matrix(ws, buf, cfg->vocab, D, &m->embed));
    if (head_name)
        LNX_TRY(lnx_wstore_matrix(ws, head_name, cfg->vocab, D, &m->lm_head));
    else
        m->lm_head = m->embed;
    snprintf(buf, sizeof buf, "%snorm.weight", body_prefix);
    LNX_TRY(lnx_wstore_vector(ws, buf, D, &m->norm));
    m->layers = calloc((size_t)cfg->layers, sizeof *m->layers);
    if (!m->layers)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    for (int32_t l = 0; l < cfg->layers; l++) {
        lnx_llama_layer *L = &m->layers[l];
        char lp[512];
        snprintf(lp, sizeof lp, "%slayers.%d.", body_prefix, (int)l);
        snprintf(buf, sizeof buf, "%sinput_layernorm.weight", lp);
        LNX_TRY(lnx_wstore_vector(ws, buf, D, &L->in_norm));
        snprintf(buf, sizeof buf, "%spost_attention_layernorm.weight", lp);
        LNX_TRY(lnx_wstore_vector(ws, buf, D, &L->post_norm));
        int qkv_bias = cfg->attention_bias || cfg->qkv_bias; /* Qwen2: q/k/v with bias, o_proj without */
        LNX_TRY(bind_lin(ws, lp, "self_attn.q_proj", qd, D, qkv_bias, &L->q, &L->q_b));
        LNX_TRY(bind_lin(ws, lp, "self_attn.k_proj", kvd, D, qkv_bias, &L->k, &L->k_b));
        LNX_TRY(bind_lin(ws, lp, "self_attn.v_proj", kvd, D, qkv_bias, &L->v, &L->v_b));
        LNX_TRY(bind_lin(ws, lp, "self_attn.o_proj", D, qd, cfg->attention_bias, &L->o, &L->o_b));
        LNX_TRY(bind_lin(ws, lp, "mlp.gate_proj", cfg->intermediate, D, cfg->mlp_bias, &L->gate, &L->gate_b));
        LNX_TRY(bind_lin(ws, lp, "mlp.up_proj", cfg->intermediate, D, cfg->mlp_bias, &L->up, &L->up_b));
        LNX_TRY(bind_lin(ws, lp, "mlp.down_proj", D, cfg->intermediate, cfg->mlp_bias, &L->down, &L->down_b));
    }
    return LNX_OK;
}

void lnx_llama_unbind(lnx_llama *m)
{
    free(m->layers);
    m->layers = NULL;
}

void lnx_llama_embed(const lnx_llama *m, const int32_t *ids, int64_t n, float *out)
{
    /* one row at a time, in whatever format the table is stored (a quantized table stays so) */
    const int64_t D = m->cfg.hidden;
    for (int64_t i = 0; i < n; i++)
        lnx_wmat_row(&m->embed, ids[i], out + i * D);
}

lnx_status lnx_kv_init_dtype(lnx_kv *kv, int32_t layers, int32_t kv_dim, int64_t capacity, lnx_dtype dtype)
{
    memset(kv, 0, sizeof *kv);
    size_t n;
    if (dtype != LNX_DT_F32 && dtype != LNX_DT_F16 && dtype != LNX_DT_Q8)
        return lnx_error(LNX_E_INVALID, "KV cache type must be float32, float16 or q8");
    if (dtype == LNX_DT_Q8 && kv_dim % LNX_QBLOCK)
        return lnx_error(LNX_E_INVALID, "a q8 KV cache needs rows of a multiple of 32 values, not %d", (int)kv_dim);
    size_t row = lnx_row_bytes(dtype, kv_dim);
    if (capacity <= 0 || !lnx_mul_size((size_t)layers * row, (size_t)capacity, &n))
        return lnx_error(LNX_E_LIMIT, "KV cache of %lld positions is too large", (long long)capacity);
    kv->k = lnx_amalloc(n);
    kv->v = lnx_amalloc(n);
    if (!kv->k || !kv->v) {
        lnx_kv_free(kv);
        return lnx_error(LNX_E_NOMEM, "cannot allocate a KV cache of %lld positions (2 x %zu bytes)",
                         (long long)capacity, n);
    }
    kv->layers = layers;
    kv->kv_dim = kv_dim;
    kv->capacity = capacity;
    kv->dtype = dtype;
    kv->row_bytes = row;
    return LNX_OK;
}

lnx_status lnx_kv_init(lnx_kv *kv, int32_t layers, int32_t kv_dim, int64_t capacity)
{
    return lnx_kv_init_dtype(kv, layers, kv_dim, capacity, LNX_DT_F32);
}

void lnx_kv_free(lnx_kv *kv)
{
    lnx_afree(kv->k);
    lnx_afree(kv->v);
    kv->k = kv->v = NULL;
}

size_t lnx_kv_row_bytes(const lnx_kv *kv)
{
    return kv->row_bytes;
}

lnx_dtype lnx_llama_kv_fit(const lnx_llama *m, lnx_dtype want)
{
    int64_t kvd = (int64_t)m->cfg.kv_heads * m->cfg.head_dim;
    if (want == LNX_DT_Q8 && (m->cfg.head_dim % 16 || kvd % LNX_QBLOCK))
        return LNX_DT_F16;
    return want;
}

lnx_dtype lnx_llama_kv_dtype(const lnx_llama *m)
{
    if (lnx_gemm_ctx_precision(m->gemm) == LNX_PRECISION_BF16)
        return LNX_DT_F16;
    /* 4-bit decoders keep an 8-bit cache (what makes a 32-frame 7B request fit in 6 GiB; its error
     * on the fixtures' logits is a twentieth of the 4-bit weights'), 8-bit ones a half cache where
     * F16C converts it cheaply (AVX2 implies it here) */
    lnx_dtype w = m->cfg.layers > 0 && m->layers ? m->layers[0].q.dtype : LNX_DT_F32;
    if (w == LNX_DT_Q4)
        return lnx_llama_kv_fit(m, LNX_DT_Q8);
    return lnx_dtype_is_quant(w) && (lnx_cpu_flags() & LNX_CPU_AVX2) ? LNX_DT_F16 : LNX_DT_F32;
}

void lnx_llama_scratch_free(lnx_llama_scratch *s)
{
    lnx_afree(s->x);
    lnx_afree(s->h);
    lnx_afree(s->q);
    lnx_afree(s->k);
    lnx_afree(s->v);
    lnx_afree(s->att);
    lnx_afree(s->gate);
    lnx_afree(s->up);
    lnx_buf_free(&s->attn);
    memset(s, 0, sizeof *s);
}

lnx_status lnx_llama_scratch_reserve(lnx_llama_scratch *s, const lnx_text_cfg *c, int64_t rows)
{
    if (rows <= s->rows)
        return LNX_OK;
    lnx_attn_ws keep = s->attn;
    s->attn.p = NULL;
    lnx_llama_scratch_free(s);
    s->attn = keep;
    size_t r = (size_t)rows;
    size_t qd = (size_t)c->heads * (size_t)c->head_dim, kvd = (size_t)c->kv_heads * (size_t)c->head_dim;
    s->x = lnx_amalloc(sizeof(float) * r * (size_t)c->hidden);
    s->h = lnx_amalloc(sizeof(float) * r * (size_t)c->hidden);
    s->q = lnx_amalloc(sizeof(float) * r * qd);
    s->k = lnx_amalloc(sizeof(float) * r * kvd);
    s->v = lnx_amalloc(sizeof(float) * r * kvd);
    s->att = lnx_amalloc(sizeof(float) * r * qd);
    s->gate = lnx_amalloc(sizeof(float) * r * (size_t)c->intermediate);
    s->up = lnx_amalloc(sizeof(float) * r * (size_t)c->intermediate);
    if (!s->x || !s->h || !s->q || !s->k || !s->v || !s->att || !s->gate || !s->up) {
        lnx_llama_scratch_free(s);
        return lnx_error(LNX_E_NOMEM, "out of memory for %lld positions of activations", (long long)rows);
    }
    s->rows = rows;
    return LNX_OK;
}

typedef struct rope_ctx {
    const lnx_rope *rope;
    float *q, *k;
    int32_t heads, kv_heads, hd;
    int64_t pos0;
} rope_ctx;

static void rope_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const rope_ctx *c = p;
    for (int64_t t = begin; t < end; t++)
        lnx_rope_apply2(c->rope, c->q + t * c->heads * c->hd, c->heads, c->k + t * c->kv_heads * c->hd, c->kv_heads,
                        c->pos0 + t);
}

/* The block's float32 keys and values into a half or Q8 cache. */
typedef struct store_ctx {
    const float *k, *v;
    char *kc, *vc;      /* the block's first cache row */
    int64_t kvd;
    lnx_dtype dt;
    size_t row_bytes;
} store_ctx;

static void store_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const store_ctx *c = p;
    if (c->dt == LNX_DT_F16) {
        size_t n = (size_t)((end - begin) * c->kvd), off = (size_t)begin * c->row_bytes;
        lnx_f32_to_f16_n(c->k + begin * c->kvd, (uint16_t *)(c->kc + off), n);
        lnx_f32_to_f16_n(c->v + begin * c->kvd, (uint16_t *)(c->vc + off), n);
        return;
    }
    for (int64_t t = begin; t < end; t++) {
        lnx_quantize_row(LNX_DT_Q8, c->k + t * c->kvd, c->kvd, c->kc + (size_t)t * c->row_bytes);
        lnx_quantize_row(LNX_DT_Q8, c->v + t * c->kvd, c->kvd, c->vc + (size_t)t * c->row_bytes);
    }
}

lnx_status lnx_llama_forward(const lnx_llama *m, const lnx_rope *rope, lnx_kv *kv, lnx_llama_scratch *s,
                             lnx_pool *pool, const lnx_llama_pass *p)
{
    const lnx_text_cfg *c = &m->cfg;
    const int64_t T = p->T, D = c->hidden, I = c->intermediate;
    const int32_t hd = c->head_dim;
    const int64_t qd = (int64_t)c->heads * hd, kvd = (int64_t)c->kv_heads * hd;
    const lnx_gemm_ctx *gx = m->gemm;
    if (T <= 0)
        return LNX_OK;
    if (p->pos0 + T > kv->capacity)
        return lnx_error(LNX_E_CONTEXT_FULL, "%lld positions do not fit: %lld cached, capacity %lld", (long long)T,
                         (long long)p->pos0, (long long)kv->capacity);
    LNX_TRY(lnx_llama_scratch_reserve(s, c, T));
    float *x = s->x;
    memcpy(x, p->input, sizeof(float) * (size_t)(T * D));
    size_t plane = (size_t)(T * D);
    if (p->hidden_states)
        memcpy(p->hidden_states, x, sizeof(float) * plane);
    const float scale = 1.0f / sqrtf((float)hd);
    const int rounded = kv->dtype != LNX_DT_F32; /* half or Q8: stored after attention */
    const size_t rb = kv->row_bytes;
    for (int32_t l = 0; l < c->layers; l++) {
        const lnx_llama_layer *L = &m->layers[l];
        char *kc = (char *)kv->k + (size_t)l * (size_t)kv->capacity * rb;
        char *vc = (char *)kv->v + (size_t)l * (size_t)kv->capacity * rb;
        /* float32 caches receive the block's keys and values directly; half and Q8 ones after
         * attention (the block attends to its own keys in float32) */
        float *kb = rounded ? s->k : (float *)kc + p->pos0 * kvd;
        float *vb = rounded ? s->v : (float *)vc + p->pos0 * kvd;
        lnx_rmsnorm(pool, x, T, D, L->in_norm, c->rms_eps, s->h);
        const lnx_wmat *qkv_w[3] = { &L->q, &L->k, &L->v };
        const float *qkv_b[3] = { L->q_b, L->k_b, L->v_b };
        float *qkv_c[3] = { s->q, kb, vb };
        const int64_t qkv_ld[3] = { qd, kvd, kvd };
        lnx_gemm_multi(gx, pool, T, s->h, D, 3, qkv_w, qkv_b, qkv_c, qkv_ld);
        rope_ctx rc = { rope, s->q, kb, c->heads, c->kv_heads, hd, p->pos0 };
        lnx_parallel_for(pool, T, rope_rows, &rc);
        lnx_attn_args a = { .Tq = T, .Tk = p->pos0 + T, .H = c->heads, .KV = c->kv_heads, .hd = hd,
                            .q = s->q, .q_stride = qd, .k = kb, .v = vb, .kv_stride = kvd,
                            .k_past = kc, .v_past = vc, .past_dtype = kv->dtype, .past_stride = kvd,
                            .past = rounded ? p->pos0 : p->pos0 + T,
                            .out = s->att, .out_stride = qd, .q_pos0 = p->pos0, .causal = 1,
                            .window = c->sliding_window, .scale = scale, .gemm = gx };
        LNX_TRY(lnx_attention(pool, &a, &s->attn));
        if (rounded) {
            store_ctx sc = { s->k, s->v, kc + (size_t)p->pos0 * rb, vc + (size_t)p->pos0 * rb, kvd, kv->dtype, rb };
            lnx_parallel_for(pool, T, store_rows, &sc);
        }
        lnx_gemm_x(gx, pool, T, s->att, qd, &L->o, L->o_b, x, D, 1);
        lnx_rmsnorm(pool, x, T, D, L->post_norm, c->rms_eps, s->h);
        const lnx_wmat *gu_w[2] = { &L->gate, &L->up };
        const float *gu_b[2] = { L->gate_b, L->up_b };
        float *gu_c[2] = { s->gate, s->up };
        const int64_t gu_ld[2] = { I, I };
        lnx_gemm_multi(gx, pool, T, s->h, D, 2, gu_w, gu_b, gu_c, gu_ld);
        lnx_swiglu(pool, s->gate, s->up, T * I);
        lnx_gemm_x(gx, pool, T, s->up, I, &L->down, L->down_b, x, D, 1);
        if (p->hidden_states && l + 1 < c->layers)
            memcpy(p->hidden_states + (size_t)(l + 1) * plane, x, sizeof(float) * plane);
    }
    if (p->hidden_states) {
        lnx_rmsnorm(pool, x, T, D, m->norm, c->rms_eps, s->h);
        memcpy(p->hidden_states + (size_t)c->layers * plane, s->h, sizeof(float) * plane);
    }
    if (p->logits_rows > 0) {
        lnx_rmsnorm(pool, x + p->logits_from * D, p->logits_rows, D, m->norm, c->rms_eps, s->h);
        lnx_gemm_x(gx, pool, p->logits_rows, s->h, D, &m->lm_head, NULL, p->logits, c->vocab, 0);
    }
    return LNX_OK;
}
