/* Elementwise and row kernels: norms, activations, softmax, rotary embeddings, attention.
 * All float32, threaded over rows with the caller's pool (NULL = serial). */
#ifndef LNX_KERNELS_OPS_H
#define LNX_KERNELS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "../base/alloc.h"
#include "../base/dtype.h"
#include "../base/parallel.h"
#include "../io/config.h"

/* out[r] = (x[r] - mean) / sqrt(var + eps) * w + b over rows of `dim` (out may equal x). */
void lnx_layernorm(lnx_pool *pool, const float *x, int64_t rows, int64_t dim, const float *w, const float *b,
                   float eps, float *out);
/* out[r] = w * x[r] / sqrt(mean(x[r]^2) + eps) (out may equal x). */
void lnx_rmsnorm(lnx_pool *pool, const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *out);
/* In-place activation over n values. */
void lnx_activate(lnx_pool *pool, lnx_act act, float *x, int64_t n);
/* x[i] = silu(gate[i]) * x[i] over rows: gate and x have row strides (SwiGLU). */
void lnx_swiglu(lnx_pool *pool, const float *gate, float *x, int64_t n);
/* In-place softmax of n values; returns log(sum(exp(x - max))) + max (the logsumexp). */
double lnx_softmax(float *x, int64_t n);
float lnx_scalar_act(lnx_act act, float x);

/* Rotary embedding with the rotate-half convention and linear position scaling. */
typedef struct lnx_rope {
    int32_t head_dim;
    float *inv_freq; /* head_dim/2 entries, already divided by the scaling factor */
} lnx_rope;
lnx_status lnx_rope_init(lnx_rope *r, int32_t head_dim, double theta, double factor);
void lnx_rope_free(lnx_rope *r);
/* Rotates `heads` vectors of head_dim at x (row of heads * head_dim) for position pos. */
void lnx_rope_apply(const lnx_rope *r, float *x, int32_t heads, int64_t pos);
/* The same for two rows of one position (queries and keys), sharing the angles; y may be NULL. */
void lnx_rope_apply2(const lnx_rope *r, float *x, int32_t heads, float *y, int32_t heads_y, int64_t pos);

/*
 * Scaled dot-product attention over one sequence: out[i, h] = softmax_j(q[i,h] . k[j,g] * scale)
 * v[j,g] with g = h / (H / KV), j limited to j <= q_pos0 + i when causal and to
 * j > q_pos0 + i - window when window > 0.
 *
 * Keys and values 0 .. past-1 are rows of past_dtype (LNX_DT_F32, LNX_DT_F16, or LNX_DT_Q8 blocks
 * with hd a multiple of 16 and past_stride of 32) at k_past/v_past (row stride past_stride elements, i.e.
 * lnx_row_bytes(past_dtype, past_stride) bytes; the KV cache), keys past .. Tk-1 are float32 rows at k/v (row
 * stride kv_stride; the block being evaluated, when it is not in the cache yet). Prompts and frames go through query tiles of two cblas_sgemm calls each (no
 * Tq x Tk matrix); a few queries (decode) through a per-head streaming kernel.
 */
typedef struct lnx_attn_args {
    int64_t Tq, Tk;
    int32_t H, KV, hd;
    const float *q;
    int64_t q_stride;
    const float *k, *v;
    int64_t kv_stride;
    const void *k_past, *v_past;
    lnx_dtype past_dtype;
    int64_t past_stride;
    int64_t past;
    float *out;
    int64_t out_stride;
    int64_t q_pos0;
    int32_t causal;
    int64_t window;
    float scale;
    const struct lnx_gemm_ctx *gemm; /* a bf16 context runs prompts and frames in bf16 (NULL = f32) */
} lnx_attn_args;

/* Reusable attention scratch (grows, never shrinks; lnx_buf_free releases it). */
typedef lnx_buf lnx_attn_ws;

/* ws may be NULL (scratch allocated for the call). */
lnx_status lnx_attention(lnx_pool *pool, const lnx_attn_args *a, lnx_attn_ws *ws);

/* ---- scalar oracles of the kernels above (tests) ---- */
void lnx_layernorm_ref(const float *x, int64_t rows, int64_t dim, const float *w, const float *b, float eps,
                       float *out);
void lnx_rmsnorm_ref(const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *out);
void lnx_activate_ref(lnx_act act, float *x, int64_t n);
void lnx_swiglu_ref(const float *gate, float *x, int64_t n);
double lnx_softmax_ref(float *x, int64_t n);
lnx_status lnx_attention_ref(const lnx_attn_args *a);

#endif
