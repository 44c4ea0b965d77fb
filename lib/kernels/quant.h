/* Products of quantized weights (LNX_DT_Q8 / LNX_DT_Q4, base/quant.h) with float32 activations:
 * the activations are quantized per block of 32 on the fly (int8, a float scale per block), the
 * products run as int8 dot products per block and are scaled and summed in float32.
 *
 * Variants, chosen at run time (LLAVANEXT_CPU_MASK honoured): AMX-INT8 (the GEMM on tiles, its
 * GEMV the AVX-512 VNNI one), AVX-512 VNNI (vpdpbusd), AVX-VNNI (the same in its VEX form), AVX2
 * (vpmaddubsw + vpmaddwd), and the scalar oracle every one of them is tested against. */
#ifndef LNX_KERNELS_QUANT_H
#define LNX_KERNELS_QUANT_H

#include <stdint.h>

#include "../base/dtype.h"
#include "../base/parallel.h"
#include "../base/quant.h"

typedef enum lnx_qisa {
    LNX_QISA_SCALAR = 0,
    LNX_QISA_AVX2 = 1,
    LNX_QISA_AVX512VNNI = 2,
    LNX_QISA_AVXVNNI = 3,
    LNX_QISA_AMX = 4,
    LNX_QISA_COUNT
} lnx_qisa;

/* Name of a variant ("scalar", "avx2", "avx512vnni", "avxvnni", "amx"). */
const char *lnx_qisa_name(lnx_qisa isa);
/* Non-zero when this CPU (after LLAVANEXT_CPU_MASK) can run the variant; otherwise *why says why. */
int lnx_qisa_runnable(lnx_qisa isa, const char **why);
/* The variant the products use: the best runnable one. */
lnx_qisa lnx_qisa_best(void);

/* One row of K (a multiple of 32) activations quantized: q[K] int8, and per block b of 32,
 * d[b] = the scale (x ~ d q) and s[b] = d * sum(q) (the Q4 minimums' term). */
void lnx_quantize_acts(const float *x, int64_t K, int8_t *q, float *d, float *s);

/* out[i] = q[i] for i < n (n a multiple of 32): activations for the int16 panels. */
void lnx_widen_i8(const int8_t *q, int64_t n, int16_t *out);

/* q (K values) regrouped for the AVX-512 VNNI Q4 GEMV, once for all weight rows: per group of
 * four blocks (128 values), the four blocks' first 16 values, then their last 16 (the low and high
 * nibbles' partners); a last group of fewer than four blocks is left out. */
void lnx_q4_arrange_acts(const int8_t *q, int64_t K, int8_t *qn);

/* A tile: up to 4 weight rows (each a stored row of K values) against up to 4 quantized
 * activation rows. Unused slots repeat a used row (their results are ignored). */
typedef struct lnx_qtile {
    const uint8_t *w[4];
    const int8_t *q[4];
    const float *d[4], *s[4]; /* s: readable for 8 values past the row's last block */
    const int8_t *qn[4];      /* Q4 decode: q arranged by lnx_q4_arrange_acts, or NULL */
    int64_t K;
    int pf; /* one activation row: prefetch the weight rows this far ahead (lnx_cpu_stream_prefetch) */
    float out[4][4]; /* out[m][r] = activation row m . weight row r */
} lnx_qtile;

/* The GEMM (prefill, vision) works on panels of 16 weight rows repacked so that one 512-bit
 * vector (two 256-bit ones on AVX2 and AVX-VNNI) holds, for one block of 32 values, four
 * consecutive values of each of the 16 rows (lane r = row r): a broadcast of four activation
 * bytes then feeds 16 rows' dot products in one vpdpbusd, with no horizontal sums. Values are
 * unsigned bytes: Q8's int8 plus 128 (the kernel subtracts 128 x the activation block's integer
 * sum), Q4's 4-bit values as they are.
 *   v  [nb][8][16][4]  values: block b, group k of four, row r, value 4k + i
 *   sc [nb][16]        the row's block scale: Q8 d; Q4 d x sc[j]
 *   mn [nb][16]        Q4 only: the block's minimum dmin x mn[j] (times the activations' sum) */
enum { LNX_QPANEL_ROWS = 16, LNX_QPANEL_ACTS = 8 };
/* AVX2 has no u8 x s8 product that keeps Q8 exact at its full rate (vpmaddubsw sums pairs into
 * int16, which |w| up to 127 against +128-offset bytes would saturate, and the sign trick costs a
 * third instruction on the same two pipes): its Q8 panel holds the values sign-extended to int16,
 * two consecutive values of each row per 32-bit lane, for vpmaddwd:
 *   v  [nb][16][16][2] int16  block b, pair p, row r, value 2p + i
 *   sc [nb][16]              as above
 * (Q4 panels are the same bytes on every variant.) The AMX panels keep Q8's values signed (the
 * bytes as stored, for TDPBSSD), else they are the AVX-512 VNNI ones. */
/* Non-zero when the variant's panels for dt take the activations as int16 (q16). */
int lnx_qpanel_wide(int variant, lnx_dtype dt);
/* Bytes of a panel of K values for the variant (LNX_QISA_*) and format (v, sc and mn, 64-byte
 * aligned parts). */
size_t lnx_qpanel_bytes(int variant, lnx_dtype dt, int64_t K);
/* Packs rows[0 .. nrows) (nrows <= 16; the rest of the panel zero) into the panel at buf. */
void lnx_qpanel_pack(int variant, lnx_dtype dt, const uint8_t *const *rows, int nrows, int64_t K, void *buf);
/* One panel against 8 quantized activation rows (q, d, s as lnx_quantize_acts gives them, si
 * the blocks' integer sums): out[m][r] = activation row m . panel row r. */
typedef struct lnx_qpanel_run {
    const void *panel;
    int64_t K;
    const int8_t *q[LNX_QPANEL_ACTS];
    const float *d[LNX_QPANEL_ACTS], *s[LNX_QPANEL_ACTS];
    const int32_t *si[LNX_QPANEL_ACTS];
    const int16_t *q16[LNX_QPANEL_ACTS]; /* the int16 Q8 panel's activations: q widened */
    float out[LNX_QPANEL_ACTS][LNX_QPANEL_ROWS];
} lnx_qpanel_run;
/* The panel kernels: AVX-512 VNNI, AVX-VNNI and AVX2 (their 256-bit forms take the panel's 16
 * rows as two halves), and LNX_QPANEL_VNNI256, the AVX-VNNI source compiled for AVX-512 VNNI (so
 * that a CPU without AVX-VNNI tests its logic). Returns 0 when the variant has no panel kernel. */
enum { LNX_QPANEL_VNNI256 = LNX_QISA_COUNT };
int lnx_qpanel_kernel(int variant, lnx_dtype dt, lnx_qpanel_run *r);

/* AMX-INT8: one 32 x 32 block of outputs, out[m][n] = activation row m . row n of the panel
 * pair (n < 16: p0, else p1; AMX panels), for the 32 activation rows at q (row stride K bytes,
 * rows past the matrix zero) with their scales d and minimum terms s (row stride nbp). */
void lnx_qamx_block(lnx_dtype dt, const int8_t *q, int64_t K, const float *d, const float *s, int64_t nbp,
                    const void *p0, const void *p1, float out[32][32]);

/* Runs a tile on the given variant: nm = 1 (only activation row 0) or 4. */
void lnx_qtile_run(lnx_qisa isa, lnx_dtype dt, lnx_qtile *t, int nm);

/* C[m, n] = sum_k A[m, k] W[n, k] (+ bias[n]), added to C with accumulate != 0, for a quantized W
 * (lnx_gemm's contract). Threaded over the pool's workers by output rows. */
void lnx_qgemm(lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W, const float *bias,
               float *C, int64_t ldc, int accumulate);
/* The same on a given variant (for tests and the bench). */
void lnx_qgemm_isa(lnx_qisa isa, lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
                   const float *bias, float *C, int64_t ldc, int accumulate);

/* Row r of a weight in any dtype as float32 (out[W->cols]). */
void lnx_wmat_row(const lnx_wmat *W, int64_t r, float *out);

#endif
