/* The quantized weight formats (docs/quantization.md has the byte layouts): scalar quantizing and
 * dequantizing of one row. Everything that computes with them lives in lib/kernels/quant*.c.
 *
 *  Q8: blocks of 32 values, each 34 bytes: an IEEE half scale d, then 32 int8 q; x = d q.
 *  Q4: super-blocks of 8 sub-blocks of 32 values, each 144 bytes: half d, half dmin, 8 six-bit
 *      sub-block scales (6 bytes), 8 six-bit sub-block minimums (6 bytes), then 16 bytes of 4-bit
 *      q per sub-block (byte i: value i in the low nibble, value i + 16 in the high one);
 *      x = d sc[j] q - dmin mn[j]. A row whose 32-blocks do not fill its last super-block ends
 *      with a short one: the same 16-byte head, then 16 bytes for each sub-block it has.
 * A row must hold a multiple of 32 values (lnx_quant_fits). */
#ifndef LNX_BASE_QUANT_H
#define LNX_BASE_QUANT_H

#include <stdint.h>

#include "dtype.h"

enum {
    LNX_QBLOCK = 32,         /* values per Q8 block and per Q4 sub-block */
    LNX_Q8_BYTES = 34,       /* bytes per Q8 block */
    LNX_Q4_SUB = 8,          /* sub-blocks per Q4 super-block */
    LNX_Q4_HEAD = 16,        /* bytes of a Q4 super-block before its 4-bit values */
    LNX_Q4_BYTES = 144,      /* bytes per full Q4 super-block */
};

/* Non-zero when a row of `cols` values can be stored as `dt` (a multiple of 32 for Q8/Q4). */
int lnx_quant_fits(lnx_dtype dt, int64_t cols);

/* The format a [rows x cols] weight wanted as `want` is stored in: `want` when it fits, else the
 * next wider one that does (Q4 -> Q8 -> the 16-bit `fallback`). */
lnx_dtype lnx_quant_choose(lnx_dtype want, int64_t cols, lnx_dtype fallback);

/* One row of `cols` float32 values to `dt` (Q8 or Q4) at out (lnx_row_bytes(dt, cols) bytes). */
void lnx_quantize_row(lnx_dtype dt, const float *x, int64_t cols, void *out);
/* One stored row back to float32. */
void lnx_dequantize_row(lnx_dtype dt, const void *row, int64_t cols, float *out);

/* The 6-bit scales (which = 0) or minimums (which = 1) of a Q4 super-block, as integers 0..63. */
void lnx_q4_unpack_scales(const uint8_t *super, int which, uint8_t out[8]);

/* The head of the Q4 super-block at p, in a row with nb_left 32-value blocks still to come: the
 * number of sub-blocks it holds (8, or fewer for a row's short last one), and each one's scale
 * d sc[j] and minimum dmin mn[j] as float32 (x = scale[j] q - min[j]). */
int lnx_q4_head(const uint8_t *p, int64_t nb_left, float scale[8], float min[8]);

/* The half-precision value stored at p (a block's scale; p need not be aligned). */
float lnx_q_half(const uint8_t *p);

#endif
