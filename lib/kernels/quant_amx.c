/* The quantized GEMM on AMX-INT8 tiles (Sapphire Rapids and later).
 *
 * A 16-row panel's block of 32 values (quant.h: v [8][16][4], four consecutive values of each row
 * per 32-bit lane) is exactly an AMX B tile of 8 rows x 64 bytes, and 16 activation rows' block
 * (32 bytes at a row stride of K) an A tile of 16 rows x 32 bytes: one TDPBSSD (Q8: signed x
 * signed, so the AMX panels keep Q8's bytes as they are) or TDPBSUD (Q4: signed activations x
 * unsigned 4-bit values) gives the 16 x 16 int32 dot products of one block. Every block has its
 * own scales, so the int32 tile cannot run on across blocks: each block's four tiles (32 x 32
 * outputs) are stored and scaled into float32 accumulators, the oracle's sum:
 *   out[m][n] += C_b[m][n] x (d_w[n][b] x d_a[m][b])   (Q4: less mn[n][b] x s[m][b])
 * The scaling is AVX-512 work (three operations per 16 outputs per block, four for Q4) and is
 * what bounds the kernel; the tiles' own work runs beside it. */
#include <immintrin.h>
#include <string.h>

#include "amx.h"
#include "quant.h"

#define T_AMXI __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl")))
#define INLINE static inline __attribute__((always_inline))

/* Tiles 0-3: the int32 outputs (rows 0-15 x panel 0, rows 0-15 x panel 1, rows 16-31 x panel 0,
 * rows 16-31 x panel 1); 4, 5: the activation rows 0-15 and 16-31 of one block; 6, 7: the two
 * panels' block. */
static void configure(void)
{
    static const uint8_t rows[8] = { 16, 16, 16, 16, 16, 16, 8, 8 };
    static const uint16_t colsb[8] = { 64, 64, 64, 64, 32, 32, 64, 64 };
    lnx_amx_configure(rows, colsb);
}

/* acc[m][0..16) and acc[m][16..32) += the block's int32 outputs scaled (and, Q4, less the
 * minimums' term), 16 activation rows (h = 0: rows 0-15, h = 1: rows 16-31). */
T_AMXI INLINE void scale_rows(int q4, int h, const int32_t c[4][16][16], const float *d, const float *s, int64_t nbp,
                              __m512 w0, __m512 w1, __m512 n0, __m512 n1, float acc[32][32])
{
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) {
        const int m = 16 * h + r;
        const __m512 da = _mm512_set1_ps(d[m * nbp]);
        __m512 a0 = _mm512_loadu_ps(acc[m]), a1 = _mm512_loadu_ps(acc[m] + 16);
        a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[2 * h][r])), _mm512_mul_ps(w0, da), a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[2 * h + 1][r])), _mm512_mul_ps(w1, da), a1);
        if (q4) {
            const __m512 sa = _mm512_set1_ps(s[m * nbp]);
            a0 = _mm512_fnmadd_ps(n0, sa, a0);
            a1 = _mm512_fnmadd_ps(n1, sa, a1);
        }
        _mm512_storeu_ps(acc[m], a0);
        _mm512_storeu_ps(acc[m] + 16, a1);
    }
}

/* Block b's products into c: its four output tiles stored. */
T_AMXI INLINE void tile_block(int q4, const int8_t *q, int64_t K, const uint8_t *v0, const uint8_t *v1, int64_t b,
                              int32_t c[4][16][16])
{
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, q + 32 * b, K);
    _tile_loadd(5, q + 16 * K + 32 * b, K);
    _tile_loadd(6, v0 + 512 * b, 64);
    _tile_loadd(7, v1 + 512 * b, 64);
    if (q4) {
        _tile_dpbsud(0, 4, 6);
        _tile_dpbsud(1, 4, 7);
        _tile_dpbsud(2, 5, 6);
        _tile_dpbsud(3, 5, 7);
    } else {
        _tile_dpbssd(0, 4, 6);
        _tile_dpbssd(1, 4, 7);
        _tile_dpbssd(2, 5, 6);
        _tile_dpbssd(3, 5, 7);
    }
    _tile_stored(0, c[0], 64);
    _tile_stored(1, c[1], 64);
    _tile_stored(2, c[2], 64);
    _tile_stored(3, c[3], 64);
}

/* The stored tiles and the float32 accumulators side by side: apart, their addresses can meet
 * modulo 4 KiB, and the accumulators' loads then wait on the tiles' stores (4K aliasing; measured
 * apart: the scaling alone 1.65x slower, the kernel 1.03x (Q8) and 1.25x (Q4)). */
typedef struct amx_work {
    int32_t c[2][4][16][16];
    float acc[32][32];
} amx_work;

/* Software-pipelined: block b's tiles are issued before block b - 1 is scaled, so that the tiles
 * work while the vector units scale (the tiles are free once stored; two output buffers). */
T_AMXI INLINE void run_blocks(int q4, const int8_t *q, int64_t K, const float *d, const float *s, int64_t nbp,
                              const uint8_t *v0, const uint8_t *v1, amx_work *w)
{
    const int64_t nb = K / LNX_QBLOCK;
    const float *sc0 = (const float *)(v0 + nb * 512), *sc1 = (const float *)(v1 + nb * 512);
    const float *mn0 = sc0 + nb * 16, *mn1 = sc1 + nb * 16;
    int32_t(*c)[4][16][16] = w->c;
    float(*acc)[32] = w->acc;
    for (int64_t b = 0; b <= nb; b++) {
        if (b < nb)
            tile_block(q4, q, K, v0, v1, b, c[b & 1]);
        if (b == 0)
            continue;
        const int64_t p = b - 1;
        const __m512 w0 = _mm512_loadu_ps(sc0 + 16 * p), w1 = _mm512_loadu_ps(sc1 + 16 * p);
        __m512 n0 = _mm512_setzero_ps(), n1 = _mm512_setzero_ps();
        if (q4) {
            n0 = _mm512_loadu_ps(mn0 + 16 * p);
            n1 = _mm512_loadu_ps(mn1 + 16 * p);
        }
        const int32_t(*cp)[16][16] = (const int32_t(*)[16][16])c[p & 1];
        scale_rows(q4, 0, cp, d + p, s + p, nbp, w0, w1, n0, n1, acc);
        scale_rows(q4, 1, cp, d + p, s + p, nbp, w0, w1, n0, n1, acc);
    }
}

void lnx_qamx_block(lnx_dtype dt, const int8_t *q, int64_t K, const float *d, const float *s, int64_t nbp,
                    const void *p0, const void *p1, float out[32][32]);
T_AMXI void lnx_qamx_block(lnx_dtype dt, const int8_t *q, int64_t K, const float *d, const float *s, int64_t nbp,
                           const void *p0, const void *p1, float out[32][32])
{
    amx_work w __attribute__((aligned(64)));
    memset(w.acc, 0, sizeof w.acc);
    configure();
    if (dt == LNX_DT_Q4)
        run_blocks(1, q, K, d, s, nbp, p0, p1, &w);
    else
        run_blocks(0, q, K, d, s, nbp, p0, p1, &w);
    _tile_release();
    memcpy(out, w.acc, sizeof w.acc);
}
