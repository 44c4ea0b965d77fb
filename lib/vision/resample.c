#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"

/* Bit-exactness needs every double expression below rounded as written: no fused multiply-add
 * (possible when built for a CPU with FMA). GCC in ISO C mode already does not contract. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Fixed-point weights: 8 bits of pixel, 2 bits of headroom for kernels whose partial sums leave
 * [0, 1], the rest fraction. */
#define FRAC_BITS 22
#define HALF (1 << (FRAC_BITS - 1))

/* One axis of the resize: for each produced output index, the first input index, how many taps,
 * and the fixed-point weights. An identity axis (size unchanged) is not resampled at all. */
typedef struct axis {
    int32_t identity;
    int32_t n;      /* produced outputs (the window length) */
    int32_t offset; /* identity: input index of the first produced output */
    int32_t ksize;  /* weights per output in `coef` */
    int32_t *first;
    int32_t *taps;
    int32_t *coef;
} axis;

struct lnx_resample {
    axis h, v;
    int32_t row0;   /* first source row the vertical pass reads */
    int32_t rows;   /* source rows the vertical pass reads (intermediate rows) */
    uint8_t *tmp;   /* rows x h.n pixels after the horizontal pass, when both passes run */
    size_t bytes;
};

/* Keys bicubic convolution kernel with a = -0.5, in the evaluation order Pillow uses. */
static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static int32_t to_fixed(double w)
{
    double s = w * (double)(1 << FRAC_BITS);
    return (int32_t)(w < 0 ? s - 0.5 : s + 0.5);
}

static uint8_t clamp8(int32_t acc)
{
    if (acc < 0)
        return 0;
    acc >>= FRAC_BITS;
    return acc > 255 ? 255 : (uint8_t)acc;
}

static void axis_free(axis *ax)
{
    free(ax->first);
    free(ax->taps);
    free(ax->coef);
}

/* Weights for outputs [w0, w0 + n) of an in -> out resize. */
static lnx_status axis_init(axis *ax, int32_t in, int32_t out, int32_t w0, int32_t n, size_t *bytes)
{
    memset(ax, 0, sizeof *ax);
    ax->n = n;
    if (in == out) {
        ax->identity = 1;
        ax->offset = w0;
        return LNX_OK;
    }
    double scale = (double)in / out;
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * fscale;
    double inv = 1.0 / fscale;
    double ks = ceil(support) * 2 + 1;
    size_t ncoef;
    if (ks > (double)INT32_MAX || !lnx_mul_size((size_t)n, (size_t)ks, &ncoef) ||
        !lnx_mul_size(ncoef, sizeof(int32_t), &ncoef))
        return lnx_error(LNX_E_LIMIT, "resize %d -> %d needs too many filter taps", (int)in, (int)out);
    ax->ksize = (int32_t)ks;
    ax->first = malloc(sizeof(int32_t) * (size_t)n);
    ax->taps = malloc(sizeof(int32_t) * (size_t)n);
    ax->coef = malloc(ncoef);
    double *w = malloc(sizeof(double) * (size_t)ax->ksize);
    if (!ax->first || !ax->taps || !ax->coef || !w) {
        free(w);
        axis_free(ax);
        return lnx_error(LNX_E_NOMEM, "out of memory for resize coefficients %d -> %d", (int)in, (int)out);
    }
    *bytes += ncoef + 2 * sizeof(int32_t) * (size_t)n;
    for (int32_t i = 0; i < n; i++) {
        int32_t o = w0 + i;
        double center = (o + 0.5) * scale;
        int32_t lo = (int32_t)(center - support + 0.5);
        int32_t hi = (int32_t)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in)
            hi = in;
        int32_t taps = hi - lo;
        if (taps < 1 || taps > ax->ksize) {
            free(w);
            axis_free(ax);
            return lnx_error(LNX_E_INTERNAL, "resize %d -> %d: output %d has %d taps", (int)in, (int)out, (int)o,
                             (int)taps);
        }
        double sum = 0.0;
        for (int32_t t = 0; t < taps; t++) {
            w[t] = bicubic(((t + lo) - center + 0.5) * inv);
            sum += w[t];
        }
        int32_t *k = ax->coef + (size_t)i * (size_t)ax->ksize;
        for (int32_t t = 0; t < taps; t++)
            k[t] = to_fixed(sum != 0.0 ? w[t] / sum : w[t]);
        ax->first[i] = lo;
        ax->taps[i] = taps;
    }
    free(w);
    return LNX_OK;
}

lnx_status lnx_resample_create(lnx_resample **out, int32_t sw, int32_t sh, int32_t dw, int32_t dh, int32_t wx,
                               int32_t wy, int32_t ww, int32_t wh)
{
    *out = NULL;
    const int32_t max = LNX_RESAMPLE_MAX_DIM;
    if (sw < 1 || sh < 1 || dw < 1 || dh < 1 || sw > max || sh > max || dw > max || dh > max)
        return lnx_error(LNX_E_INVALID, "invalid resize %dx%d -> %dx%d", (int)sw, (int)sh, (int)dw, (int)dh);
    if (wx < 0 || wy < 0 || ww < 1 || wh < 1 || wx > dw - ww || wy > dh - wh)
        return lnx_error(LNX_E_INVALID, "resize window %dx%d at (%d, %d) is not inside the %dx%d output", (int)ww,
                         (int)wh, (int)wx, (int)wy, (int)dw, (int)dh);
    lnx_resample *r = calloc(1, sizeof *r);
    if (!r)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    r->bytes = sizeof *r;
    lnx_status st = axis_init(&r->h, sw, dw, wx, ww, &r->bytes);
    if (st == LNX_OK)
        st = axis_init(&r->v, sh, dh, wy, wh, &r->bytes);
    if (st != LNX_OK) {
        lnx_resample_free(r);
        return st;
    }
    if (!r->h.identity && !r->v.identity) {
        /* The horizontal pass runs only on the source rows the vertical pass reads. */
        int32_t last = wh - 1;
        r->row0 = r->v.first[0];
        r->rows = r->v.first[last] + r->v.taps[last] - r->row0;
        for (int32_t i = 0; i < wh; i++)
            r->v.first[i] -= r->row0;
        size_t tmp;
        if (!lnx_mul_size((size_t)r->rows, (size_t)ww * 3, &tmp)) {
            lnx_resample_free(r);
            return lnx_error(LNX_E_LIMIT, "resize %dx%d -> %dx%d is too large", (int)sw, (int)sh, (int)dw, (int)dh);
        }
        r->tmp = lnx_amalloc(tmp);
        if (!r->tmp) {
            lnx_resample_free(r);
            return lnx_error(LNX_E_NOMEM, "cannot allocate %zu bytes for resizing %dx%d -> %dx%d", tmp, (int)sw,
                             (int)sh, (int)dw, (int)dh);
        }
        r->bytes += tmp;
    }
    *out = r;
    return LNX_OK;
}

void lnx_resample_free(lnx_resample *r)
{
    if (!r)
        return;
    axis_free(&r->h);
    axis_free(&r->v);
    lnx_afree(r->tmp);
    free(r);
}

size_t lnx_resample_bytes(const lnx_resample *r)
{
    return r ? r->bytes : 0;
}

static inline void sink_put(const lnx_rgb_sink *s, size_t y, size_t x, uint8_t r, uint8_t g, uint8_t b)
{
    if (s->lut) {
        float *p = s->planes + y * s->row_stride + x;
        p[0] = s->lut[r];
        p[s->plane_stride] = s->lut[256 + g];
        p[2 * s->plane_stride] = s->lut[512 + b];
    } else {
        uint8_t *p = s->rgb + y * s->rgb_stride + 3 * x;
        p[0] = r;
        p[1] = g;
        p[2] = b;
    }
}

/* One output row of the horizontal pass from one source row. */
static void horizontal_row(const axis *h, const uint8_t *src, const lnx_rgb_sink *sink, size_t y)
{
    for (int32_t i = 0; i < h->n; i++) {
        const uint8_t *p = src + 3 * (size_t)h->first[i];
        const int32_t *k = h->coef + (size_t)i * (size_t)h->ksize;
        int32_t taps = h->taps[i];
        int32_t r = HALF, g = HALF, b = HALF;
        for (int32_t t = 0; t < taps; t++, p += 3) {
            r += p[0] * k[t];
            g += p[1] * k[t];
            b += p[2] * k[t];
        }
        sink_put(sink, y, (size_t)i, clamp8(r), clamp8(g), clamp8(b));
    }
}

/* One output row of the vertical pass; `src` points at the first column to read. */
static void vertical_row(const axis *v, int32_t width, const uint8_t *src, size_t stride,
                         const lnx_rgb_sink *sink, int32_t y)
{
    const int32_t *k = v->coef + (size_t)y * (size_t)v->ksize;
    const uint8_t *top = src + (size_t)v->first[y] * stride;
    int32_t taps = v->taps[y];
    for (int32_t x = 0; x < width; x++) {
        const uint8_t *p = top + 3 * (size_t)x;
        int32_t r = HALF, g = HALF, b = HALF;
        for (int32_t t = 0; t < taps; t++, p += stride) {
            r += p[0] * k[t];
            g += p[1] * k[t];
            b += p[2] * k[t];
        }
        sink_put(sink, (size_t)y, (size_t)x, clamp8(r), clamp8(g), clamp8(b));
    }
}

typedef struct pass_ctx {
    const lnx_resample *r;
    const uint8_t *src; /* pass input, at its first row and first column read */
    size_t stride;
    const lnx_rgb_sink *sink;
} pass_ctx;

static void horizontal_rows(void *p, int64_t begin, int64_t end, int worker)
{
    const pass_ctx *c = p;
    for (int64_t y = begin; y < end; y++)
        horizontal_row(&c->r->h, c->src + (size_t)y * c->stride, c->sink, (size_t)y);
}

static void vertical_rows(void *p, int64_t begin, int64_t end, int worker)
{
    const pass_ctx *c = p;
    for (int64_t y = begin; y < end; y++)
        vertical_row(&c->r->v, c->r->h.n, c->src, c->stride, c->sink, (int32_t)y);
}

static void copy_rows(void *p, int64_t begin, int64_t end, int worker)
{
    const pass_ctx *c = p;
    for (int64_t y = begin; y < end; y++) {
        const uint8_t *s = c->src + (size_t)y * c->stride;
        for (int32_t x = 0; x < c->r->h.n; x++, s += 3)
            sink_put(c->sink, (size_t)y, (size_t)x, s[0], s[1], s[2]);
    }
}

void lnx_resample_run(lnx_resample *r, const uint8_t *src, size_t src_stride, const lnx_rgb_sink *sink,
                      lnx_pool *pool)
{
    const axis *h = &r->h, *v = &r->v;
    if (h->identity && v->identity) {
        pass_ctx c = { r, src + (size_t)v->offset * src_stride + 3 * (size_t)h->offset, src_stride, sink };
        lnx_parallel_for(pool, v->n, copy_rows, &c);
    } else if (v->identity) {
        pass_ctx c = { r, src + (size_t)v->offset * src_stride, src_stride, sink };
        lnx_parallel_for(pool, v->n, horizontal_rows, &c);
    } else if (h->identity) {
        pass_ctx c = { r, src + 3 * (size_t)h->offset, src_stride, sink };
        lnx_parallel_for(pool, v->n, vertical_rows, &c);
    } else {
        size_t tmp_stride = 3 * (size_t)h->n;
        lnx_rgb_sink tmp = { r->tmp, tmp_stride, NULL, 0, 0, NULL };
        pass_ctx hc = { r, src + (size_t)r->row0 * src_stride, src_stride, &tmp };
        lnx_parallel_for(pool, r->rows, horizontal_rows, &hc);
        pass_ctx vc = { r, r->tmp, tmp_stride, sink };
        lnx_parallel_for(pool, v->n, vertical_rows, &vc);
    }
}
