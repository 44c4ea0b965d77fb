/* From vision features to LLM embeddings: spatial pooling of each frame's grid, the projector
 * MLP, and AnyRes packing (unpadding + newline column) for images. */
#ifndef LNX_VISION_POOLER_H
#define LNX_VISION_POOLER_H

#include <stdint.h>

#include "../base/dtype.h"
#include "../base/parallel.h"
#include "../io/config.h"
#include "../io/weights.h"

typedef struct lnx_projector {
    int32_t in_dim, out_dim;
    lnx_act act;
    lnx_wmat l1, l2;
    const float *b1, *b2; /* NULL when the checkpoint has no projector bias */
    const float *newline; /* [out_dim] or NULL */
    const struct lnx_gemm_ctx *gemm; /* GEMM backend (NULL = float32); set by the owner after binding */
} lnx_projector;

/* Binds multi_modal_projector.* and image_newline under `prefix` ("" or "model."). */
lnx_status lnx_projector_bind(lnx_projector *p, const lnx_model_cfg *cfg, lnx_wstore *ws, const char *prefix);

/* Output grid side of pooling a g x g grid with kernel = stride = s (floor: a remainder is dropped,
 * as torch's AvgPool2d/MaxPool2d do). */
int32_t lnx_pool_out_side(int32_t grid, int32_t stride);

/* in [F, g*g, D] -> out [F, o*o, D], o = lnx_pool_out_side(g, stride); mode LNX_POOL_*. */
void lnx_pool_frames(lnx_pool *pool, const float *in, int32_t frames, int32_t grid, int32_t dim, int32_t stride,
                     int32_t mode, float *out);

/* in [N, in_dim] -> out [N, out_dim] = l2(act(l1(in))). */
lnx_status lnx_project(const lnx_projector *p, lnx_pool *pool, const float *in, int64_t n, float *out);

/* Rows and columns of the unpadded AnyRes feature grid, as the model computes them from the
 * original image size (h, w) and the padded grid (rows*g) x (cols*g). */
void lnx_anyres_unpadded(int32_t img_h, int32_t img_w, int32_t grid_rows, int32_t grid_cols, int32_t g,
                         int32_t *out_rows, int32_t *out_cols, int32_t *out_row0, int32_t *out_col0);
/* Number of packed embeddings: g*g (base) + rows*(cols+1) (with newline) or rows*cols. */
int64_t lnx_anyres_packed_tokens(int32_t img_h, int32_t img_w, int32_t grid_rows, int32_t grid_cols, int32_t g,
                                 int32_t with_newline);
/* proj [1 + rows*cols, g*g, D] (base patch first) -> out [packed_tokens, D]. */
void lnx_anyres_pack(const float *proj, int32_t img_h, int32_t img_w, int32_t grid_rows, int32_t grid_cols, int32_t g,
                     int32_t dim, const float *newline, float *out);

#endif
