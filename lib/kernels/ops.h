/* Elementwise and row kernels: norms, activations, softmax, rotary embeddings, attention.
 * All float32, threaded over rows with the caller's pool (NULL = serial). */
#ifndef LNX_KERNELS_OPS_H
#define LNX_KERNELS_OPS_H

#include <stdint.h>

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

/* Scaled dot-product attention over one sequence, computed in blocks of queries (no Tq x Tk
 * matrix): out[i, h] = softmax_j(q[i,h] . k[j,g] * scale) v[j,g] with g = h / (H / KV),
 * j limited to j <= q_pos0 + i when causal and to j > q_pos0 + i - window when window > 0. */
typedef struct lnx_attn_args {
    int64_t Tq, Tk;
    int32_t H, KV, hd;
    const float *q;
    int64_t q_stride;
    const float *k, *v;
    int64_t kv_stride;
    float *out;
    int64_t out_stride;
    int64_t q_pos0;
    int32_t causal;
    int64_t window;
    float scale;
} lnx_attn_args;
lnx_status lnx_attention(lnx_pool *pool, const lnx_attn_args *a);

#endif
