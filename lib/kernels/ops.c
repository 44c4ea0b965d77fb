#include "ops.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

#include "../base/alloc.h"
#include "../base/cpu.h"
#include "gemm.h"

typedef struct norm_ctx {
    const float *x;
    int64_t dim;
    const float *w, *b;
    float eps;
    float *out;
} norm_ctx;

static void layernorm_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const norm_ctx *c = p;
    for (int64_t r = begin; r < end; r++) {
        const float *x = c->x + r * c->dim;
        float *o = c->out + r * c->dim;
        double sum = 0.0;
        for (int64_t i = 0; i < c->dim; i++)
            sum += x[i];
        float mean = (float)(sum / (double)c->dim);
        double var = 0.0;
        for (int64_t i = 0; i < c->dim; i++) {
            double d = (double)x[i] - mean;
            var += d * d;
        }
        float inv = (float)(1.0 / sqrt(var / (double)c->dim + c->eps));
        for (int64_t i = 0; i < c->dim; i++)
            o[i] = (x[i] - mean) * inv * c->w[i] + c->b[i];
    }
}

void lnx_layernorm(lnx_pool *pool, const float *x, int64_t rows, int64_t dim, const float *w, const float *b,
                   float eps, float *out)
{
    norm_ctx c = { x, dim, w, b, eps, out };
    lnx_parallel_for(pool, rows, layernorm_rows, &c);
}

static void rmsnorm_rows(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const norm_ctx *c = p;
    for (int64_t r = begin; r < end; r++) {
        const float *x = c->x + r * c->dim;
        float *o = c->out + r * c->dim;
        double ss = 0.0;
        for (int64_t i = 0; i < c->dim; i++)
            ss += (double)x[i] * x[i];
        float inv = (float)(1.0 / sqrt(ss / (double)c->dim + c->eps));
        for (int64_t i = 0; i < c->dim; i++)
            o[i] = c->w[i] * (x[i] * inv);
    }
}

void lnx_rmsnorm(lnx_pool *pool, const float *x, int64_t rows, int64_t dim, const float *w, float eps, float *out)
{
    norm_ctx c = { x, dim, w, NULL, eps, out };
    lnx_parallel_for(pool, rows, rmsnorm_rows, &c);
}

float lnx_scalar_act(lnx_act act, float x)
{
    switch (act) {
    case LNX_ACT_QUICK_GELU:
        return x / (1.0f + expf(-1.702f * x));
    case LNX_ACT_GELU:
        return (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
    case LNX_ACT_GELU_TANH: {
        double t = tanh(0.7978845608028654 * (x + 0.044715 * (double)x * x * x));
        return (float)(0.5 * x * (1.0 + t));
    }
    case LNX_ACT_SILU:
        return x / (1.0f + expf(-x));
    case LNX_ACT_RELU:
        return x > 0 ? x : 0;
    }
    return x;
}

typedef struct act_ctx {
    lnx_act act;
    float *x;
    const float *gate;
} act_ctx;

static void act_range(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const act_ctx *c = p;
    for (int64_t i = begin; i < end; i++)
        c->x[i] = lnx_scalar_act(c->act, c->x[i]);
}

void lnx_activate(lnx_pool *pool, lnx_act act, float *x, int64_t n)
{
    act_ctx c = { act, x, NULL };
    lnx_parallel_for(pool, n, act_range, &c);
}

static void swiglu_range(void *p, int64_t begin, int64_t end, int worker)
{
    (void)worker;
    const act_ctx *c = p;
    for (int64_t i = begin; i < end; i++) {
        float g = c->gate[i];
        c->x[i] = (g / (1.0f + expf(-g))) * c->x[i];
    }
}

void lnx_swiglu(lnx_pool *pool, const float *gate, float *x, int64_t n)
{
    act_ctx c = { LNX_ACT_SILU, x, gate };
    lnx_parallel_for(pool, n, swiglu_range, &c);
}

double lnx_softmax(float *x, int64_t n)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    if (mx == -INFINITY) {
        for (int64_t i = 0; i < n; i++)
            x[i] = 0.0f;
        return -INFINITY;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++)
        x[i] *= inv;
    return log(sum) + mx;
}

lnx_status lnx_rope_init(lnx_rope *r, int32_t head_dim, double theta, double factor)
{
    r->head_dim = head_dim;
    r->inv_freq = malloc(sizeof(float) * (size_t)(head_dim / 2));
    if (!r->inv_freq)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    /* float32 as transformers computes it: 1 / base^(2i/d), then / factor */
    for (int32_t i = 0; i < head_dim / 2; i++) {
        float expo = (float)(2 * i) / (float)head_dim;
        float f = 1.0f / powf((float)theta, expo);
        r->inv_freq[i] = f / (float)factor;
    }
    return LNX_OK;
}

void lnx_rope_free(lnx_rope *r)
{
    free(r->inv_freq);
    r->inv_freq = NULL;
}

void lnx_rope_apply(const lnx_rope *r, float *x, int32_t heads, int64_t pos)
{
    int32_t half = r->head_dim / 2;
    float cs[1024], sn[1024];
    for (int32_t i = 0; i < half && i < 1024; i++) {
        float ang = (float)pos * r->inv_freq[i];
        cs[i] = (float)cos((double)ang);
        sn[i] = (float)sin((double)ang);
    }
    for (int32_t h = 0; h < heads; h++) {
        float *v = x + (int64_t)h * r->head_dim;
        for (int32_t i = 0; i < half; i++) {
            float x1 = v[i], x2 = v[i + half];
            v[i] = x1 * cs[i] - x2 * sn[i];
            v[i + half] = x2 * cs[i] + x1 * sn[i];
        }
    }
}

/* ---- attention ---- */

#define QBLOCK 16

typedef struct attn_ctx {
    const lnx_attn_args *a;
    int64_t nblocks;
    float *scratch; /* per worker: QBLOCK * Tk */
    int64_t scratch_stride;
} attn_ctx;

__attribute__((target("avx2,fma")))
static void axpy_avx2(float *y, const float *x, float a, int32_t n)
{
    int32_t i = 0;
    __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void axpy(float *y, const float *x, float a, int32_t n)
{
    if (lnx_cpu_flags() & LNX_CPU_AVX2) {
        axpy_avx2(y, x, a, n);
        return;
    }
    for (int32_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void attn_tasks(void *p, int64_t begin, int64_t end, int worker)
{
    const attn_ctx *c = p;
    const lnx_attn_args *a = c->a;
    float *scores = c->scratch + (int64_t)worker * c->scratch_stride;
    int32_t group = a->H / a->KV;
    for (int64_t task = begin; task < end; task++) {
        int32_t h = (int32_t)(task / c->nblocks);
        int64_t q0 = (task % c->nblocks) * QBLOCK;
        int64_t q1 = q0 + QBLOCK < a->Tq ? q0 + QBLOCK : a->Tq;
        int32_t g = h / group;
        for (int64_t i = q0; i < q1; i++) {
            const float *q = a->q + i * a->q_stride + (int64_t)h * a->hd;
            int64_t jend = a->Tk;
            int64_t jbeg = 0;
            if (a->causal && a->q_pos0 + i + 1 < jend)
                jend = a->q_pos0 + i + 1;
            if (a->window > 0 && a->q_pos0 + i - a->window + 1 > jbeg)
                jbeg = a->q_pos0 + i - a->window + 1;
            float *s = scores + (i - q0) * a->Tk;
            for (int64_t j = jbeg; j < jend; j++)
                s[j - jbeg] = lnx_dot_row(LNX_DT_F32, a->k + j * a->kv_stride + (int64_t)g * a->hd, q, a->hd) * a->scale;
            float *o = a->out + i * a->out_stride + (int64_t)h * a->hd;
            for (int32_t d = 0; d < a->hd; d++)
                o[d] = 0.0f;
            if (jend <= jbeg)
                continue;
            lnx_softmax(s, jend - jbeg);
            for (int64_t j = jbeg; j < jend; j++)
                axpy(o, a->v + j * a->kv_stride + (int64_t)g * a->hd, s[j - jbeg], a->hd);
        }
    }
}

lnx_status lnx_attention(lnx_pool *pool, const lnx_attn_args *a)
{
    if (a->Tq <= 0)
        return LNX_OK;
    attn_ctx c;
    c.a = a;
    c.nblocks = (a->Tq + QBLOCK - 1) / QBLOCK;
    c.scratch_stride = QBLOCK * (a->Tk > 0 ? a->Tk : 1);
    c.scratch = lnx_amalloc(sizeof(float) * (size_t)c.scratch_stride * (size_t)lnx_pool_size(pool));
    if (!c.scratch)
        return lnx_error(LNX_E_NOMEM, "out of memory for attention scratch (%lld keys)", (long long)a->Tk);
    lnx_parallel_for(pool, (int64_t)a->H * c.nblocks, attn_tasks, &c);
    lnx_afree(c.scratch);
    return LNX_OK;
}
