/* LLaVA-OneVision's token layout (transformers 4.47 LlavaOnevisionForConditionalGeneration):
 *  - video: each frame's projected g x g grid resized (bilinear, align_corners false, as
 *    torch.nn.functional.interpolate) to ceil(g / 2) per side, frames in order, then one
 *    image_newline after the whole video;
 *  - images: AnyRes as LLaVA-NeXT (unpad to the original aspect ratio), then, when the unpadded
 *    grid holds more than anyres_max tiles' worth of features (ratio > 1.1), a bilinear resize
 *    down to int(rows // ratio) x int(cols // ratio), then the newline column. */
#ifndef LNX_VISION_ONEVISION_H
#define LNX_VISION_ONEVISION_H

#include <stdint.h>

#include "../base/parallel.h"
#include "../base/status.h"

/* Side of a frame's grid after the resize: ceil(grid / stride) (stride 2 in the model). */
int32_t lnx_onevision_pool_side(int32_t grid, int32_t stride);

/* Bilinear resize of n channel-last grids [n, ih, iw, dim] -> [n, oh, ow, dim], as
 * torch.nn.functional.interpolate(mode="bilinear", align_corners=False) on [n, dim, ih, iw]. */
void lnx_bilinear_resize(lnx_pool *pool, const float *in, int32_t n, int32_t ih, int32_t iw, int32_t dim, int32_t oh,
                         int32_t ow, float *out);

/* The image feature grid after unpadding (rows x cols) and the anyres_max resize-down rule:
 * out = {rows', cols'} (unchanged when the ratio is at most 1.1 or max_tiles is 0). */
void lnx_onevision_grid(int32_t rows, int32_t cols, int32_t g, int32_t max_tiles, int32_t out[2]);

/* Number of packed embeddings of an image: g*g base + rows' * (cols' + newline). */
int64_t lnx_onevision_packed_tokens(int32_t img_h, int32_t img_w, int32_t grid_rows, int32_t grid_cols, int32_t g,
                                    int32_t max_tiles, int32_t with_newline);

/* proj [1 + rows*cols, g*g, dim] (base patch first) -> out [packed_tokens, dim]. */
lnx_status lnx_onevision_pack(lnx_pool *pool, const float *proj, int32_t img_h, int32_t img_w, int32_t grid_rows,
                              int32_t grid_cols, int32_t g, int32_t dim, int32_t max_tiles, const float *newline,
                              float *out);

#endif
