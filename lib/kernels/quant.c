/* Quantized products: the scalar oracle, the variant dispatch and the threaded GEMV/GEMM driver.
 * The SIMD variants are in quant_x86.c. */
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/cpu.h"
#include "../base/half.h"
#include "amx.h"

/* Below this many activation rows a product is a GEMV over weight rows (decode). */
#define QGEMV_MAX_M 4
/* Interleaved read streams per worker in the GEMV (as in gemm.c's float GEMV). */
#define QGEMV_STREAMS 1
/* Weight rows per block of the GEMM: every activation row passes over a block while it is in L2. */
#define QGEMM_ROWS 32
/* From this many activation rows the AMX variant's GEMM runs on tiles (32 rows at a time; fewer
 * run as the AVX-512 VNNI panels). */
#define QAMX_MIN_M 16
/* Bytes of AMX panels a worker keeps in L2 while every 32 activation rows pass over them. */
#define QAMX_GROUP_BYTES (1 << 20)

/* implemented in quant_x86.c */
void lnx_qtile_avx2(lnx_dtype dt, lnx_qtile *t, int nm);
void lnx_qtile_avx512vnni(lnx_dtype dt, lnx_qtile *t, int nm);
void lnx_qtile_avxvnni(lnx_dtype dt, lnx_qtile *t, int nm);
void lnx_quantize_acts_avx2(const float *x, int64_t K, int8_t *q, float *d, float *s);
void lnx_qpanel_avx512vnni(lnx_dtype dt, lnx_qpanel_run *r);
void lnx_qpanel_avx2(lnx_dtype dt, lnx_qpanel_run *r);
void lnx_qpanel_avxvnni(lnx_dtype dt, lnx_qpanel_run *r);
void lnx_qpanel_vnni256(lnx_dtype dt, lnx_qpanel_run *r);
void lnx_widen_i8_avx2(const int8_t *q, int64_t n, int16_t *out);

const char *lnx_qisa_name(lnx_qisa isa)
{
    static const char *const names[] = { "scalar", "avx2", "avx512vnni", "avxvnni", "amx" };
    return isa >= 0 && isa < LNX_QISA_COUNT ? names[isa] : "?";
}

int lnx_qisa_runnable(lnx_qisa isa, const char **why)
{
    unsigned f = lnx_cpu_flags();
    const char *no = NULL;
    switch (isa) {
    case LNX_QISA_SCALAR:
        break;
    case LNX_QISA_AVX2:
        if (!(f & LNX_CPU_AVX2))
            no = "the CPU has no AVX2 (or it is masked off)";
        break;
    case LNX_QISA_AVX512VNNI:
        if (!(f & LNX_CPU_AVX512VNNI) || !(f & LNX_CPU_AVX2))
            no = "the CPU has no AVX-512 VNNI (or it is masked off)";
        break;
    case LNX_QISA_AVXVNNI:
        if (!(f & LNX_CPU_AVXVNNI))
            no = "the CPU has no AVX-VNNI (or it is masked off)";
        break;
    case LNX_QISA_AMX: /* its GEMV is the AVX-512 VNNI one */
        if (!(f & LNX_CPU_AMX_INT8) || !(f & LNX_CPU_AVX512VNNI))
            no = "the CPU has no AMX-INT8 with AVX-512 VNNI (or it is masked off)";
        else if (!lnx_amx_int8_available())
            no = "the operating system did not grant the AMX tile state";
        break;
    default:
        no = "unknown variant";
    }
    if (no && why)
        *why = no;
    return no == NULL;
}

lnx_qisa lnx_qisa_best(void)
{
    if (lnx_qisa_runnable(LNX_QISA_AMX, NULL))
        return LNX_QISA_AMX;
    if (lnx_qisa_runnable(LNX_QISA_AVX512VNNI, NULL))
        return LNX_QISA_AVX512VNNI;
    if (lnx_qisa_runnable(LNX_QISA_AVXVNNI, NULL))
        return LNX_QISA_AVXVNNI;
    if (lnx_qisa_runnable(LNX_QISA_AVX2, NULL))
        return LNX_QISA_AVX2;
    return LNX_QISA_SCALAR;
}

static void quantize_acts_scalar(const float *x, int64_t K, int8_t *q, float *d, float *s)
{
    for (int64_t b = 0; b < K / LNX_QBLOCK; b++) {
        const float *xb = x + b * LNX_QBLOCK;
        float amax = 0.0f;
        for (int i = 0; i < LNX_QBLOCK; i++)
            amax = fmaxf(amax, fabsf(xb[i]));
        float db = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int i = 0; i < LNX_QBLOCK; i++) {
            int v = (int)nearbyintf(xb[i] * id);
            q[b * LNX_QBLOCK + i] = (int8_t)v;
            sum += v;
        }
        d[b] = db;
        s[b] = db * (float)sum;
    }
}

void lnx_quantize_acts(const float *x, int64_t K, int8_t *q, float *d, float *s)
{
    if (lnx_cpu_flags() & LNX_CPU_AVX2)
        lnx_quantize_acts_avx2(x, K, q, d, s);
    else
        quantize_acts_scalar(x, K, q, d, s);
}

void lnx_widen_i8(const int8_t *q, int64_t n, int16_t *out)
{
    if (lnx_cpu_flags() & LNX_CPU_AVX2) {
        lnx_widen_i8_avx2(q, n, out);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = q[i];
}

void lnx_q4_arrange_acts(const int8_t *q, int64_t K, int8_t *qn)
{
    for (int64_t g = 0; g + 128 <= K; g += 128)
        for (int j = 0; j < 4; j++) {
            memcpy(qn + g + 16 * j, q + g + 32 * j, 16);
            memcpy(qn + g + 64 + 16 * j, q + g + 32 * j + 16, 16);
        }
}

/* The oracle: one weight row . one activation row, block by block: the block's int32 dot product
 * times (weight scale x activation scale), summed in float32; for Q4 less the minimums' term
 * sum_j dmin mn[j] s[j]. */
static float qdot_scalar(lnx_dtype dt, const uint8_t *w, const int8_t *q, const float *d, const float *s, int64_t K)
{
    int64_t nb = K / LNX_QBLOCK;
    float acc = 0.0f, macc = 0.0f;
    if (dt == LNX_DT_Q8) {
        for (int64_t b = 0; b < nb; b++, w += LNX_Q8_BYTES) {
            int32_t isum = 0;
            for (int i = 0; i < LNX_QBLOCK; i++)
                isum += (int32_t)(int8_t)w[2 + i] * q[b * LNX_QBLOCK + i];
            acc += (float)isum * (lnx_q_half(w) * d[b]);
        }
        return acc;
    }
    for (int64_t b = 0; b < nb; b += LNX_Q4_SUB) {
        float scale[8], min[8];
        int nsub = lnx_q4_head(w, nb - b, scale, min);
        for (int j = 0; j < nsub; j++) {
            const uint8_t *x = w + LNX_Q4_HEAD + 16 * j;
            const int8_t *a = q + (b + j) * LNX_QBLOCK;
            int32_t isum = 0;
            for (int i = 0; i < 16; i++)
                isum += (x[i] & 15) * a[i] + (x[i] >> 4) * a[i + 16];
            acc += (float)isum * (scale[j] * d[b + j]);
            macc += min[j] * s[b + j];
        }
        w += LNX_Q4_HEAD + 16 * nsub;
    }
    return acc - macc;
}

static void qtile_scalar(lnx_dtype dt, lnx_qtile *t, int nm)
{
    for (int m = 0; m < nm; m++)
        for (int r = 0; r < 4; r++)
            t->out[m][r] = qdot_scalar(dt, t->w[r], t->q[m], t->d[m], t->s[m], t->K);
}

void lnx_qtile_run(lnx_qisa isa, lnx_dtype dt, lnx_qtile *t, int nm)
{
    switch (isa) {
    case LNX_QISA_AVX2:
        lnx_qtile_avx2(dt, t, nm);
        break;
    case LNX_QISA_AVX512VNNI:
    case LNX_QISA_AMX:
        lnx_qtile_avx512vnni(dt, t, nm);
        break;
    case LNX_QISA_AVXVNNI:
        lnx_qtile_avxvnni(dt, t, nm);
        break;
    default:
        qtile_scalar(dt, t, nm);
    }
}

/* ---- repacked panels (the GEMM on every SIMD variant) ---- */

int lnx_qpanel_wide(int variant, lnx_dtype dt)
{
    return variant == LNX_QISA_AVX2 && dt == LNX_DT_Q8;
}

/* Bytes of a panel block's values (v), before the scales */
static size_t qpanel_vbytes(int variant, lnx_dtype dt)
{
    return lnx_qpanel_wide(variant, dt) ? 1024 : 512;
}

size_t lnx_qpanel_bytes(int variant, lnx_dtype dt, int64_t K)
{
    size_t nb = (size_t)(K / LNX_QBLOCK);
    return nb * qpanel_vbytes(variant, dt) + 2 * nb * 64;
}

void lnx_qpanel_pack(int variant, lnx_dtype dt, const uint8_t *const *rows, int nrows, int64_t K, void *buf)
{
    const int64_t nb = K / LNX_QBLOCK;
    const int wide = lnx_qpanel_wide(variant, dt);
    const uint8_t flip = variant == LNX_QISA_AMX ? 0 : 0x80; /* Q8 as unsigned bytes, but for AMX */
    uint8_t *v = buf;
    float *sc = (float *)(v + (size_t)nb * qpanel_vbytes(variant, dt)), *mn = sc + nb * 16;
    memset(buf, 0, lnx_qpanel_bytes(variant, dt, K));
    for (int r = 0; r < nrows; r++) {
        const uint8_t *w = rows[r];
        if (wide) {
            int16_t *v16 = (int16_t *)buf;
            for (int64_t b = 0; b < nb; b++, w += LNX_Q8_BYTES) {
                sc[b * 16 + r] = lnx_q_half(w);
                for (int i = 0; i < LNX_QBLOCK; i++)
                    v16[((size_t)b * 16 + (size_t)(i / 2)) * 32 + (size_t)r * 2 + (size_t)(i % 2)] = (int8_t)w[2 + i];
            }
            continue;
        }
        if (dt == LNX_DT_Q8) {
            for (int64_t b = 0; b < nb; b++, w += LNX_Q8_BYTES) {
                sc[b * 16 + r] = lnx_q_half(w);
                for (int i = 0; i < LNX_QBLOCK; i++)
                    v[((size_t)b * 8 + (size_t)(i / 4)) * 64 + (size_t)r * 4 + (size_t)(i % 4)] = w[2 + i] ^ flip;
            }
            continue;
        }
        for (int64_t b = 0; b < nb; b += LNX_Q4_SUB) {
            float scale[8], min[8];
            int nsub = lnx_q4_head(w, nb - b, scale, min);
            for (int j = 0; j < nsub; j++) {
                const uint8_t *x = w + LNX_Q4_HEAD + 16 * j;
                int64_t bb = b + j;
                sc[bb * 16 + r] = scale[j];
                mn[bb * 16 + r] = min[j];
                for (int i = 0; i < LNX_QBLOCK; i++) {
                    uint8_t q = i < 16 ? (x[i] & 15) : (x[i - 16] >> 4);
                    v[((size_t)bb * 8 + (size_t)(i / 4)) * 64 + (size_t)r * 4 + (size_t)(i % 4)] = q;
                }
            }
            w += LNX_Q4_HEAD + 16 * nsub;
        }
    }
}

int lnx_qpanel_kernel(int variant, lnx_dtype dt, lnx_qpanel_run *r)
{
    switch (variant) {
    case LNX_QISA_AVX2:
        lnx_qpanel_avx2(dt, r);
        return 1;
    case LNX_QISA_AVX512VNNI:
        lnx_qpanel_avx512vnni(dt, r);
        return 1;
    case LNX_QISA_AVXVNNI:
        lnx_qpanel_avxvnni(dt, r);
        return 1;
    case LNX_QPANEL_VNNI256:
        lnx_qpanel_vnni256(dt, r);
        return 1;
    default:
        return 0;
    }
}

/* ---- the driver ---- */

typedef struct qg_ctx {
    lnx_qisa isa;
    int64_t M;
    const float *A;
    int64_t lda;
    const lnx_wmat *W;
    size_t row_bytes;
    const float *bias;
    float *C;
    int64_t ldc;
    int accumulate;
    int8_t *q;      /* [M][K] */
    float *d, *s;   /* [M][nbp] */
    int32_t *si;    /* [M][nbp] the blocks' integer sums (panels) */
    int8_t *qn;     /* [M][K] q arranged for the Q4 GEMV (AVX-512 VNNI), or NULL */
    int64_t nbp;    /* blocks per activation row, plus 8 of padding */
    char *panels;   /* per worker: `group` panels (NULL: 4 x 4 tiles) */
    size_t panel_bytes;
    int16_t *q16;   /* [M][K] q widened (the int16 Q8 panels), or NULL */
    int amx;        /* the GEMM on AMX tiles: q, d, s padded to a multiple of 32 rows with zeros */
    int group;      /* panels per worker block */
    int pf;         /* the GEMV's weight prefetch distance (lnx_cpu_stream_prefetch) */
} qg_ctx;

static void quant_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const qg_ctx *g = p;
    int64_t K = g->W->cols;
    for (int64_t m = begin; m < end; m++) {
        lnx_quantize_acts(g->A + m * g->lda, K, g->q + m * K, g->d + m * g->nbp, g->s + m * g->nbp);
        if (g->q16)
            lnx_widen_i8(g->q + m * K, K, g->q16 + m * K);
        if (g->qn)
            lnx_q4_arrange_acts(g->q + m * K, K, g->qn + m * K);
        if (!g->panels || g->amx) /* the integer block sums serve the +128 Q8 panels */
            continue;
        const int8_t *q = g->q + m * K;
        int32_t *si = g->si + m * g->nbp;
        for (int64_t b = 0; b < K / LNX_QBLOCK; b++) {
            int32_t t = 0;
            for (int i = 0; i < LNX_QBLOCK; i++)
                t += q[b * LNX_QBLOCK + i];
            si[b] = t;
        }
    }
}

/* Row m of C, columns n .. n + nr: y (+ bias), stored or added. */
static void put_row(const qg_ctx *g, int64_t m, int64_t n, const float *y, int nr)
{
    float *c = g->C + m * g->ldc + n;
    for (int r = 0; r < nr; r++) {
        float v = y[r] + (g->bias ? g->bias[n + r] : 0.0f);
        c[r] = g->accumulate ? c[r] + v : v;
    }
}

/* Weight rows n .. n+3 (fewer at the end) against activation rows m .. m+3 (fewer at the end). */
static void run_tile(const qg_ctx *g, int64_t n, int64_t m, int nm_kernel)
{
    int64_t N = g->W->rows, K = g->W->cols;
    int nr = N - n < 4 ? (int)(N - n) : 4;
    int nm = g->M - m < 4 ? (int)(g->M - m) : 4;
    if (nm_kernel == 1)
        nm = 1;
    lnx_qtile t;
    t.K = K;
    t.pf = g->pf;
    for (int r = 0; r < 4; r++)
        t.w[r] = (const uint8_t *)g->W->data + (size_t)(n + (r < nr ? r : 0)) * g->row_bytes;
    for (int i = 0; i < 4; i++) {
        int64_t row = m + (i < nm ? i : 0);
        t.q[i] = g->q + row * K;
        t.qn[i] = g->qn ? g->qn + row * K : NULL;
        t.d[i] = g->d + row * g->nbp;
        t.s[i] = g->s + row * g->nbp;
    }
    lnx_qtile_run(g->isa, g->W->dtype, &t, nm_kernel);
    for (int i = 0; i < nm; i++)
        put_row(g, m + i, n, t.out[i], nr);
}

static void gemv_groups(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const qg_ctx *g = p;
    int64_t groups = end - begin, part = (groups + QGEMV_STREAMS - 1) / QGEMV_STREAMS;
    for (int64_t i = 0; i < part; i++)
        for (int k = 0; k < QGEMV_STREAMS; k++) {
            int64_t grp = begin + k * part + i;
            if (grp >= end)
                continue;
            for (int64_t m = 0; m < g->M; m += (g->M == 1 ? 1 : 4))
                run_tile(g, grp * 4, m, g->M == 1 ? 1 : 4);
        }
}

static void gemm_blocks(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const qg_ctx *g = p;
    int64_t N = g->W->rows;
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t n0 = blk * QGEMM_ROWS, n1 = n0 + QGEMM_ROWS < N ? n0 + QGEMM_ROWS : N;
        for (int64_t m = 0; m < g->M; m += 4)
            for (int64_t n = n0; n < n1; n += 4)
                run_tile(g, n, m, 4);
    }
}

/* Weight rows per worker block on the panel path: QPANEL_GROUP panels of 16, packed once, then
 * every 8 activation rows pass over them while they are in L2. */
#define QPANEL_GROUP 2

/* Worker block blk's weight rows n0 .. n1 (g->group panels of 16, fewer at the end) packed into
 * the worker's panels, in the layout of g->isa; returns how many panels. */
static int pack_block(const qg_ctx *g, int64_t blk, int worker, int64_t *n0, int64_t *n1)
{
    const int64_t N = g->W->rows, span = (int64_t)g->group * LNX_QPANEL_ROWS;
    char *mine = g->panels + (size_t)worker * (size_t)g->group * g->panel_bytes;
    *n0 = blk * span;
    *n1 = *n0 + span < N ? *n0 + span : N;
    int np = (int)((*n1 - *n0 + LNX_QPANEL_ROWS - 1) / LNX_QPANEL_ROWS);
    for (int pi = 0; pi < np; pi++) {
        const uint8_t *rows[LNX_QPANEL_ROWS];
        int64_t r0 = *n0 + (int64_t)pi * LNX_QPANEL_ROWS;
        int nr = *n1 - r0 < LNX_QPANEL_ROWS ? (int)(*n1 - r0) : LNX_QPANEL_ROWS;
        for (int r = 0; r < nr; r++)
            rows[r] = (const uint8_t *)g->W->data + (size_t)(r0 + r) * g->row_bytes;
        lnx_qpanel_pack(g->isa, g->W->dtype, rows, nr, g->W->cols, mine + (size_t)pi * g->panel_bytes);
    }
    return np;
}

static void panel_blocks(void *p, int64_t begin, int64_t end, int worker)
{
    const qg_ctx *g = p;
    const int64_t K = g->W->cols;
    char *mine = g->panels + (size_t)worker * (size_t)g->group * g->panel_bytes;
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t n0, n1;
        int np = pack_block(g, blk, worker, &n0, &n1);
        for (int64_t m = 0; m < g->M; m += LNX_QPANEL_ACTS) {
            int nm = g->M - m < LNX_QPANEL_ACTS ? (int)(g->M - m) : LNX_QPANEL_ACTS;
            lnx_qpanel_run run;
            run.K = K;
            for (int i = 0; i < LNX_QPANEL_ACTS; i++) { /* short groups repeat their first row */
                int64_t row = m + (i < nm ? i : 0);
                run.q[i] = g->q + row * K;
                run.d[i] = g->d + row * g->nbp;
                run.s[i] = g->s + row * g->nbp;
                run.si[i] = g->si + row * g->nbp;
                run.q16[i] = g->q16 ? g->q16 + row * K : NULL;
            }
            for (int pi = 0; pi < np; pi++) {
                int64_t r0 = n0 + (int64_t)pi * LNX_QPANEL_ROWS;
                int nr = n1 - r0 < LNX_QPANEL_ROWS ? (int)(n1 - r0) : LNX_QPANEL_ROWS;
                run.panel = mine + (size_t)pi * g->panel_bytes;
                lnx_qpanel_kernel(g->isa, g->W->dtype, &run);
                for (int i = 0; i < nm; i++)
                    put_row(g, m + i, r0, run.out[i], nr);
            }
        }
    }
}

/* The AMX GEMM: per worker block, g->group panels packed once, then every 32 activation rows pass
 * over them, a pair of panels (32 x 32 outputs) at a time. */
static void amx_blocks(void *p, int64_t begin, int64_t end, int worker)
{
    const qg_ctx *g = p;
    const int64_t K = g->W->cols;
    char *mine = g->panels + (size_t)worker * (size_t)g->group * g->panel_bytes;
    float out[32][32];
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t n0, n1;
        int np = pack_block(g, blk, worker, &n0, &n1);
        for (int64_t m = 0; m < g->M; m += 32) {
            int nm = g->M - m < 32 ? (int)(g->M - m) : 32;
            for (int pi = 0; pi < np; pi += 2) {
                const char *p0 = mine + (size_t)pi * g->panel_bytes;
                const char *p1 = pi + 1 < np ? p0 + g->panel_bytes : p0; /* a lone panel: twice */
                int64_t r0 = n0 + (int64_t)pi * LNX_QPANEL_ROWS;
                int nr = n1 - r0 < 2 * LNX_QPANEL_ROWS ? (int)(n1 - r0) : 2 * LNX_QPANEL_ROWS;
                lnx_qamx_block(g->W->dtype, g->q + m * K, K, g->d + m * g->nbp, g->s + m * g->nbp, g->nbp, p0, p1, out);
                for (int i = 0; i < nm; i++)
                    put_row(g, m + i, r0, out[i], nr);
            }
        }
    }
}

void lnx_qgemm_isa(lnx_qisa isa, lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
                   const float *bias, float *C, int64_t ldc, int accumulate)
{
    int64_t N = W->rows, K = W->cols;
    if (M <= 0 || N <= 0)
        return;
    int64_t nb = K / LNX_QBLOCK, nbp = nb + 8;
    /* the tiles only where the OS granted them (a caller may name the variant without asking) */
    const int amx = isa == LNX_QISA_AMX && M >= QAMX_MIN_M && lnx_qisa_runnable(LNX_QISA_AMX, NULL);
    if (isa == LNX_QISA_AMX && !amx)
        isa = LNX_QISA_AVX512VNNI;
    const int panels = isa != LNX_QISA_SCALAR && M > QGEMV_MAX_M;
    const int64_t Mq = amx ? (M + 31) / 32 * 32 : M; /* rows of the quantized activations */
    size_t qbytes = ((size_t)Mq * (size_t)K + 63) / 64 * 64;
    size_t fbytes = ((size_t)Mq * (size_t)nbp * sizeof(float) + 63) / 64 * 64;
    size_t pbytes = panels ? lnx_qpanel_bytes(isa, W->dtype, K) : 0;
    int group = QPANEL_GROUP;
    if (amx) { /* an even number of panels, 2 to 8, in about QAMX_GROUP_BYTES */
        group = (int)(QAMX_GROUP_BYTES / pbytes) & ~1;
        group = group < 2 ? 2 : group > 8 ? 8 : group;
    }
    size_t q16bytes = panels && lnx_qpanel_wide(isa, W->dtype) ? 2 * qbytes : 0;
    /* the arranged activations serve the one-row GEMV (2-4 rows run as 4 x 4 tiles) */
    size_t qnbytes = M == 1 && isa == LNX_QISA_AVX512VNNI && W->dtype == LNX_DT_Q4 ? qbytes : 0;
    size_t bytes = qbytes + 3 * fbytes + (size_t)lnx_pool_size(pool) * (size_t)group * pbytes + q16bytes + qnbytes;
    char *buf = lnx_pool_scratch(pool, bytes), *own = NULL;
    if (!buf)
        buf = own = lnx_amalloc(bytes);
    if (!buf) {
        /* no room for the quantized activations: the products row by row, dequantized */
        float *row = malloc(sizeof(float) * (size_t)(K ? K : 1));
        for (int64_t n = 0; row && n < N; n++) {
            lnx_wmat_row(W, n, row);
            for (int64_t m = 0; m < M; m++) {
                float acc = bias ? bias[n] : 0.0f;
                for (int64_t k = 0; k < K; k++)
                    acc += A[m * lda + k] * row[k];
                C[m * ldc + n] = accumulate ? C[m * ldc + n] + acc : acc;
            }
        }
        free(row);
        return;
    }
    qg_ctx g = { isa, M, A, lda, W, lnx_row_bytes(W->dtype, K), bias, C, ldc, accumulate,
                 (int8_t *)buf, (float *)(buf + qbytes), (float *)(buf + qbytes + fbytes),
                 (int32_t *)(buf + qbytes + 2 * fbytes),
                 qnbytes ? (int8_t *)(buf + bytes - q16bytes - qnbytes) : NULL, nbp,
                 panels ? buf + qbytes + 3 * fbytes : NULL, pbytes,
                 q16bytes ? (int16_t *)(buf + bytes - q16bytes) : NULL, amx, group,
                 lnx_cpu_stream_prefetch() };
    /* the padding of d and s: the Q4 kernels read 8 block values from a super-block's first */
    for (int64_t m = 0; m < M; m++) {
        memset(g.d + m * nbp + nb, 0, 8 * sizeof(float));
        memset(g.s + m * nbp + nb, 0, 8 * sizeof(float));
    }
    if (Mq > M) { /* the AMX tiles' rows past the matrix */
        memset(g.q + M * K, 0, (size_t)(Mq - M) * (size_t)K);
        memset(g.d + M * nbp, 0, sizeof(float) * (size_t)((Mq - M) * nbp));
        memset(g.s + M * nbp, 0, sizeof(float) * (size_t)((Mq - M) * nbp));
    }
    lnx_parallel_for(pool, M, quant_rows, &g);
    const int64_t span = (int64_t)group * LNX_QPANEL_ROWS; /* weight rows per panel block */
    if (amx)
        lnx_parallel_for(pool, (N + span - 1) / span, amx_blocks, &g);
    else if (M <= QGEMV_MAX_M)
        lnx_parallel_for(pool, (N + 3) / 4, gemv_groups, &g);
    else if (panels)
        lnx_parallel_for(pool, (N + span - 1) / span, panel_blocks, &g);
    else
        lnx_parallel_for(pool, (N + QGEMM_ROWS - 1) / QGEMM_ROWS, gemm_blocks, &g);
    lnx_afree(own);
}

void lnx_qgemm(lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W, const float *bias,
               float *C, int64_t ldc, int accumulate)
{
    lnx_qgemm_isa(lnx_qisa_best(), pool, M, A, lda, W, bias, C, ldc, accumulate);
}

void lnx_wmat_row(const lnx_wmat *W, int64_t r, float *out)
{
    const char *row = (const char *)W->data + (size_t)r * lnx_row_bytes(W->dtype, W->cols);
    lnx_dequantize_row(W->dtype, row, W->cols, out);
}
