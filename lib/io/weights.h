/* Binding named checkpoint tensors to the shapes a model expects: matrices stay in their stored
 * dtype (zero-copy views of the mapping), small vectors (norm weights, biases, embeddings of a
 * few rows) are widened once to float32 and owned by the store. */
#ifndef LNX_IO_WEIGHTS_H
#define LNX_IO_WEIGHTS_H

#include <stdint.h>

#include "../base/dtype.h"
#include "safetensors.h"

typedef struct lnx_wstore lnx_wstore;

lnx_status lnx_wstore_create(lnx_wstore **out, const lnx_st *st);
void lnx_wstore_free(lnx_wstore *ws);
const lnx_st *lnx_wstore_source(const lnx_wstore *ws);

/* Finds `name` and checks its dtype (F32/F16/BF16) and that its shape is exactly dims[0..ndim).
 * Errors (LNX_E_FORMAT) name the tensor, its file, the shape found and the shape expected. */
lnx_status lnx_wstore_tensor(lnx_wstore *ws, const char *name, int32_t ndim, const int64_t *dims,
                             const lnx_st_tensor **out);
/* A [rows x cols] matrix view: the store's converted copy of the tensor (lnx_wstore_adopt) if it
 * has one, else the tensor as stored: F32/F16/BF16 [rows, cols], or a quantized matrix written
 * by lnx_quantize_checkpoint (U8 [rows, lnx_row_bytes(Q8 or Q4, cols)], the format told by the
 * row size). */
lnx_status lnx_wstore_matrix(lnx_wstore *ws, const char *name, int64_t rows, int64_t cols, lnx_wmat *out);
lnx_status lnx_wstore_conv(lnx_wstore *ws, const char *name, int64_t out_ch, int64_t in_ch, int64_t kh, int64_t kw,
                           lnx_wmat *out);
/* A float32 copy of a tensor of n elements with the given shape (ndim 1 => [n]). */
lnx_status lnx_wstore_vector(lnx_wstore *ws, const char *name, int64_t n, const float **out);
lnx_status lnx_wstore_floats(lnx_wstore *ws, const char *name, int32_t ndim, const int64_t *dims, const float **out);
int lnx_wstore_has(const lnx_wstore *ws, const char *name);

/* Takes ownership of `data` (lnx_amalloc'ed): the [rows x cols] matrix `name` in `dtype`, which
 * lnx_wstore_matrix returns from now on instead of the stored tensor. */
lnx_status lnx_wstore_adopt(lnx_wstore *ws, const char *name, lnx_dtype dtype, int64_t rows, int64_t cols, void *data);
/* Bytes of the adopted matrices. */
uint64_t lnx_wstore_adopted_bytes(const lnx_wstore *ws);

/* Scans every float tensor for NaN or infinity; names the first bad tensor and element. */
lnx_status lnx_wstore_check_finite(const lnx_st *st);

#endif
