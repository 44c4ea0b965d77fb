/* GEMM contexts: the precision choice and the bf16 backend (oneDNN matmul).
 *
 * BF16: C[M,N] (+)= bf16(A)[M,K] x W^T with float32 accumulation and output. The weights are
 * handed to oneDNN as they are stored ([N,K] row-major is the matmul's B[K,N] with strides
 * {1, K}) when they are BF16, so the bf16 path adds no copy of a 7B model; oneDNN packs the tiles
 * it needs while it runs. Weights stored as F16/F32 are narrowed to bf16 once and cached here,
 * keyed by their data pointer. The rounded activations live in scratch buffers the context
 * keeps for reuse.
 *
 * Threads: each product is split over the caller's pool (output columns, or the batch) and every
 * worker runs its share through oneDNN single-threaded (lnx_omp_single_enter: the thread's own
 * OpenMP thread count is 1 for the call). oneDNN's own OpenMP workers would otherwise keep spinning after each
 * product and take the cores from the pool's next loop (softmax, norms, conversions): measured
 * 1.5-2x slower end to end on 2 cores. */
#include "gemm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/cpu.h"
#include "../base/half.h"
#include "amx.h"
#include "ops.h"
#include "simd.h"

#ifdef LNX_HAVE_ONEDNN
#include <dnnl.h>
#endif

/* Below this many rows the GEMV (which reads the stored weights directly) is used: matching
 * lnx_gemm's own threshold keeps decode identical in both precisions. */
#define BF16_MIN_M 5

typedef struct narrowed {
    const void *key;
    uint16_t *data;
} narrowed;

typedef struct scratch {
    uint16_t *buf;
    size_t elems;
    int busy;
} scratch;

#define MAX_SCRATCH 32

struct lnx_gemm_ctx {
    int32_t precision;
#ifdef LNX_HAVE_ONEDNN
    dnnl_engine_t engine;
#endif
    pthread_mutex_t lock;
    narrowed *narrow; /* open addressing, cap a power of two */
    size_t n_narrow, cap_narrow;
    scratch scratch[MAX_SCRATCH];
};

int lnx_gemm_bf16_available(const char **why)
{
#ifdef LNX_HAVE_ONEDNN
    if (!(lnx_cpu_flags() & LNX_CPU_AVX512BF16)) {
        if (why)
            *why = "the CPU has no AVX512-BF16 instructions";
        return 0;
    }
    return 1;
#else
    if (why)
        *why = "this build has no oneDNN (meson option onednn)";
    return 0;
#endif
}

lnx_status lnx_gemm_ctx_create(lnx_gemm_ctx **out, int32_t precision)
{
    *out = NULL;
    const char *why = NULL;
    if (precision < LNX_PRECISION_AUTO || precision > LNX_PRECISION_BF16)
        return lnx_error(LNX_E_INVALID, "precision %d is not one of auto (0), f32 (1), bf16 (2)", (int)precision);
    int bf16 = lnx_gemm_bf16_available(&why);
    if (precision == LNX_PRECISION_BF16 && !bf16)
        return lnx_error(LNX_E_UNSUPPORTED,
                         "bf16 precision is not available: %s (emulating bf16 products would be slower than the "
                         "float32 path, which reads bf16 weights directly: use precision f32 or auto, or quantized "
                         "weights for less memory traffic)",
                         why);
    lnx_gemm_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    c->precision = precision == LNX_PRECISION_F32 || !bf16 ? LNX_PRECISION_F32 : LNX_PRECISION_BF16;
#ifdef LNX_HAVE_ONEDNN
    if (c->precision == LNX_PRECISION_BF16 && dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success) {
        lnx_gemm_ctx_free(c);
        if (precision == LNX_PRECISION_BF16)
            return lnx_error(LNX_E_UNSUPPORTED, "bf16 precision is not available: oneDNN has no CPU engine");
        return lnx_gemm_ctx_create(out, LNX_PRECISION_F32);
    }
#endif
    *out = c;
    return LNX_OK;
}

void lnx_gemm_ctx_free(lnx_gemm_ctx *ctx)
{
    if (!ctx)
        return;
#ifdef LNX_HAVE_ONEDNN
    if (ctx->engine)
        dnnl_engine_destroy(ctx->engine);
#endif
    for (size_t i = 0; i < ctx->cap_narrow; i++)
        lnx_afree(ctx->narrow[i].data);
    free(ctx->narrow);
    for (int i = 0; i < MAX_SCRATCH; i++)
        lnx_afree(ctx->scratch[i].buf);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

int32_t lnx_gemm_ctx_precision(const lnx_gemm_ctx *ctx)
{
    return ctx ? ctx->precision : LNX_PRECISION_F32;
}

#ifdef LNX_HAVE_ONEDNN

/* ---- context-held buffers ---- */

static size_t hash_ptr(const void *p, size_t cap)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

static int narrow_insert(lnx_gemm_ctx *c, const void *key, uint16_t *data)
{
    if ((c->n_narrow + 1) * 2 > c->cap_narrow) {
        size_t cap = c->cap_narrow ? c->cap_narrow * 2 : 64;
        narrowed *t = calloc(cap, sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < c->cap_narrow; i++)
            if (c->narrow[i].key) {
                size_t h = hash_ptr(c->narrow[i].key, cap);
                while (t[h].key)
                    h = (h + 1) & (cap - 1);
                t[h] = c->narrow[i];
            }
        free(c->narrow);
        c->narrow = t;
        c->cap_narrow = cap;
    }
    size_t h = hash_ptr(key, c->cap_narrow);
    while (c->narrow[h].key)
        h = (h + 1) & (c->cap_narrow - 1);
    c->narrow[h].key = key;
    c->narrow[h].data = data;
    c->n_narrow++;
    return 0;
}

static uint16_t *narrow_find(const lnx_gemm_ctx *c, const void *key)
{
    if (!c->cap_narrow)
        return NULL;
    for (size_t h = hash_ptr(key, c->cap_narrow); c->narrow[h].key; h = (h + 1) & (c->cap_narrow - 1))
        if (c->narrow[h].key == key)
            return c->narrow[h].data;
    return NULL;
}

/* The weight as bf16: the stored data, or a cached narrowed copy (made on first use). */
static const uint16_t *bf16_weights(lnx_gemm_ctx *c, const lnx_wmat *W)
{
    if (W->dtype == LNX_DT_BF16)
        return W->data;
    pthread_mutex_lock(&c->lock);
    uint16_t *d = narrow_find(c, W->data);
    if (!d) {
        size_t n = (size_t)W->rows * (size_t)W->cols;
        d = lnx_amalloc(n * sizeof(uint16_t));
        float *row = d ? lnx_amalloc((size_t)W->cols * sizeof(float)) : NULL;
        if (row) {
            size_t es = lnx_dtype_size(W->dtype);
            for (int64_t r = 0; r < W->rows; r++) {
                lnx_widen(W->dtype, (const char *)W->data + (size_t)r * (size_t)W->cols * es, row, (size_t)W->cols);
                lnx_f32_to_bf16_n(row, d + (size_t)r * (size_t)W->cols, (size_t)W->cols);
            }
        }
        lnx_afree(row);
        if (!row || narrow_insert(c, W->data, d)) {
            lnx_afree(d);
            d = NULL;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return d;
}

static scratch *scratch_take(lnx_gemm_ctx *c, size_t elems)
{
    scratch *got = NULL;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < MAX_SCRATCH && !got; i++)
        if (!c->scratch[i].busy && c->scratch[i].elems >= elems)
            got = &c->scratch[i];
    for (int i = 0; i < MAX_SCRATCH && !got; i++)
        if (!c->scratch[i].busy)
            got = &c->scratch[i];
    if (got)
        got->busy = 1;
    pthread_mutex_unlock(&c->lock);
    if (got && got->elems < elems) {
        lnx_afree(got->buf);
        got->buf = lnx_amalloc(elems * sizeof(uint16_t));
        got->elems = got->buf ? elems : 0;
    }
    if (got && !got->buf) {
        pthread_mutex_lock(&c->lock);
        got->busy = 0;
        pthread_mutex_unlock(&c->lock);
        got = NULL;
    }
    return got;
}

static void scratch_give(lnx_gemm_ctx *c, scratch *s)
{
    pthread_mutex_lock(&c->lock);
    s->busy = 0;
    pthread_mutex_unlock(&c->lock);
}

/* ---- activations to bf16 ---- */

typedef struct round_ctx {
    const float *A;
    int64_t lda, K;
    uint16_t *dst;
    int64_t ldd; /* >= K: the columns K .. ldd are zeroed */
} round_ctx;

static void round_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const round_ctx *r = p;
    for (int64_t m = begin; m < end; m++) {
        lnx_round_bf16_n(r->A + m * r->lda, r->dst + m * r->ldd, (size_t)r->K);
        if (r->ldd > r->K)
            memset(r->dst + m * r->ldd + r->K, 0, sizeof(uint16_t) * (size_t)(r->ldd - r->K));
    }
}

/* ---- the matmul ---- */

#define DNNL_TRY(x)                 \
    do {                            \
        if ((x) != dnnl_success)    \
            goto fail;              \
    } while (0)

/* C[b] (+)= A[b] x B[b] (+ bias) for b < m->batch: A, B bf16, C float32, arbitrary strides. */
/* The oneDNN form of an activation: quick_gelu and silu are swish (x sigmoid(alpha x)). */
static int eltwise_of(int act, dnnl_alg_kind_t *alg, float *alpha)
{
    switch (act) {
    case LNX_ACT_QUICK_GELU:
        *alg = dnnl_eltwise_swish;
        *alpha = 1.702f;
        return 1;
    case LNX_ACT_SILU:
        *alg = dnnl_eltwise_swish;
        *alpha = 1.0f;
        return 1;
    case LNX_ACT_GELU:
        *alg = dnnl_eltwise_gelu_erf;
        return 1;
    case LNX_ACT_GELU_TANH:
        *alg = dnnl_eltwise_gelu_tanh;
        return 1;
    case LNX_ACT_RELU:
        *alg = dnnl_eltwise_relu;
        return 1;
    }
    return 0;
}

/* act: an lnx_act applied to the output as a oneDNN post-op, or -1 for none. */
static int run_matmul(lnx_gemm_ctx *c, const lnx_bmm *m, const float *bias, int accumulate, int act)
{
    int ok = 0;
    dnnl_memory_desc_t a_md, w_md, b_md, c_md;
    dnnl_matmul_desc_t op;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t a_m = NULL, w_m = NULL, b_m = NULL, c_m = NULL, sp_m = NULL;
    dnnl_stream_t stream = NULL;
    scratch *sp = NULL;
    dnnl_dims_t a_dims = { m->batch, m->M, m->K }, a_str = { m->sa, m->lda, 1 };
    dnnl_dims_t w_dims = { m->batch, m->K, m->N }, w_str = { m->sb, m->b_trans ? 1 : m->ldb, m->b_trans ? m->ldb : 1 };
    dnnl_dims_t b_dims = { 1, 1, m->N }, b_str = { m->N, m->N, 1 };
    dnnl_dims_t c_dims = { m->batch, m->M, m->N }, c_str = { m->sc, m->ldc, 1 };
    /* a single product as 2D: oneDNN 2.6 picks its AMX kernels for 2D transposed weights only */
    int nd = m->batch == 1 ? 2 : 3, o = 3 - nd;
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&a_md, nd, a_dims + o, dnnl_bf16, a_str + o));
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&w_md, nd, w_dims + o, dnnl_bf16, w_str + o));
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&b_md, nd, b_dims + o, dnnl_f32, b_str + o));
    DNNL_TRY(dnnl_memory_desc_init_by_strides(&c_md, nd, c_dims + o, dnnl_f32, c_str + o));
    DNNL_TRY(dnnl_matmul_desc_init(&op, &a_md, &w_md, bias ? &b_md : NULL, &c_md));
    DNNL_TRY(dnnl_primitive_attr_create(&attr));
    /* the scratchpad comes from the context's reusable buffers (no allocation per product) */
    DNNL_TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (accumulate || act >= 0) {
        DNNL_TRY(dnnl_post_ops_create(&po));
        if (accumulate)
            DNNL_TRY(dnnl_post_ops_append_sum(po, 1.0f));
        if (act >= 0) {
            dnnl_alg_kind_t alg;
            float alpha = 0.0f;
            if (!eltwise_of(act, &alg, &alpha))
                goto fail;
            DNNL_TRY(dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, 0.0f));
        }
        DNNL_TRY(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    DNNL_TRY(dnnl_primitive_desc_create(&pd, &op, attr, c->engine, NULL));
    DNNL_TRY(dnnl_primitive_create(&prim, pd));
    DNNL_TRY(dnnl_memory_create(&a_m, &a_md, c->engine, (void *)m->A));
    DNNL_TRY(dnnl_memory_create(&w_m, &w_md, c->engine, (void *)m->B));
    DNNL_TRY(dnnl_memory_create(&c_m, &c_md, c->engine, m->C));
    if (bias)
        DNNL_TRY(dnnl_memory_create(&b_m, &b_md, c->engine, (void *)bias));
    const dnnl_memory_desc_t *sp_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sp_bytes = sp_md ? dnnl_memory_desc_get_size(sp_md) : 0;
    if (sp_bytes) {
        sp = scratch_take(c, (sp_bytes + 1) / 2);
        if (!sp)
            goto fail;
        DNNL_TRY(dnnl_memory_create(&sp_m, sp_md, c->engine, sp->buf));
    }
    DNNL_TRY(dnnl_stream_create(&stream, c->engine, dnnl_stream_default_flags));
    dnnl_exec_arg_t args[5] = { { DNNL_ARG_SRC, a_m }, { DNNL_ARG_WEIGHTS, w_m }, { DNNL_ARG_DST, c_m } };
    int nargs = 3;
    if (bias)
        args[nargs++] = (dnnl_exec_arg_t){ DNNL_ARG_BIAS, b_m };
    if (sp_m)
        args[nargs++] = (dnnl_exec_arg_t){ DNNL_ARG_SCRATCHPAD, sp_m };
    DNNL_TRY(dnnl_primitive_execute(prim, stream, nargs, args));
    DNNL_TRY(dnnl_stream_wait(stream));
    ok = 1;
fail:
    dnnl_memory_destroy(sp_m);
    if (sp)
        scratch_give(c, sp);
    if (stream)
        dnnl_stream_destroy(stream);
    dnnl_memory_destroy(a_m);
    dnnl_memory_destroy(w_m);
    dnnl_memory_destroy(b_m);
    dnnl_memory_destroy(c_m);
    if (prim)
        dnnl_primitive_destroy(prim);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return ok ? 0 : -1;
}

/* One share of a product, run single-threaded in the calling worker. */
typedef struct split_ctx {
    lnx_gemm_ctx *c;
    const lnx_bmm *m;
    const float *bias;
    int accumulate;
    int act;
    int by_batch;      /* split the batch */
    int by_cols;       /* else split the output columns (linear products), else the rows */
    int64_t parts;
    /* float32 fallback of a failed column share (linear products only) */
    const float *A32;
    int64_t lda32;
    const lnx_wmat *W;
    int failed;
} split_ctx;

static void split_run(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    split_ctx *s = p;
    int saved = lnx_omp_single_enter();
    for (int64_t part = begin; part < end; part++) {
        lnx_bmm sub = *s->m;
        int64_t total = s->by_batch ? s->m->batch : s->by_cols ? s->m->N : s->m->M;
        /* column shares in multiples of 64 and row shares in multiples of 32 (oneDNN's blocking),
         * batch shares in units */
        int64_t unit = s->by_batch ? 1 : s->by_cols ? 64 : 32, units = (total + unit - 1) / unit;
        int64_t u0 = units * part / s->parts, u1 = units * (part + 1) / s->parts;
        int64_t i0 = u0 * unit, i1 = u1 * unit < total ? u1 * unit : total;
        if (i1 <= i0)
            continue;
        const float *bias = s->bias;
        int64_t r0 = 0, c0 = 0; /* the share's first row and column of C */
        if (s->by_batch) {
            sub.batch = i1 - i0;
            sub.B += i0 * s->m->sb;
            sub.A += i0 * s->m->sa;
            sub.C += i0 * s->m->sc;
        } else if (s->by_cols) {
            /* B [K, N] with strides {1, ldb} (b_trans): column n starts at n * ldb */
            sub.N = i1 - i0;
            sub.B += i0 * (s->m->b_trans ? s->m->ldb : 1);
            sub.C += i0;
            bias = bias ? bias + i0 : NULL;
            c0 = i0;
        } else {
            sub.M = i1 - i0;
            sub.A += i0 * s->m->lda;
            sub.C += i0 * s->m->ldc;
            r0 = i0;
        }
        if (run_matmul(s->c, &sub, bias, s->accumulate, s->act) == 0)
            continue;
        if (s->W) {
            /* float32 fallback of this share */
            lnx_wmat w = *s->W;
            w.rows = sub.N;
            w.data = (const char *)w.data + (size_t)c0 * (size_t)w.cols * lnx_dtype_size(w.dtype);
            lnx_gemm(NULL, sub.M, s->A32 + r0 * s->lda32, s->lda32, &w, bias, sub.C, s->m->ldc, s->accumulate);
            for (int64_t r = 0; s->act >= 0 && r < sub.M; r++)
                lnx_activate_ref((lnx_act)s->act, sub.C + r * s->m->ldc, sub.N);
        } else {
            s->failed = 1;
        }
    }
    lnx_omp_single_leave(saved);
}

static int run_split(lnx_gemm_ctx *c, lnx_pool *pool, split_ctx *s)
{
    s->c = c;
    s->parts = lnx_pool_size(pool);
    lnx_parallel_for(pool, s->parts, split_run, s);
    return s->failed ? -1 : 0;
}

/* ---- linear products on AMX tiles (our kernel, where the CPU has them) ---- */

typedef struct amx_ctx {
    lnx_gemm_ctx *c;
    int64_t M, N, K;
    const uint16_t *A;
    int64_t lda;
    const uint16_t *W;
    float *C;
    int64_t ldc;
    int accumulate;
    int64_t parts;
    int failed;
    const lnx_amx_out *out; /* bf16 output (lnx_amx_linear), or NULL */
} amx_ctx;

static void amx_run(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    amx_ctx *x = p;
    scratch *pack = scratch_take(x->c, lnx_amx_pack_bytes() / sizeof(uint16_t));
    if (!pack) {
        x->failed = 1;
        return;
    }
    /* column shares in multiples of 32 (the kernel's blocks) */
    const int64_t units = (x->N + 31) / 32;
    for (int64_t part = begin; part < end; part++) {
        int64_t n0 = units * part / x->parts * 32, n1 = units * (part + 1) / x->parts * 32;
        if (n1 > x->N)
            n1 = x->N;
        lnx_amx_linear(x->M, x->N, x->K, x->A, x->lda, x->W, x->K, x->C, x->ldc, n0, n1, x->accumulate, x->out,
                       pack->buf);
    }
    scratch_give(x->c, pack);
}

/* A [M][K] rounded to bf16 into a scratch buffer, its row stride in *ld. For the AMX kernel
 * (amx) padded to 32 rows and 32 columns (zeros), any even K, rows one cache line longer than
 * that, so that the 32 rows of a block do not all fall in the same L1 sets when K is a multiple
 * of 2048 (measured 0.8 -> 1.0 TFLOP/s per core at K = 4096). NULL when out of scratch. */
static scratch *round_acts(lnx_gemm_ctx *c, lnx_pool *pool, int64_t M, const float *A, int64_t lda, int64_t K, int amx,
                           int64_t *ld)
{
    const int64_t lda16 = amx ? (K + 31) / 32 * 32 + 32 : K, rows = amx ? (M + 31) / 32 * 32 : M;
    scratch *s = scratch_take(c, (size_t)(rows * lda16));
    if (!s)
        return NULL;
    round_ctx rc = { A, lda, K, s->buf, lda16 };
    lnx_parallel_for(pool, M, round_rows, &rc);
    if (rows > M)
        memset(s->buf + M * lda16, 0, sizeof(uint16_t) * (size_t)((rows - M) * lda16));
    *ld = lda16;
    return s;
}

/* C_i (+)= act(A W_i^T + b_i) for the n products of one A, which is rounded to bf16 once. */
static int linear_bf16(lnx_gemm_ctx *c, lnx_pool *pool, int64_t M, const float *A, int64_t lda, int n,
                       const lnx_wmat *const *W, const float *const *bias, float *const *C, const int64_t *ldc,
                       int accumulate, int act)
{
    const int64_t K = W[0]->cols;
    const int amx = lnx_amx_available() && K % 2 == 0;
    int64_t lda16;
    scratch *s = round_acts(c, pool, M, A, lda, K, amx, &lda16);
    if (!s)
        return -1;
    int rc2 = 0;
    for (int i = 0; i < n && rc2 == 0; i++) {
        const uint16_t *wb = bf16_weights(c, W[i]);
        if (!wb) {
            rc2 = -1;
            break;
        }
        if (amx) {
            amx_ctx x = { c, M, W[i]->rows, K, s->buf, lda16, wb, C[i], ldc[i], accumulate, lnx_pool_size(pool), 0,
                          NULL };
            lnx_parallel_for(pool, x.parts, amx_run, &x);
            if (x.failed) {
                rc2 = -1;
                break;
            }
            /* bias and activation as a pass over the output (fused into the kernel's 32 x 32 blocks
             * they were no faster: one activation call per 32 values) */
            lnx_bias_act(pool, M, W[i]->rows, bias ? bias[i] : NULL, act, C[i], ldc[i]);
            continue;
        }
        /* W [N, K] row-major is B [K, N] transposed. Each share packs the operand it sees whole
         * (the weights with a row split, the activations with a column split): split the
         * dimension whose operand is the larger, so the smaller one is packed twice. Measured on
         * 7B prefill blocks (M 1152-2048 < N): columns 8-10% faster than rows; on 8-frame vision
         * batches (M 4616 > N) rows 15% faster than columns. */
        lnx_bmm m = { 1, M, W[i]->rows, K, s->buf, K, M * K, wb, K, W[i]->rows * K, 1, C[i], ldc[i], M * ldc[i] };
        split_ctx sc = { .m = &m, .bias = bias ? bias[i] : NULL, .accumulate = accumulate, .act = act, .A32 = A,
                         .lda32 = lda, .W = W[i], .by_cols = M < W[i]->rows };
        rc2 = run_split(c, pool, &sc);
    }
    scratch_give(c, s);
    return rc2;
}

/* C (+)= fc2(act(fc1(A))) on AMX with the hidden activations kept in bf16: fc1's outputs get
 * their bias and activation per 32-row block in the kernel and are rounded straight into fc2's
 * padded input, instead of a float32 hidden array, a bias/activation pass over it and its
 * rounding in fc2 (three passes over M x I floats; 8-frame CLIP batches measured 4-7% faster).
 * The same values as the two products in turn. -1 when this path does not apply. (Llama's
 * SwiGLU MLP the same way, silu(gate) applied to up's outputs in the kernel, measured no faster
 * than its separate pass at 2048-row prompt blocks: not done.) */
static int mlp_amx(lnx_gemm_ctx *c, lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *fc1,
                   const float *b1, int act, const lnx_wmat *fc2, const float *b2, float *C, int64_t ldc,
                   int accumulate)
{
    const int64_t K = fc1->cols, I = fc1->rows;
    if (!lnx_amx_available() || K % 2 || I % 2 || fc2->cols != I || K > LNX_AMX_OUT16_MAX_K)
        return -1;
    const uint16_t *w1 = bf16_weights(c, fc1), *w2 = w1 ? bf16_weights(c, fc2) : NULL;
    if (!w2)
        return -1;
    const int64_t rows = (M + 31) / 32 * 32, ldh = (I + 31) / 32 * 32 + 32;
    int64_t lda16;
    scratch *s = round_acts(c, pool, M, A, lda, K, 1, &lda16);
    scratch *h = s ? scratch_take(c, (size_t)(rows * ldh)) : NULL;
    if (!h) {
        if (s)
            scratch_give(c, s);
        return -1;
    }
    /* the hidden rows' padding (columns I.., rows M..) is read by fc2 as zeros */
    for (int64_t r = 0; r < M; r++)
        memset(h->buf + r * ldh + I, 0, sizeof(uint16_t) * (size_t)(ldh - I));
    if (rows > M)
        memset(h->buf + M * ldh, 0, sizeof(uint16_t) * (size_t)((rows - M) * ldh));
    const lnx_amx_out out = { h->buf, ldh, b1, act };
    amx_ctx x1 = { c, M, I, K, s->buf, lda16, w1, NULL, 0, 0, lnx_pool_size(pool), 0, &out };
    lnx_parallel_for(pool, x1.parts, amx_run, &x1);
    int rc2 = x1.failed ? -1 : 0;
    if (rc2 == 0) {
        amx_ctx x2 = { c, M, fc2->rows, I, h->buf, ldh, w2, C, ldc, accumulate, lnx_pool_size(pool), 0, NULL };
        lnx_parallel_for(pool, x2.parts, amx_run, &x2);
        rc2 = x2.failed ? -1 : 0;
        if (rc2 == 0)
            lnx_bias_act(pool, M, fc2->rows, b2, -1, C, ldc);
    }
    scratch_give(c, h);
    scratch_give(c, s);
    return rc2;
}

#endif /* LNX_HAVE_ONEDNN */

/* The product with an optional activation (act < 0: none) on the chosen backend. */
static void gemm_act(const lnx_gemm_ctx *ctx, lnx_pool *pool, int64_t M, const float *A, int64_t lda,
                     const lnx_wmat *W, const float *bias, float *C, int64_t ldc, int accumulate, int act)
{
#ifdef LNX_HAVE_ONEDNN
    /* the context's caches are internal state, not part of what the caller sees as constant */
    lnx_gemm_ctx *c = (lnx_gemm_ctx *)ctx;
    /* quantized weights have their own integer products (lnx_gemm) in either precision */
    if (c && c->precision == LNX_PRECISION_BF16 && M >= BF16_MIN_M && W->rows > 0 && W->cols > 0 &&
        !lnx_dtype_is_quant(W->dtype) &&
        linear_bf16(c, pool, M, A, lda, 1, &W, &bias, &C, &ldc, accumulate, act) == 0)
        return;
#endif
    if (act < 0) {
        lnx_gemm(pool, M, A, lda, W, bias, C, ldc, accumulate);
        return;
    }
    /* the bias and the activation in one pass over the output */
    lnx_gemm(pool, M, A, lda, W, NULL, C, ldc, accumulate);
    lnx_bias_act(pool, M, W->rows, bias, act, C, ldc);
}

void lnx_gemm_x(const lnx_gemm_ctx *ctx, lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
                const float *bias, float *C, int64_t ldc, int accumulate)
{
    gemm_act(ctx, pool, M, A, lda, W, bias, C, ldc, accumulate, -1);
}

void lnx_gemm_multi(const lnx_gemm_ctx *ctx, lnx_pool *pool, int64_t M, const float *A, int64_t lda, int n,
                    const lnx_wmat *const *W, const float *const *bias, float *const *C, const int64_t *ldc)
{
#ifdef LNX_HAVE_ONEDNN
    lnx_gemm_ctx *c = (lnx_gemm_ctx *)ctx;
    int ok = c && c->precision == LNX_PRECISION_BF16 && M >= BF16_MIN_M && W[0]->cols > 0;
    for (int i = 0; ok && i < n; i++)
        ok = W[i]->rows > 0 && W[i]->cols == W[0]->cols && !lnx_dtype_is_quant(W[i]->dtype);
    /* a failure part-way leaves earlier products written and later ones not: redo them all */
    if (ok && linear_bf16(c, pool, M, A, lda, n, W, bias, C, ldc, 0, -1) == 0)
        return;
#endif
    for (int i = 0; i < n; i++)
        lnx_gemm(pool, M, A, lda, W[i], bias ? bias[i] : NULL, C[i], ldc[i], 0);
}

void lnx_gemm_act(const lnx_gemm_ctx *ctx, lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *W,
                  const float *bias, float *C, int64_t ldc, lnx_act act)
{
    gemm_act(ctx, pool, M, A, lda, W, bias, C, ldc, 0, (int)act);
}

void lnx_gemm_mlp(const lnx_gemm_ctx *ctx, lnx_pool *pool, int64_t M, const float *A, int64_t lda, const lnx_wmat *fc1,
                  const float *b1, lnx_act act, const lnx_wmat *fc2, const float *b2, float *hidden, float *C,
                  int64_t ldc, int accumulate)
{
#ifdef LNX_HAVE_ONEDNN
    lnx_gemm_ctx *c = (lnx_gemm_ctx *)ctx;
    if (c && c->precision == LNX_PRECISION_BF16 && M >= BF16_MIN_M && fc1->rows > 0 && fc1->cols > 0 &&
        !lnx_dtype_is_quant(fc1->dtype) && !lnx_dtype_is_quant(fc2->dtype) &&
        mlp_amx(c, pool, M, A, lda, fc1, b1, (int)act, fc2, b2, C, ldc, accumulate) == 0)
        return;
#endif
    gemm_act(ctx, pool, M, A, lda, fc1, b1, hidden, fc1->rows, 0, (int)act);
    gemm_act(ctx, pool, M, hidden, fc1->rows, fc2, b2, C, ldc, accumulate, -1);
}

int lnx_gemm_bf16_bmm(const lnx_gemm_ctx *ctx, lnx_pool *pool, const lnx_bmm *m)
{
#ifdef LNX_HAVE_ONEDNN
    lnx_gemm_ctx *c = (lnx_gemm_ctx *)ctx;
    if (c && c->precision == LNX_PRECISION_BF16) {
        split_ctx sc = { .m = m, .act = -1, .by_batch = m->batch > 1 && m->batch >= lnx_pool_size(pool) };
        return run_split(c, pool, &sc);
    }
#else
    (void)ctx;
    (void)pool;
    (void)m;
#endif
    return -1;
}
