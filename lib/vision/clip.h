/* The CLIP ViT vision tower, run up to the configured feature layer; also SigLIP's (cfg.siglip:
 * patch embedding with bias, no CLS token, no pre-LayerNorm, otherwise the same encoder). */
#ifndef LNX_VISION_CLIP_H
#define LNX_VISION_CLIP_H

#include <stdint.h>

#include "../base/dtype.h"
#include "../base/parallel.h"
#include "../io/config.h"
#include "../io/weights.h"
#include "../kernels/ops.h"

typedef struct lnx_clip_layer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    lnx_wmat q, k, v, o, fc1, fc2;
    const float *q_b, *k_b, *v_b, *o_b, *fc1_b, *fc2_b;
} lnx_clip_layer;

typedef struct lnx_clip {
    lnx_vision_cfg cfg;
    int32_t grid;       /* patches per side */
    int32_t tokens;     /* grid^2 + 1 (CLIP), grid^2 (SigLIP) */
    int32_t run_layers; /* layers evaluated to reach the feature layer */
    int32_t select;     /* LNX_SELECT_* */
    lnx_wmat patch;     /* [D, 3*P*P] */
    const float *class_emb, *pos_emb, *pre_ln_w, *pre_ln_b; /* class and pre-LN: CLIP only */
    const float *patch_b;                                   /* SigLIP only */
    lnx_clip_layer *layers;
    const struct lnx_gemm_ctx *gemm; /* GEMM backend (NULL = float32); set by the owner after binding */
} lnx_clip;

/* Binds the tower's tensors under `prefix` ("vision_tower.vision_model." or the newer layout). */
lnx_status lnx_clip_bind(lnx_clip *m, const lnx_model_cfg *cfg, lnx_wstore *ws, const char *prefix);
void lnx_clip_unbind(lnx_clip *m);

/* Tokens per frame in the output: grid^2 (default strategy) or grid^2 + 1 (full). */
int32_t lnx_clip_out_tokens(const lnx_clip *m);

/* Progress hook: return non-zero to abort. `done` counts layers over `total`. */
typedef int32_t (*lnx_clip_progress)(int64_t done, int64_t total, void *user);

/* The tower's activations, shared by the calls that pass it (an encode call's batches; grown on
 * demand): fresh buffers for every batch cost a page fault per page written, measured ~10% of an
 * 8-frame bf16 batch on AMX. Zeroed to start; one call at a time. */
typedef struct lnx_clip_ws {
    lnx_buf act;
    lnx_attn_ws attn;
} lnx_clip_ws;
void lnx_clip_ws_free(lnx_clip_ws *ws);

/* pixels [F, 3, S, S] -> out [F, out_tokens, D] (the hidden state of the feature layer, CLS
 * dropped for the default strategy). Optionally also every hidden state [run_layers+1, F, T, D]
 * into `hidden_states` (NULL to skip). Frames are batched into the same GEMMs. ws: activations
 * kept for the next call (NULL: allocated and freed here). */
lnx_status lnx_clip_forward(const lnx_clip *m, lnx_pool *pool, const float *pixels, int32_t frames, float *out,
                            float *hidden_states, lnx_clip_progress progress, void *user, lnx_clip_ws *ws);

#endif
