/* Weight formats chosen at load time (quantize-on-load, or bf16) and quantized checkpoints
 * written to disk. Which tensors change, by kind (docs/quantization.md):
 *
 *   mode   decoder linears   LM head   token embeddings   vision tower linears   projector
 *   bf16   bf16              bf16      bf16               bf16                   bf16
 *   q8     q8                q8        q8                 q8                     q8
 *   q4     q4                q8        q4                 q8                     q8
 *
 * Norms, biases, position/class embeddings and the patch convolution stay as stored. A matrix
 * whose rows do not fit a format falls back to the next wider one (lnx_quant_choose: q4 -> q8 ->
 * the stored 16-bit type, bf16 for a float32 checkpoint). A tensor stored quantized already (a
 * directory written by lnx_quantize_checkpoint) is used as it is. */
#ifndef LNX_IO_QUANTIZE_H
#define LNX_IO_QUANTIZE_H

#include <stdint.h>

#include "../base/dtype.h"
#include "../base/parallel.h"
#include "safetensors.h"
#include "weights.h"

/* The public llavanext_weights numbering. */
enum { LNX_WEIGHTS_STORED = 0, LNX_WEIGHTS_BF16 = 1, LNX_WEIGHTS_Q8 = 2, LNX_WEIGHTS_Q4 = 3 };

/* Kinds of tensors, by name (either Hugging Face layout). */
typedef enum lnx_wkind {
    LNX_WKIND_OTHER = 0,
    LNX_WKIND_DECODER,
    LNX_WKIND_HEAD,
    LNX_WKIND_EMBED,
    LNX_WKIND_VISION,
    LNX_WKIND_PROJECTOR,
} lnx_wkind;

lnx_wkind lnx_weight_kind(const char *name, int32_t ndim);

/* The dtype tensor t gets in `mode`: its own (no change) or LNX_DT_BF16 / Q8 / Q4. */
lnx_dtype lnx_weight_target(const lnx_st_tensor *t, int32_t mode);

/* "as-stored", "bf16", "q8", "q4" (NULL for an unknown mode). */
const char *lnx_weights_name(int32_t mode);

/* Progress of a conversion: `done` of `total` tensors; non-zero aborts (LNX_E_ABORTED). */
typedef int (*lnx_convert_progress)(int64_t done, int64_t total, void *user_data);

/* Converts every tensor of the store's checkpoint that `mode` changes, rows split over the pool,
 * and keeps the results in the store: later lnx_wstore_matrix calls return them. With
 * `release_mapped` (the checkpoint is memory-mapped, never a buffer of ours) the pages of each
 * source tensor are dropped from the process once converted (madvise DONTNEED: they stay in the
 * page cache, and a later read maps them again), so that the resident size ends near the
 * converted size instead of source + converted. */
lnx_status lnx_wstore_convert(lnx_wstore *ws, int32_t mode, lnx_pool *pool, int release_mapped,
                              lnx_convert_progress progress, void *user_data);

/* Writes the checkpoint `src` to one safetensors file at `path` with every tensor `mode` changes
 * converted (quantized ones as U8 [rows, row bytes]), the others copied, tensor by tensor (one
 * converted tensor in memory at a time). */
lnx_status lnx_quantize_checkpoint(const lnx_st *src, int32_t mode, const char *path, lnx_pool *pool,
                                   lnx_convert_progress progress, void *user_data);

#endif
