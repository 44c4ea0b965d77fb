/* Storage types of weight tensors. */
#ifndef LNX_KERNELS_DTYPE_H
#define LNX_KERNELS_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum lnx_dtype {
    LNX_DT_F32 = 0,
    LNX_DT_F16 = 1,
    LNX_DT_BF16 = 2,
} lnx_dtype;

static inline size_t lnx_dtype_size(lnx_dtype dt)
{
    return dt == LNX_DT_F32 ? 4 : 2;
}

/* Widens n elements of a weight stored as `dt` into float32. */
void lnx_widen(lnx_dtype dt, const void *src, float *dst, size_t n);

/* A row-major weight matrix [rows x cols] in its stored dtype (PyTorch Linear layout:
 * rows = output features, cols = input features). */
typedef struct lnx_wmat {
    const void *data;
    lnx_dtype dtype;
    int64_t rows;
    int64_t cols;
} lnx_wmat;

#endif
