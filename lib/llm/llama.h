/* The Llama/Mistral decoder: weights, KV cache and the forward pass over a block of positions. */
#ifndef LNX_LLM_LLAMA_H
#define LNX_LLM_LLAMA_H

#include <stdint.h>

#include "../base/dtype.h"
#include "../base/parallel.h"
#include "../io/config.h"
#include "../io/weights.h"
#include "../kernels/ops.h"

typedef struct lnx_llama_layer {
    const float *in_norm, *post_norm;
    lnx_wmat q, k, v, o, gate, up, down;
    const float *q_b, *k_b, *v_b, *o_b;          /* attention_bias */
    const float *gate_b, *up_b, *down_b;         /* mlp_bias */
} lnx_llama_layer;

typedef struct lnx_llama {
    lnx_text_cfg cfg;
    lnx_wmat embed;   /* [vocab, hidden] */
    lnx_wmat lm_head; /* [vocab, hidden] (the embedding when tied) */
    const float *norm;
    lnx_llama_layer *layers;
    const struct lnx_gemm_ctx *gemm; /* GEMM backend (NULL = float32); set by the owner after binding */
} lnx_llama;

/* body_prefix: "language_model.model." or "model.language_model."; head: the lm_head tensor
 * name, or NULL to tie it to the embedding. */
lnx_status lnx_llama_bind(lnx_llama *m, const lnx_text_cfg *cfg, lnx_wstore *ws, const char *body_prefix,
                          const char *head_name);
void lnx_llama_unbind(lnx_llama *m);

/* Embedding rows for token ids (ids must be < vocab). */
void lnx_llama_embed(const lnx_llama *m, const int32_t *ids, int64_t n, float *out);

/* Key/value cache: per layer, rows of kv_heads * head_dim values per position, float32 (the
 * reference-exact default), IEEE half (half the memory) or Q8 blocks of 32 (base/quant.h: 34
 * bytes per 32 values, about a quarter of float32). The block being evaluated attends to its own
 * keys in float32, so a prompt evaluated in one block is unaffected, but later steps read rounded
 * keys and values (docs/quantization.md gives what each does to the fixtures' logits). */
typedef struct lnx_kv {
    int32_t layers, kv_dim;
    int64_t capacity;
    lnx_dtype dtype;  /* LNX_DT_F32, LNX_DT_F16 or LNX_DT_Q8 */
    size_t row_bytes; /* bytes of one position's keys (or values) in one layer */
    void *k, *v;      /* [layers][capacity][row_bytes] */
} lnx_kv;
/* A float32 cache. */
lnx_status lnx_kv_init(lnx_kv *kv, int32_t layers, int32_t kv_dim, int64_t capacity);
lnx_status lnx_kv_init_dtype(lnx_kv *kv, int32_t layers, int32_t kv_dim, int64_t capacity, lnx_dtype dtype);
void lnx_kv_free(lnx_kv *kv);
/* Bytes of one position's keys (or values) in one layer. */
size_t lnx_kv_row_bytes(const lnx_kv *kv);
/* The cache type that goes with the model's compute precision and weights: IEEE half for bf16
 * (measured with it) and for 8-bit decoder weights on CPUs with F16C, Q8 for 4-bit decoder
 * weights (lnx_llama_kv_fit), float32 for the reference-exact f32 path. */
lnx_dtype lnx_llama_kv_dtype(const lnx_llama *m);
/* The cache type a request for `want` gets: Q8 needs head_dim a multiple of 16 (each head's
 * slice whole blocks or half of one) and rows of a multiple of 32 values, else the next wider
 * type, IEEE half. */
lnx_dtype lnx_llama_kv_fit(const lnx_llama *m, lnx_dtype want);

/* Reusable activations for blocks of up to `rows` positions, and the attention scratch. */
typedef struct lnx_llama_scratch {
    int64_t rows;
    float *x, *h, *q, *k, *v, *att, *gate, *up;
    lnx_attn_ws attn;
} lnx_llama_scratch;
lnx_status lnx_llama_scratch_reserve(lnx_llama_scratch *s, const lnx_text_cfg *cfg, int64_t rows);
void lnx_llama_scratch_free(lnx_llama_scratch *s);

typedef struct lnx_llama_pass {
    const float *input;     /* [T, hidden] input embeddings */
    int64_t T;
    int64_t pos0;           /* position of the first row = number of cached positions */
    int64_t logits_from;    /* first row whose logits are wanted */
    int64_t logits_rows;    /* how many rows of logits (0 = none) */
    float *logits;          /* [logits_rows, vocab] */
    float *hidden_states;   /* optional [layers + 1, T, hidden] as transformers reports them */
} lnx_llama_pass;

/* Runs T positions through every layer, appending their keys and values to `kv` (which must have
 * room: pos0 + T <= capacity). */
lnx_status lnx_llama_forward(const lnx_llama *m, const lnx_rope *rope, lnx_kv *kv, lnx_llama_scratch *s,
                             lnx_pool *pool, const lnx_llama_pass *p);

#endif
