/* Scaled dot-product attention: query tiles against keys with two float32 GEMMs per tile
 * (scores, then scores x values) for prompts and frames; a per-head streaming kernel for decode
 * steps that reads the cached keys and values (float32, half or 8-bit blocks) directly. */
#include "ops.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/cpu.h"
#include "../base/half.h"
#include "../base/quant.h"
#include "amx.h"
#include "gemm.h"
#include "simd.h"

/* Query rows per tile: the score tile (QTILE x keys floats) stays within a few MiB. */
#define QTILE 256
/* Up to this many queries use the streaming kernel (decode steps, short continuations). */
#define STREAM_MAX_Q 4

/* At least `floats` of the scratch, grown by doubling. */
static float *ws_get(lnx_attn_ws *ws, size_t floats)
{
    const size_t have = ws->bytes / sizeof(float);
    if (ws->p && floats <= have)
        return ws->p;
    size_t cap = have ? have : 4096;
    while (cap < floats)
        cap *= 2;
    return lnx_buf_get(ws, cap * sizeof(float));
}

/* Key range [*beg, *end) of query row i. */
static void key_range(const lnx_attn_args *a, int64_t i, int64_t *beg, int64_t *end)
{
    int64_t p = a->q_pos0 + i;
    *end = a->Tk;
    *beg = 0;
    if (a->causal && p + 1 < *end)
        *end = p + 1;
    if (a->window > 0 && p - a->window + 1 > *beg)
        *beg = p - a->window + 1;
}

/* Bytes of a past row of `elems` values (past_stride: the whole row). */
static size_t past_bytes(const lnx_attn_args *a, int64_t elems)
{
    return lnx_row_bytes(a->past_dtype, elems);
}

/* Row j of a past key or value array as float32 (converted into tmp when half or Q8). */
static const float *past_row(const lnx_attn_args *a, const void *base, int64_t j, int32_t g, float *tmp)
{
    const char *row = (const char *)base + (size_t)j * past_bytes(a, a->past_stride);
    int64_t off = (int64_t)g * a->hd;
    if (a->past_dtype == LNX_DT_F32)
        return (const float *)row + off;
    if (a->past_dtype == LNX_DT_Q8)
        lnx_q8_widen(row, off, a->hd, tmp);
    else
        lnx_f16_to_f32_n((const uint16_t *)row + off, tmp, (size_t)a->hd);
    return tmp;
}

/* Key (or value) j (0 <= j < Tk) of kv head g as float32. */
static const float *key_row(const lnx_attn_args *a, const void *past, const float *cur, int64_t j, int32_t g,
                            float *tmp)
{
    if (j < a->past)
        return past_row(a, past, j, g, tmp);
    return cur + (j - a->past) * a->kv_stride + (int64_t)g * a->hd;
}

/* ---- reference ---- */

lnx_status lnx_attention_ref(const lnx_attn_args *a)
{
    float *s = malloc(sizeof(float) * (size_t)(a->Tk > 0 ? a->Tk : 1));
    float *kt = malloc(sizeof(float) * (size_t)a->hd * 2);
    if (!s || !kt) {
        free(s);
        free(kt);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    int32_t group = a->H / a->KV;
    for (int64_t i = 0; i < a->Tq; i++)
        for (int32_t h = 0; h < a->H; h++) {
            int32_t g = h / group;
            const float *q = a->q + i * a->q_stride + (int64_t)h * a->hd;
            float *o = a->out + i * a->out_stride + (int64_t)h * a->hd;
            int64_t beg, end;
            key_range(a, i, &beg, &end);
            for (int32_t d = 0; d < a->hd; d++)
                o[d] = 0.0f;
            if (end <= beg)
                continue;
            for (int64_t j = beg; j < end; j++) {
                const float *k = key_row(a, a->k_past, a->k, j, g, kt);
                double acc = 0;
                for (int32_t d = 0; d < a->hd; d++)
                    acc += (double)q[d] * k[d];
                s[j - beg] = (float)acc * a->scale;
            }
            lnx_softmax_ref(s, end - beg);
            for (int64_t j = beg; j < end; j++) {
                const float *v = key_row(a, a->v_past, a->v, j, g, kt + a->hd);
                for (int32_t d = 0; d < a->hd; d++)
                    o[d] += s[j - beg] * v[d];
            }
        }
    free(s);
    free(kt);
    return LNX_OK;
}

/* ---- tiles through sgemm ---- */

typedef struct tile_ctx {
    const lnx_attn_args *a;
    int64_t q0, kb;   /* first query row of the tile, first key column of the scores */
    int64_t nk;       /* key columns */
    float *scores;    /* [rows, nk] */
} tile_ctx;

static void tile_softmax(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const tile_ctx *c = p;
    for (int64_t r = begin; r < end; r++) {
        float *row = c->scores + r * c->nk;
        int64_t beg, kend;
        key_range(c->a, c->q0 + r, &beg, &kend);
        beg -= c->kb;
        kend -= c->kb;
        if (beg < 0)
            beg = 0;
        if (kend > c->nk)
            kend = c->nk;
        if (kend <= beg) {
            memset(row, 0, sizeof(float) * (size_t)c->nk);
            continue;
        }
        if (beg > 0)
            memset(row, 0, sizeof(float) * (size_t)beg);
        lnx_softmax(row + beg, kend - beg);
        if (kend < c->nk)
            memset(row + kend, 0, sizeof(float) * (size_t)(c->nk - kend));
    }
}

typedef struct gather_ctx {
    const lnx_attn_args *a;
    int32_t g;
    float *k, *v; /* [Tk, hd] */
} gather_ctx;

static void gather_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const gather_ctx *c = p;
    const lnx_attn_args *a = c->a;
    size_t hd = (size_t)a->hd;
    for (int64_t j = begin; j < end; j++) {
        float *kd = c->k + (size_t)j * hd, *vd = c->v + (size_t)j * hd;
        if (j < a->past) {
            const float *k = past_row(a, a->k_past, j, c->g, kd), *v = past_row(a, a->v_past, j, c->g, vd);
            if (k != kd)
                memcpy(kd, k, hd * sizeof(float));
            if (v != vd)
                memcpy(vd, v, hd * sizeof(float));
        } else {
            memcpy(kd, a->k + (j - a->past) * a->kv_stride + (int64_t)c->g * a->hd, hd * sizeof(float));
            memcpy(vd, a->v + (j - a->past) * a->kv_stride + (int64_t)c->g * a->hd, hd * sizeof(float));
        }
    }
}

/* The tiles of kv head g's query heads: scores, softmax, scores x values. `scores` holds qt x Tk
 * floats; kbuf/vbuf Tk x hd each (used when keys come from a cache or two places). With
 * `pool` the softmax rows are split over it (BLAS then threads itself); without, this runs on one
 * worker with single-threaded BLAS. */
static void head_tiles(lnx_pool *pool, const lnx_attn_args *a, int32_t g, int64_t qt, float *scores, float *kbuf,
                       float *vbuf)
{
    const float *K, *V;
    int64_t ldk;
    if (a->past >= a->Tk && a->past_dtype == LNX_DT_F32) {
        K = (const float *)a->k_past + (int64_t)g * a->hd;
        V = (const float *)a->v_past + (int64_t)g * a->hd;
        ldk = a->past_stride;
    } else if (a->past > 0) {
        gather_ctx gc = { a, g, kbuf, vbuf };
        lnx_parallel_for(pool, a->Tk, gather_rows, &gc);
        K = kbuf;
        V = vbuf;
        ldk = a->hd;
    } else {
        K = a->k + (int64_t)g * a->hd;
        V = a->v + (int64_t)g * a->hd;
        ldk = a->kv_stride;
    }
    int32_t group = a->H / a->KV;
    for (int32_t h = g * group; h < (g + 1) * group; h++)
        for (int64_t q0 = 0; q0 < a->Tq; q0 += (int64_t)qt) {
            int64_t rows = a->Tq - q0 < (int64_t)qt ? a->Tq - q0 : (int64_t)qt;
            /* keys any row of the tile may see */
            int64_t kb0, ke0, kb1, ke1;
            key_range(a, q0, &kb0, &ke0);
            key_range(a, q0 + rows - 1, &kb1, &ke1);
            int64_t kb = kb0 < kb1 ? kb0 : kb1, ke = ke0 > ke1 ? ke0 : ke1;
            float *out = a->out + q0 * a->out_stride + (int64_t)h * a->hd;
            if (ke <= kb) {
                for (int64_t r = 0; r < rows; r++)
                    memset(out + r * a->out_stride, 0, sizeof(float) * (size_t)a->hd);
                continue;
            }
            int64_t nk = ke - kb;
            lnx_sgemm(1, rows, nk, a->hd, a->scale, a->q + q0 * a->q_stride + (int64_t)h * a->hd, a->q_stride,
                      K + kb * ldk, ldk, 0.0f, scores, nk);
            tile_ctx tc = { a, q0, kb, nk, scores };
            lnx_parallel_for(pool, rows, tile_softmax, &tc);
            lnx_sgemm(0, rows, a->hd, nk, 1.0f, scores, nk, V + kb * ldk, ldk, 0.0f, out, a->out_stride);
        }
}

typedef struct heads_ctx {
    const lnx_attn_args *a;
    int64_t qt;
    float *buf;
    size_t per_worker;
} heads_ctx;

static void heads_f32(void *p, int64_t begin, int64_t end, int worker)
{
    const heads_ctx *c = p;
    float *scores = c->buf + (size_t)worker * c->per_worker;
    float *kbuf = scores + (size_t)c->qt * (size_t)c->a->Tk, *vbuf = kbuf + (size_t)c->a->Tk * (size_t)c->a->hd;
    for (int64_t g = begin; g < end; g++)
        head_tiles(NULL, c->a, (int32_t)g, c->qt, scores, kbuf, vbuf);
}

static lnx_status attention_tiles(lnx_pool *pool, const lnx_attn_args *a, lnx_attn_ws *ws)
{
    int64_t qt = a->Tq < QTILE ? a->Tq : QTILE;
    int gather = a->past > 0 && !(a->past >= a->Tk && a->past_dtype == LNX_DT_F32);
    size_t per = (size_t)qt * (size_t)a->Tk + (gather ? 2 * (size_t)a->Tk * (size_t)a->hd : 0);
    per = (per + 15) & ~(size_t)15;
    /* heads on separate workers with single-threaded BLAS when there are enough of them */
    int serial = a->KV >= lnx_pool_size(pool) ? lnx_blas_serial_enter(pool) : 0;
    int workers = serial ? lnx_pool_size(pool) : 1;
    float *buf = ws_get(ws, per * (size_t)workers);
    if (!buf) {
        lnx_blas_serial_leave(serial);
        return lnx_error(LNX_E_NOMEM, "out of memory for attention over %lld keys", (long long)a->Tk);
    }
    if (serial) {
        heads_ctx hc = { a, qt, buf, per };
        lnx_parallel_for(pool, a->KV, heads_f32, &hc);
    } else {
        float *kbuf = buf + (size_t)qt * (size_t)a->Tk;
        for (int32_t g = 0; g < a->KV; g++)
            head_tiles(pool, a, g, qt, buf, kbuf, kbuf + (size_t)a->Tk * (size_t)a->hd);
    }
    lnx_blas_serial_leave(serial);
    return LNX_OK;
}

/* ---- tiles through the bf16 backend ----
 *
 * One task per key/value head (grouped query heads share it), each on one worker from start to
 * end so its working set stays in that core's cache: the head's keys and values are laid out as
 * dense bf16 rows, then per query tile S = Q K^T and O = P V run through the bf16 backend
 * single-threaded, with P = exp(scale (S - max)) in bf16 and the 1/sum applied to O. */

/* Query rows per tile: as many as keep a worker's scores and probabilities within about 4 MiB
 * (a whole 577-token frame in one tile: two oneDNN calls per head, whose per-call cost matters),
 * at least 64 and at most 1024. */
#define BF16_TILE_BYTES ((size_t)4 << 20)
#define BF16_QTILE_MIN 64
#define BF16_QTILE_MAX 1024

static int64_t bf16_qtile(const lnx_attn_args *a)
{
    int64_t qt = (int64_t)(BF16_TILE_BYTES / ((size_t)a->Tk * 6));
    qt = qt < BF16_QTILE_MIN ? BF16_QTILE_MIN : qt > BF16_QTILE_MAX ? BF16_QTILE_MAX : qt;
    return qt < a->Tq ? qt : a->Tq;
}

typedef struct bf16_ctx {
    const lnx_attn_args *a;
    char *scratch;        /* per worker */
    size_t per_worker;
    int failed;
} bf16_ctx;

/* The next `bytes` of a worker's scratch, 64-byte aligned. */
static void *carve(char **buf, size_t bytes)
{
    void *p = *buf;
    *buf += (bytes + 63) & ~(size_t)63;
    return p;
}

/* Keys any row of the query tile [q0, q0 + rows) may see: [*k_beg, *k_beg + *nk), at least one
 * (fully masked rows are computed, then zeroed by tile_probs). */
static void tile_keys(const lnx_attn_args *a, int64_t q0, int64_t rows, int64_t *k_beg, int64_t *nk)
{
    int64_t kb0, ke0, kb1, ke1;
    key_range(a, q0, &kb0, &ke0);
    key_range(a, q0 + rows - 1, &kb1, &ke1);
    int64_t beg = kb0 < kb1 ? kb0 : kb1, end = ke0 > ke1 ? ke0 : ke1;
    if (end <= beg)
        end = beg + 1;
    *k_beg = beg;
    *nk = end - beg;
}

/* Row r of the tile's scores (sbuf, nk per row) -> unnormalised bf16 probabilities in pb (row
 * stride ldp; its first `clear` values zeroed around the visible keys), inv[r] = 1 / their sum
 * (0 for a fully masked row). */
static void tile_probs(const lnx_attn_args *a, int64_t q0, int64_t rows, int64_t k_beg, int64_t nk, float *sbuf,
                       uint16_t *pb, int64_t ldp, int64_t clear, float *inv)
{
    for (int64_t r = 0; r < rows; r++) {
        float *row = sbuf + (size_t)r * (size_t)nk;
        uint16_t *prow = pb + (size_t)r * (size_t)ldp;
        int64_t beg, kend;
        key_range(a, q0 + r, &beg, &kend);
        beg = beg - k_beg < 0 ? 0 : beg - k_beg;
        kend = kend - k_beg > nk ? nk : kend - k_beg;
        if (kend <= beg) {
            memset(prow, 0, sizeof(uint16_t) * (size_t)clear);
            inv[r] = 0.0f;
            continue;
        }
        /* zeros around the visible keys only: the row itself is written once */
        memset(prow, 0, sizeof(uint16_t) * (size_t)beg);
        if (clear > kend)
            memset(prow + kend, 0, sizeof(uint16_t) * (size_t)(clear - kend));
        inv[r] = 1.0f / lnx_exp_bf16(row + beg, kend - beg, a->scale, prow + beg);
    }
}

/* The tile's output rows of head h: obuf (row stride ldo) times inv. */
static void tile_out(const lnx_attn_args *a, int64_t q0, int64_t rows, int32_t h, const float *obuf, int64_t ldo,
                     const float *inv)
{
    for (int64_t r = 0; r < rows; r++) {
        float *o = a->out + (q0 + r) * a->out_stride + (int64_t)h * a->hd;
        const float *src = obuf + (size_t)r * (size_t)ldo;
        for (int32_t d = 0; d < a->hd; d++)
            o[d] = src[d] * inv[r];
    }
}

/* Bytes head_bf16 carves for a tile height of qt. */
static size_t head_bf16_bytes(size_t Tk, size_t hd, size_t qt)
{
    size_t parts[7] = { Tk * hd * 2, Tk * hd * 2, qt * hd * 2, qt * Tk * 2, qt * Tk * 4, qt * hd * 4, qt * 4 };
    size_t total = 0;
    for (int i = 0; i < 7; i++)
        total += (parts[i] + 63) & ~(size_t)63;
    return total;
}

static int head_bf16(const lnx_attn_args *a, int32_t g, char *buf)
{
    const size_t Tk = (size_t)a->Tk, hd = (size_t)a->hd;
    const size_t qt = (size_t)bf16_qtile(a);
    uint16_t *kb = carve(&buf, Tk * hd * 2), *vb = carve(&buf, Tk * hd * 2);
    uint16_t *qb = carve(&buf, qt * hd * 2), *pb = carve(&buf, qt * Tk * 2);
    float *sbuf = carve(&buf, qt * Tk * 4), *obuf = carve(&buf, qt * hd * 4), *inv = carve(&buf, qt * 4);
    float tmp[512];
    for (int64_t j = 0; j < a->Tk; j++) {
        lnx_round_bf16_n(key_row(a, a->k_past, a->k, j, g, tmp), kb + (size_t)j * hd, hd);
        lnx_round_bf16_n(key_row(a, a->v_past, a->v, j, g, tmp), vb + (size_t)j * hd, hd);
    }
    int32_t group = a->H / a->KV;
    for (int32_t h = g * group; h < (g + 1) * group; h++)
        for (int64_t q0 = 0; q0 < a->Tq; q0 += (int64_t)qt) {
            int64_t rows = a->Tq - q0 < (int64_t)qt ? a->Tq - q0 : (int64_t)qt, k_beg, nk;
            tile_keys(a, q0, rows, &k_beg, &nk);
            for (int64_t r = 0; r < rows; r++)
                lnx_round_bf16_n(a->q + (q0 + r) * a->q_stride + (int64_t)h * a->hd, qb + (size_t)r * hd, hd);
            lnx_bmm qk = { 1, rows, nk, a->hd, qb, a->hd, 0, kb + (size_t)k_beg * hd, a->hd, 0, 1, sbuf, nk, 0 };
            if (lnx_gemm_bf16_bmm(a->gemm, NULL, &qk))
                return -1;
            tile_probs(a, q0, rows, k_beg, nk, sbuf, pb, nk, nk, inv);
            lnx_bmm pv = { 1, rows, a->hd, nk, pb, nk, 0, vb + (size_t)k_beg * hd, a->hd, 0, 0, obuf, a->hd, 0 };
            if (lnx_gemm_bf16_bmm(a->gemm, NULL, &pv))
                return -1;
            tile_out(a, q0, rows, h, obuf, a->hd, inv);
        }
    return 0;
}

/* ---- the same on AMX tiles ----
 *
 * Per kv head, its keys and values are rounded to bf16 and packed once into the tile layouts
 * (lnx_amx_pack_keys / _values); then per query tile: scores against the tile's key range (from
 * a 32-aligned start, the keys outside each row's range masked by tile_probs), probabilities in
 * bf16, and their product with the packed values. Buffers are padded to whole tiles with zeros. */

/* Query rows per tile on AMX: the tile's scores (float32) and probabilities (bf16) stay in L2;
 * 128 rows measured 5-6% faster than whole 577-row frames on 8-frame CLIP batches. */
#define AMX_QTILE_MAX 128

static int64_t amx_qtile(const lnx_attn_args *a)
{
    int64_t qt = bf16_qtile(a);
    return qt < AMX_QTILE_MAX ? qt : AMX_QTILE_MAX;
}

static size_t ceil16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static size_t ceil32(size_t n)
{
    return (n + 31) & ~(size_t)31;
}

/* Bytes head_amx carves for a tile height of qt. */
static size_t head_amx_bytes(size_t Tk, size_t hd, size_t qt)
{
    size_t Tkp = ceil32(Tk) + 32, qtp = ceil32(qt), hdp = ceil32(hd);
    size_t parts[8] = { Tk * hd * 2, lnx_amx_keys_bytes((int64_t)Tk, (int64_t)hd),
                        lnx_amx_values_bytes((int64_t)Tk, (int64_t)hd), qtp * hdp * 2, qtp * Tkp * 4, qtp * Tkp * 2,
                        qtp * hdp * 4, qt * 4 };
    size_t total = 0;
    for (int i = 0; i < 8; i++)
        total += (parts[i] + 63) & ~(size_t)63;
    return total;
}

static int head_amx(const lnx_attn_args *a, int32_t g, char *buf)
{
    const size_t Tk = (size_t)a->Tk, hd = (size_t)a->hd, qt = (size_t)amx_qtile(a);
    const size_t Tkp = ceil32(Tk) + 32, qtp = ceil32(qt), hdp = ceil32(hd);
    const int64_t steps = (int64_t)hdp / 32, vsteps = (int64_t)ceil32(Tk) / 32;
    uint16_t *rowsb = carve(&buf, Tk * hd * 2);
    uint16_t *kp = carve(&buf, lnx_amx_keys_bytes(a->Tk, a->hd)), *vp = carve(&buf, lnx_amx_values_bytes(a->Tk, a->hd));
    uint16_t *qb = carve(&buf, qtp * hdp * 2);
    float *sbuf = carve(&buf, qtp * Tkp * 4);
    uint16_t *pb = carve(&buf, qtp * Tkp * 2);
    float *obuf = carve(&buf, qtp * hdp * 4), *inv = carve(&buf, qt * 4);
    float tmp[512];
    for (int64_t j = 0; j < a->Tk; j++)
        lnx_round_bf16_n(key_row(a, a->k_past, a->k, j, g, tmp), rowsb + (size_t)j * hd, hd);
    lnx_amx_pack_keys(rowsb, a->hd, a->Tk, a->hd, kp);
    for (int64_t j = 0; j < a->Tk; j++)
        lnx_round_bf16_n(key_row(a, a->v_past, a->v, j, g, tmp), rowsb + (size_t)j * hd, hd);
    lnx_amx_pack_values(rowsb, a->hd, a->Tk, a->hd, vp);
    memset(qb, 0, qtp * hdp * 2); /* the columns past hd stay zero */
    int32_t group = a->H / a->KV;
    for (int32_t h = g * group; h < (g + 1) * group; h++)
        for (int64_t q0 = 0; q0 < a->Tq; q0 += (int64_t)qt) {
            int64_t rows = a->Tq - q0 < (int64_t)qt ? a->Tq - q0 : (int64_t)qt, k_beg, nk;
            tile_keys(a, q0, rows, &k_beg, &nk);
            /* from the 32-aligned key before the range (a whole step of the packed values) to the
             * range's end in whole groups of 16 */
            const int64_t kb0 = k_beg & ~(int64_t)31, g0 = kb0 / 16, g1 = (k_beg + nk + 15) / 16;
            const int64_t nks = 16 * (g1 - g0), rows16 = (int64_t)ceil16((size_t)rows);
            for (int64_t r = 0; r < rows; r++)
                lnx_round_bf16_n(a->q + (q0 + r) * a->q_stride + (int64_t)h * a->hd, qb + (size_t)r * hdp, hd);
            if (rows < (int64_t)qtp) /* a shorter last tile: rows of the previous one after it */
                memset(qb + (size_t)rows * hdp, 0, (qtp - (size_t)rows) * hdp * 2);
            lnx_amx_scores(qb, (int64_t)hdp, rows16, kp, steps, g0, g1, sbuf, nks);
            tile_probs(a, q0, rows, kb0, nks, sbuf, pb, (int64_t)Tkp, (int64_t)ceil32((size_t)nks), inv);
            if (rows < (int64_t)qtp)
                memset(pb + (size_t)rows * Tkp, 0, (qtp - (size_t)rows) * Tkp * 2);
            lnx_amx_packed(pb, (int64_t)Tkp, (int64_t)ceil32((size_t)rows), vp, vsteps, kb0 / 32,
                           (int64_t)ceil32((size_t)nks) / 32, (int64_t)hdp, obuf, (int64_t)hdp);
            tile_out(a, q0, rows, h, obuf, (int64_t)hdp, inv);
        }
    return 0;
}

static void heads_amx(void *p, int64_t begin, int64_t end, int worker)
{
    bf16_ctx *c = p;
    for (int64_t g = begin; g < end && !c->failed; g++)
        if (head_amx(c->a, (int32_t)g, c->scratch + (size_t)worker * c->per_worker))
            c->failed = 1;
}

static void heads_bf16(void *p, int64_t begin, int64_t end, int worker)
{
    bf16_ctx *c = p;
    for (int64_t g = begin; g < end && !c->failed; g++)
        if (head_bf16(c->a, (int32_t)g, c->scratch + (size_t)worker * c->per_worker))
            c->failed = 1;
}

/* 0 on success, -1 when the backend declined (the caller recomputes everything in float32). */
static int attention_tiles_bf16(lnx_pool *pool, const lnx_attn_args *a, lnx_attn_ws *ws)
{
    if (a->hd > 512)
        return -1;
    const int amx = lnx_amx_available();
    size_t per = amx ? head_amx_bytes((size_t)a->Tk, (size_t)a->hd, (size_t)amx_qtile(a))
                     : head_bf16_bytes((size_t)a->Tk, (size_t)a->hd, (size_t)bf16_qtile(a));
    char *buf = (char *)ws_get(ws, (per * (size_t)lnx_pool_size(pool) + 3) / 4);
    if (!buf)
        return -1;
    bf16_ctx c = { a, buf, per, 0 };
    lnx_parallel_for(pool, a->KV, amx ? heads_amx : heads_bf16, &c);
    return c.failed ? -1 : 0;
}

/* ---- streaming kernel for a few queries ----
 *
 * Per query row: the positions are split over the workers, each walking its range of cached rows
 * in order (every head of a position at once: the reads stay sequential, where one head's slices
 * lie a cache row apart on pages of their own); softmax per head; the weighted values again by
 * position ranges into per-worker partial outputs, summed at the end. */

typedef struct stream_ctx {
    const lnx_attn_args *a;
    int64_t i;        /* query row */
    int64_t beg, n;   /* its keys: beg .. beg + n */
    float *s;         /* [H][ld] scores, then probabilities */
    int64_t ld;
    float *part;      /* [workers][H * hd] partial outputs */
} stream_ctx;

/* Cached (or current) position j's keys, or values: its row of kv-head slices, of dtype *dt. */
static const void *kv_row(const lnx_attn_args *a, int values, int64_t j, lnx_dtype *dt)
{
    if (j < a->past) {
        *dt = a->past_dtype;
        const char *base = values ? a->v_past : a->k_past;
        return base + (size_t)j * past_bytes(a, a->past_stride);
    }
    *dt = LNX_DT_F32;
    return (values ? a->v : a->k) + (j - a->past) * a->kv_stride;
}

/* How many positions ahead the scans ask for their rows: one core's sequential reads reached
 * 9-13 GB/s on the hardware prefetcher alone, ~14 GB/s with this. */
#define KV_AHEAD 3

static void prefetch_kv(const lnx_attn_args *a, int values, int64_t j, int64_t end)
{
    if (KV_AHEAD == 0 || j >= end)
        return;
    lnx_dtype dt;
    const char *row = kv_row(a, values, j, &dt);
    size_t bytes = lnx_row_bytes(dt, (int64_t)a->KV * a->hd);
    for (size_t b = 0; b < bytes; b += 64)
        __builtin_prefetch(row + b, 0, 3);
}

static void stream_scores(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const stream_ctx *c = p;
    const lnx_attn_args *a = c->a;
    const float *q = a->q + c->i * a->q_stride;
    for (int64_t t = begin; t < end; t++) {
        lnx_dtype dt;
        prefetch_kv(a, 0, c->beg + t + KV_AHEAD, c->beg + end);
        const void *row = kv_row(a, 0, c->beg + t, &dt);
        lnx_scores_heads(row, dt, q, a->H, a->H / a->KV, a->hd, a->scale, c->s + t, c->ld);
    }
}

static void stream_softmax(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const stream_ctx *c = p;
    for (int64_t h = begin; h < end; h++)
        lnx_softmax(c->s + h * c->ld, c->n);
}

static void stream_values(void *p, int64_t begin, int64_t end, int worker)
{
    const stream_ctx *c = p;
    const lnx_attn_args *a = c->a;
    float *o = c->part + (size_t)worker * (size_t)a->H * (size_t)a->hd;
    const int32_t group = a->H / a->KV;
    int64_t t = begin;
    while (t < end) {
        lnx_dtype dt[4];
        const void *rows[4];
        prefetch_kv(a, 1, c->beg + t + KV_AHEAD, c->beg + end);
        rows[0] = kv_row(a, 1, c->beg + t, &dt[0]);
        int n = 1;
        /* up to four positions stored in the same dtype at once (the rows need not be adjacent) */
        while (n < 4 && t + n < end) {
            rows[n] = kv_row(a, 1, c->beg + t + n, &dt[n]);
            if (dt[n] != dt[0])
                break;
            prefetch_kv(a, 1, c->beg + t + n + KV_AHEAD, c->beg + end);
            n++;
        }
        if (n == 4)
            lnx_wsum_heads4(rows, dt[0], c->s + t, c->ld, a->H, group, a->hd, o);
        else
            for (int r = 0; r < n; r++)
                lnx_wsum_heads(rows[r], dt[r], c->s + t + r, c->ld, a->H, group, a->hd, o);
        t += n;
    }
}

static lnx_status attention_stream(lnx_pool *pool, const lnx_attn_args *a, lnx_attn_ws *ws)
{
    const int workers = lnx_pool_size(pool);
    const size_t ld = ((size_t)a->Tk + 15) & ~(size_t)15, hq = (size_t)a->H * (size_t)a->hd;
    float *buf = ws_get(ws, (size_t)a->H * ld + (size_t)workers * hq);
    if (!buf)
        return lnx_error(LNX_E_NOMEM, "out of memory for attention over %lld keys", (long long)a->Tk);
    for (int64_t i = 0; i < a->Tq; i++) {
        float *out = a->out + i * a->out_stride;
        int64_t beg, end;
        key_range(a, i, &beg, &end);
        if (end <= beg) {
            for (int32_t h = 0; h < a->H; h++)
                memset(out + (int64_t)h * a->hd, 0, sizeof(float) * (size_t)a->hd);
            continue;
        }
        stream_ctx c = { a, i, beg, end - beg, buf, (int64_t)ld, buf + (size_t)a->H * ld };
        memset(c.part, 0, sizeof(float) * (size_t)workers * hq);
        lnx_parallel_for(pool, c.n, stream_scores, &c);
        lnx_parallel_for(pool, a->H, stream_softmax, &c);
        lnx_parallel_for(pool, c.n, stream_values, &c);
        for (int32_t h = 0; h < a->H; h++) {
            float *oh = out + (int64_t)h * a->hd;
            const float *p0 = c.part + (size_t)h * (size_t)a->hd;
            memcpy(oh, p0, sizeof(float) * (size_t)a->hd);
            for (int w = 1; w < workers; w++)
                for (int32_t d = 0; d < a->hd; d++)
                    oh[d] += p0[(size_t)w * hq + (size_t)d];
        }
    }
    return LNX_OK;
}

lnx_status lnx_attention(lnx_pool *pool, const lnx_attn_args *a, lnx_attn_ws *ws)
{
    if (a->Tq <= 0)
        return LNX_OK;
    lnx_attn_ws local = { NULL, 0 };
    lnx_attn_ws *w = ws ? ws : &local;
    lnx_status st;
    if (a->Tq <= STREAM_MAX_Q)
        st = attention_stream(pool, a, w);
    else if (lnx_gemm_ctx_precision(a->gemm) == LNX_PRECISION_BF16 && attention_tiles_bf16(pool, a, w) == 0)
        st = LNX_OK;
    else
        st = attention_tiles(pool, a, w);
    lnx_buf_free(&local);
    return st;
}
