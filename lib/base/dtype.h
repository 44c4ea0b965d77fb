/* Storage types of weight tensors. */
#ifndef LNX_KERNELS_DTYPE_H
#define LNX_KERNELS_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum lnx_dtype {
    LNX_DT_F32 = 0,
    LNX_DT_F16 = 1,
    LNX_DT_BF16 = 2,
    LNX_DT_Q8 = 3, /* blocks of 32 int8 with a half scale (base/quant.h; docs/quantization.md) */
    LNX_DT_Q4 = 4, /* super-blocks of 8 x 32 4-bit values with quantized scales and minimums */
} lnx_dtype;

/* Bytes per element of the float dtypes (the quantized ones have no per-element size: see
 * lnx_row_bytes). */
static inline size_t lnx_dtype_size(lnx_dtype dt)
{
    return dt == LNX_DT_F32 ? 4 : 2;
}

static inline int lnx_dtype_is_quant(lnx_dtype dt)
{
    return dt == LNX_DT_Q8 || dt == LNX_DT_Q4;
}

/* Bytes of one row of `cols` values (for Q8/Q4, cols must be a multiple of 32). */
static inline size_t lnx_row_bytes(lnx_dtype dt, int64_t cols)
{
    if (dt == LNX_DT_Q8)
        return (size_t)(cols / 32) * 34;
    if (dt == LNX_DT_Q4) {
        int64_t sub = cols / 32, rest = sub % 8;
        return (size_t)(sub / 8) * 144 + (rest ? 16 + 16 * (size_t)rest : 0);
    }
    return (size_t)cols * lnx_dtype_size(dt);
}

/* Widens n elements of a weight stored as `dt` into float32 (for Q8/Q4: one whole row of n). */
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
