/* bf16 GEMM on AMX tiles.
 *
 * Blocking: the K dimension in blocks of KC, the worker's output columns in blocks of up to
 * NC_MAX, as many as make 1 MiB of packed weights; each block of the weights is packed once into
 * the tile layout (AMX wants B as pairs of K values per column, so a 16 x 16 transpose of 32-bit
 * pairs per tile), then every 32-row block of the activations runs against it: four 16 x 16
 * float32 accumulator tiles (32 x 32 outputs), two A tiles, two B tiles, four TDPBF16PS per 32
 * values of K. The packed block (1 MiB) stays in L2 while all rows pass over it, each 32-row
 * block in K chunks of SC steps so that its A values stay in L1 across the column blocks. Output
 * blocks that overhang M or N go through a small buffer. */
#include "amx.h"

#include <immintrin.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../base/cpu.h"
#include "ops.h"
#include "simd.h"

#define KC 4096         /* K values per packed block (multiple of 32) */
#define PACK_BYTES ((size_t)KC * 128 * 2) /* a packed block: 128 columns at K 4096 (1 MiB) */
#define NC_MAX 512      /* columns per packed block at most (K 1024 and less) */
#define TILE_BYTES 1024 /* 16 rows x 64 bytes */
#define SC 8            /* K steps (of 32) per pass of a row block over the column blocks */

#define AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_detect(void)
{
    if (!(lnx_cpu_flags() & (LNX_CPU_AMX_BF16 | LNX_CPU_AMX_INT8)))
        return;
#if defined(SYS_arch_prctl)
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): Linux hands out the tile state
     * only on request */
    if (syscall(SYS_arch_prctl, 0x1023, 18) != 0)
        return;
    amx_ok = 1;
#endif
}

int lnx_amx_available(void)
{
    pthread_once(&amx_once, amx_detect);
    return amx_ok && (lnx_cpu_flags() & LNX_CPU_AMX_BF16);
}

int lnx_amx_int8_available(void)
{
    pthread_once(&amx_once, amx_detect);
    return amx_ok && (lnx_cpu_flags() & LNX_CPU_AMX_INT8);
}

size_t lnx_amx_pack_bytes(void)
{
    /* the packed block, the row block's partial outputs (NC_MAX / 32 blocks of 32 x 32), and its
     * float32 outputs in the bf16-output mode (32 x NC_MAX) */
    return PACK_BYTES + 2 * (size_t)NC_MAX * 32 * sizeof(float);
}

/* In-register transpose of a 16 x 16 matrix of 32-bit values (r[i] = row i -> r[i] = column i). */
AVX512 static void transpose16(__m512i r[16])
{
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    /* r[4q + c], 128-bit lane L: column 4L + c of rows 4q .. 4q + 3 */
    for (int q = 0; q < 16; q += 4) {
        r[q] = _mm512_unpacklo_epi64(t[q], t[q + 2]);
        r[q + 1] = _mm512_unpackhi_epi64(t[q], t[q + 2]);
        r[q + 2] = _mm512_unpacklo_epi64(t[q + 1], t[q + 3]);
        r[q + 3] = _mm512_unpackhi_epi64(t[q + 1], t[q + 3]);
    }
    for (int c = 0; c < 4; c++) {
        t[4 * c + 0] = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88);
        t[4 * c + 1] = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xDD);
        t[4 * c + 2] = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88);
        t[4 * c + 3] = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xDD);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_i32x4(t[4 * c + 0], t[4 * c + 2], 0x88);      /* column c */
        r[8 + c] = _mm512_shuffle_i32x4(t[4 * c + 0], t[4 * c + 2], 0xDD);  /* column 8 + c */
        r[4 + c] = _mm512_shuffle_i32x4(t[4 * c + 1], t[4 * c + 3], 0x88);  /* column 4 + c */
        r[12 + c] = _mm512_shuffle_i32x4(t[4 * c + 1], t[4 * c + 3], 0xDD); /* column 12 + c */
    }
}

/* Rows r0 .. r0 + 16 of X (bf16, row stride ldx, n rows of d values; zeros past them), values
 * k .. k + 32, as one tile of 16 rows (pairs of values) x 16 columns (the rows of X) x 2. */
AVX512 static void pack_tile_t(const uint16_t *X, int64_t ldx, int64_t n, int64_t d, int64_t r0, int64_t k,
                               uint16_t *tile)
{
    const int64_t valid = d - k;
    const __mmask32 m = valid >= 32 ? (__mmask32)0xffffffffu : valid > 0 ? (__mmask32)((1u << valid) - 1) : 0;
    __m512i r[16];
    for (int i = 0; i < 16; i++)
        r[i] = r0 + i < n && m ? _mm512_maskz_loadu_epi16(m, X + (r0 + i) * ldx + k) : _mm512_setzero_si512();
    transpose16(r);
    for (int i = 0; i < 16; i++)
        _mm512_storeu_si512(tile + 32 * i, r[i]);
}

/* Packs W[n0 .. n0 + nc) x [k0 .. k0 + kc) (zeros past N and K) into tiles: for column block j
 * (32 columns) and K step s (32 values), two tiles of 16 rows (K pairs) x 16 columns x 2 values. */
static void pack_b(const uint16_t *W, int64_t ldw, int64_t N, int64_t K, int64_t n0, int64_t nc, int64_t k0,
                   int64_t kc, uint16_t *dst)
{
    const int64_t steps = kc / 32;
    for (int64_t j = 0; j < nc / 32; j++)
        for (int64_t s = 0; s < steps; s++)
            for (int t = 0; t < 2; t++)
                pack_tile_t(W, ldw, N, K, n0 + 32 * j + 16 * t, k0 + 32 * s,
                            dst + ((size_t)(j * steps + s) * 2 + (size_t)t) * (TILE_BYTES / 2));
}

size_t lnx_amx_keys_bytes(int64_t n, int64_t d)
{
    return (size_t)((n + 15) / 16) * (size_t)((d + 31) / 32) * TILE_BYTES;
}

void lnx_amx_pack_keys(const uint16_t *X, int64_t ldx, int64_t n, int64_t d, uint16_t *dst)
{
    const int64_t steps = (d + 31) / 32;
    for (int64_t g = 0; g < (n + 15) / 16; g++)
        for (int64_t s = 0; s < steps; s++)
            pack_tile_t(X, ldx, n, d, 16 * g, 32 * s, dst + (size_t)(g * steps + s) * (TILE_BYTES / 2));
}

size_t lnx_amx_values_bytes(int64_t n, int64_t d)
{
    return (size_t)((d + 31) / 32) * (size_t)((n + 31) / 32) * 2 * TILE_BYTES;
}

AVX512 void lnx_amx_pack_values(const uint16_t *X, int64_t ldx, int64_t n, int64_t d, uint16_t *dst)
{
    /* output pair c of a tile row: value c of the even row, then value c of the odd row */
    uint16_t order[32];
    for (int c = 0; c < 16; c++) {
        order[2 * c] = (uint16_t)c;
        order[2 * c + 1] = (uint16_t)(32 + c);
    }
    const __m512i idx = _mm512_loadu_si512(order);
    const int64_t steps = (n + 31) / 32;
    for (int64_t j = 0; j < (d + 31) / 32; j++)
        for (int64_t s = 0; s < steps; s++)
            for (int t = 0; t < 2; t++) {
                const int64_t c0 = 32 * j + 16 * t, valid = d - c0;
                const __mmask16 m = valid >= 16 ? (__mmask16)0xffff : valid > 0 ? (__mmask16)((1u << valid) - 1) : 0;
                uint16_t *tile = dst + ((size_t)(j * steps + s) * 2 + (size_t)t) * (TILE_BYTES / 2);
                for (int r = 0; r < 16; r++) {
                    const int64_t row = 32 * s + 2 * r;
                    __m512i e = row < n && m ? _mm512_castsi256_si512(_mm256_maskz_loadu_epi16(m, X + row * ldx + c0))
                                             : _mm512_setzero_si512();
                    __m512i o = row + 1 < n && m
                                    ? _mm512_castsi256_si512(_mm256_maskz_loadu_epi16(m, X + (row + 1) * ldx + c0))
                                    : _mm512_setzero_si512();
                    _mm512_storeu_si512(tile + 32 * r, _mm512_permutex2var_epi16(e, idx, o));
                }
            }
}

typedef struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

AMX void lnx_amx_configure(const uint8_t rows[8], const uint16_t colsb[8])
{
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = rows[t];
        cfg.colsb[t] = colsb[t];
    }
    /* GCC does not see ldtilecfg read the struct: keep the stores */
    __asm__ volatile("" : : "r"(&cfg) : "memory");
    _tile_loadconfig(&cfg);
}

/* Every tile 16 rows of 64 bytes. */
static void configure_tiles(void)
{
    static const uint8_t rows[8] = { 16, 16, 16, 16, 16, 16, 16, 16 };
    static const uint16_t colsb[8] = { 64, 64, 64, 64, 64, 64, 64, 64 };
    lnx_amx_configure(rows, colsb);
}

/* One 32 x 32 output block over `steps` K steps: tiles 0-3 hold C (rows 0-15 x cols 0-15, rows
 * 0-15 x 16-31, rows 16-31 x 0-15, rows 16-31 x 16-31), read from Cin (zeros when NULL) and
 * written to Cout. */
AMX static void block32(const uint16_t *A, int64_t lda, const uint16_t *B, int64_t steps, const float *Cin,
                        int64_t ldin, float *Cout, int64_t ldout)
{
    const size_t as = (size_t)lda * sizeof(uint16_t);
    if (Cin) {
        const size_t cs = (size_t)ldin * sizeof(float);
        _tile_loadd(0, Cin, cs);
        _tile_loadd(1, Cin + 16, cs);
        _tile_loadd(2, Cin + 16 * ldin, cs);
        _tile_loadd(3, Cin + 16 * ldin + 16, cs);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int64_t s = 0; s < steps; s++) {
        const uint16_t *a = A + 32 * s, *b = B + (size_t)s * TILE_BYTES;
        _tile_loadd(4, a, as);
        _tile_loadd(5, a + 16 * lda, as);
        _tile_loadd(6, b, 64);
        _tile_loadd(7, b + TILE_BYTES / 2, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    const size_t cs = (size_t)ldout * sizeof(float);
    _tile_stored(0, Cout, cs);
    _tile_stored(1, Cout + 16, cs);
    _tile_stored(2, Cout + 16 * ldout, cs);
    _tile_stored(3, Cout + 16 * ldout + 16, cs);
}

/* The bf16-output mode's end of a row block: bias, activation and rounding of its float32
 * outputs (rows x cols at buf, row stride ldb) into out->C16 rows m0.., columns c0... */
static void round_block(float *buf, int64_t ldb, int64_t rows, int64_t cols, const lnx_amx_out *out, int64_t m0,
                        int64_t c0)
{
    for (int64_t r = 0; r < rows; r++) {
        float *row = buf + r * ldb;
        if (out->bias)
            for (int64_t n = 0; n < cols; n++)
                row[n] += out->bias[c0 + n];
        if (out->act >= 0)
            lnx_activate(NULL, (lnx_act)out->act, row, cols);
        lnx_round_bf16_n(row, out->C16 + (m0 + r) * out->ldc16 + c0, (size_t)cols);
    }
}

AMX void lnx_amx_linear(int64_t M, int64_t N, int64_t K, const uint16_t *A, int64_t lda, const uint16_t *W, int64_t ldw,
                        float *C, int64_t ldc, int64_t n0, int64_t n1, int accumulate, const lnx_amx_out *out,
                        void *pack)
{
    uint16_t *const C16 = out ? out->C16 : NULL;
    if (M <= 0 || n1 <= n0)
        return;
    uint16_t *B = pack;
    float edge[32 * 32];
    /* the row block's partial outputs between K chunks (in L1) */
    float(*part)[32 * 32] = (float(*)[32 * 32])((char *)pack + PACK_BYTES);
    /* bf16 output: the row block's float32 outputs, 32 x nc, before they are rounded */
    float *rowbuf = (float *)((char *)pack + PACK_BYTES + (size_t)NC_MAX * 32 * sizeof(float));
    const int64_t Kp = (K + 31) / 32 * 32, Mp = (M + 31) / 32 * 32;
    configure_tiles();
    /* columns per packed block: as many as fill PACK_BYTES at this K, so that short products (K
     * 1024: 512 columns) re-read the activations a quarter as often (8-frame CLIP batches:
     * 2.1 -> 2.5 TFLOP/s at 4096 x 1024 weights, 2 threads) */
    const int64_t kcmax = Kp < KC ? Kp : KC;
    int64_t ncb = (int64_t)(PACK_BYTES / ((size_t)kcmax * sizeof(uint16_t))) / 32 * 32;
    ncb = ncb > NC_MAX ? NC_MAX : ncb < 32 ? 32 : ncb;
    for (int64_t k0 = 0; k0 < Kp; k0 += KC) {
        const int64_t kc = Kp - k0 < KC ? Kp - k0 : KC, steps = kc / 32;
        const int load_c = k0 > 0 || accumulate;
        for (int64_t nb = n0; nb < n1; nb += ncb) {
            const int64_t nc = ((n1 - nb < ncb ? n1 - nb : ncb) + 31) / 32 * 32;
            pack_b(W, ldw, N, K, nb, nc, k0, kc, B);
            for (int64_t m0 = 0; m0 < Mp; m0 += 32) {
                const int64_t rows = M - m0 < 32 ? M - m0 : 32;
                /* K in chunks of SC steps, so that the row block's A values (32 x 32 SC) stay in L1
                 * while every column block of the packed weights passes over them */
                for (int64_t s0 = 0; s0 < steps; s0 += SC) {
                    const int64_t ns = steps - s0 < SC ? steps - s0 : SC;
                    const int first = s0 == 0, last = s0 + ns == steps;
                    const uint16_t *a = A + m0 * lda + k0 + 32 * s0;
                    for (int64_t j = 0; j < nc / 32; j++) {
                        const int64_t col = nb + 32 * j, cols = n1 - col < 32 ? n1 - col : 32;
                        /* bf16 output: whole 32 x 32 blocks into the row buffer */
                        const int full = C16 || (rows == 32 && cols == 32);
                        float *c = C16 ? rowbuf + 32 * j : C + m0 * ldc + col;
                        const int64_t ldcc = C16 ? nc : ldc;
                        const uint16_t *b = B + ((size_t)j * (size_t)steps + (size_t)s0) * TILE_BYTES;
                        const float *in = part[j];
                        int64_t ldin = 32;
                        if (first) {
                            in = NULL;
                            if (load_c && full) {
                                in = c;
                                ldin = ldcc;
                            } else if (load_c) { /* an overhanging block: through `edge` */
                                memset(edge, 0, sizeof edge);
                                for (int64_t r = 0; r < rows; r++)
                                    memcpy(edge + 32 * r, c + r * ldc, sizeof(float) * (size_t)cols);
                                in = edge;
                            }
                        }
                        if (!last) {
                            block32(a, lda, b, ns, in, ldin, part[j], 32);
                            continue;
                        }
                        if (full) {
                            block32(a, lda, b, ns, in, ldin, c, ldcc);
                        } else {
                            block32(a, lda, b, ns, in, ldin, edge, 32);
                            for (int64_t r = 0; r < rows; r++)
                                memcpy(c + r * ldc, edge + 32 * r, sizeof(float) * (size_t)cols);
                        }
                    }
                }
                if (C16)
                    round_block(rowbuf, nc, rows, n1 - nb < nc ? n1 - nb : nc, out, m0, nb);
            }
        }
    }
    _tile_release();
}

AMX void lnx_amx_scores(const uint16_t *Q, int64_t ldq, int64_t rows, const uint16_t *Kp, int64_t steps, int64_t g0,
                        int64_t g1, float *S, int64_t lds)
{
    const size_t qs = (size_t)ldq * sizeof(uint16_t), ss = (size_t)lds * sizeof(float);
    const size_t gs = (size_t)steps * (TILE_BYTES / 2); /* one key group's tiles */
    const int resident = steps <= 4;                    /* a query block's tiles stay in tiles 4-7 */
    configure_tiles();
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
        const uint16_t *q = Q + r0 * ldq;
        float *srow = S + r0 * lds;
        if (resident) {
            _tile_loadd(4, q, qs);
            if (steps > 1)
                _tile_loadd(5, q + 32, qs);
            if (steps > 2)
                _tile_loadd(6, q + 64, qs);
            if (steps > 3)
                _tile_loadd(7, q + 96, qs);
        }
        for (int64_t g = g0; g < g1; g += 2) {
            const int two = g + 1 < g1;
            const uint16_t *b0 = Kp + (size_t)g * gs, *b1 = b0 + gs;
            _tile_zero(0);
            _tile_zero(1);
            /* tile numbers are immediates: one expansion per query tile */
#define SCORE_STEP(s, a)                                                                                           \
    do {                                                                                                           \
        _tile_loadd(2, b0 + (size_t)(s) * (TILE_BYTES / 2), 64);                                                   \
        _tile_dpbf16ps(0, a, 2);                                                                                   \
        if (two) {                                                                                                 \
            _tile_loadd(3, b1 + (size_t)(s) * (TILE_BYTES / 2), 64);                                               \
            _tile_dpbf16ps(1, a, 3);                                                                               \
        }                                                                                                          \
    } while (0)
            if (resident) {
                SCORE_STEP(0, 4);
                if (steps > 1)
                    SCORE_STEP(1, 5);
                if (steps > 2)
                    SCORE_STEP(2, 6);
                if (steps > 3)
                    SCORE_STEP(3, 7);
            } else {
                for (int64_t s = 0; s < steps; s++) {
                    _tile_loadd(4, q + 32 * s, qs);
                    SCORE_STEP(s, 4);
                }
            }
#undef SCORE_STEP
            _tile_stored(0, srow + 16 * (g - g0), ss);
            if (two)
                _tile_stored(1, srow + 16 * (g + 1 - g0), ss);
        }
    }
    _tile_release();
}

AMX void lnx_amx_packed(const uint16_t *A, int64_t lda, int64_t rows, const uint16_t *Bp, int64_t bsteps, int64_t s0,
                        int64_t ns, int64_t ncols, float *C, int64_t ldc)
{
    configure_tiles();
    for (int64_t m0 = 0; m0 < rows; m0 += 32)
        for (int64_t j = 0; j < ncols / 32; j++)
            block32(A + m0 * lda, lda, Bp + (size_t)(j * bsteps + s0) * TILE_BYTES, ns, NULL, 0, C + m0 * ldc + 32 * j,
                    ldc);
    _tile_release();
}
