#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/alloc.h"
#include "../base/half.h"
#include "../base/quant.h"

typedef struct adopted {
    char *name;
    lnx_wmat w;
} adopted;

struct lnx_wstore {
    const lnx_st *st;
    float **owned;
    size_t n, cap;
    adopted *conv; /* converted matrices (quantize-on-load) */
    size_t nconv, capconv;
    uint64_t conv_bytes;
};

lnx_status lnx_wstore_create(lnx_wstore **out, const lnx_st *st)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    (*out)->st = st;
    return LNX_OK;
}

void lnx_wstore_free(lnx_wstore *ws)
{
    if (!ws)
        return;
    for (size_t i = 0; i < ws->n; i++)
        lnx_afree(ws->owned[i]);
    free(ws->owned);
    for (size_t i = 0; i < ws->nconv; i++) {
        free(ws->conv[i].name);
        lnx_afree((void *)ws->conv[i].w.data);
    }
    free(ws->conv);
    free(ws);
}

const lnx_st *lnx_wstore_source(const lnx_wstore *ws)
{
    return ws->st;
}

int lnx_wstore_has(const lnx_wstore *ws, const char *name)
{
    return lnx_st_find(ws->st, name) != NULL;
}

static void shape_str(char *buf, size_t cap, int32_t ndim, const int64_t *dims)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int32_t i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, i ? ", %lld" : "%lld", (long long)dims[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, "]");
}

static lnx_status find_float(lnx_wstore *ws, const char *name, const lnx_st_tensor **out)
{
    const lnx_st_tensor *t = lnx_st_find(ws->st, name);
    *out = NULL;
    if (!t)
        return lnx_error(LNX_E_FORMAT, "tensor '%s' is missing from the checkpoint", name);
    if (t->dtype != LNX_ST_F32 && t->dtype != LNX_ST_F16 && t->dtype != LNX_ST_BF16)
        return lnx_error(LNX_E_FORMAT, "%s: tensor '%s' has dtype %s (expected F32, F16 or BF16)", t->file, name,
                         lnx_st_dtype_name(t->dtype));
    *out = t;
    return LNX_OK;
}

lnx_status lnx_wstore_tensor(lnx_wstore *ws, const char *name, int32_t ndim, const int64_t *dims,
                             const lnx_st_tensor **out)
{
    const lnx_st_tensor *t;
    lnx_status st = find_float(ws, name, &t);
    *out = NULL;
    if (st != LNX_OK)
        return st;
    int same = t->ndim == ndim;
    for (int32_t i = 0; same && i < ndim; i++)
        same = t->shape[i] == dims[i];
    if (!same) {
        char got[160], want[160];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, ndim, dims);
        return lnx_error(LNX_E_FORMAT, "%s: tensor '%s' has shape %s, the config implies %s", t->file, name, got, want);
    }
    *out = t;
    return LNX_OK;
}

static lnx_dtype to_dtype(lnx_st_dtype d)
{
    return d == LNX_ST_F32 ? LNX_DT_F32 : d == LNX_ST_F16 ? LNX_DT_F16 : LNX_DT_BF16;
}

lnx_status lnx_wstore_adopt(lnx_wstore *ws, const char *name, lnx_dtype dtype, int64_t rows, int64_t cols, void *data)
{
    if (ws->nconv == ws->capconv) {
        size_t cap = ws->capconv ? ws->capconv * 2 : 64;
        adopted *a = realloc(ws->conv, cap * sizeof *a);
        if (!a)
            return lnx_error(LNX_E_NOMEM, "out of memory");
        ws->conv = a;
        ws->capconv = cap;
    }
    char *copy = lnx_strdup(name);
    if (!copy)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    ws->conv[ws->nconv++] = (adopted){ copy, { data, dtype, rows, cols } };
    ws->conv_bytes += (uint64_t)rows * lnx_row_bytes(dtype, cols);
    return LNX_OK;
}

uint64_t lnx_wstore_adopted_bytes(const lnx_wstore *ws)
{
    return ws->conv_bytes;
}

/* A quantized matrix as lnx_quantize_checkpoint writes it: U8 [rows, row bytes of Q8 or Q4]. */
static lnx_status quantized_matrix(const lnx_st_tensor *t, int64_t rows, int64_t cols, lnx_wmat *out)
{
    const lnx_dtype q[2] = { LNX_DT_Q8, LNX_DT_Q4 };
    for (int i = 0; i < 2 && t->ndim == 2 && t->shape[0] == rows && cols > 0 && cols % 32 == 0; i++)
        if ((size_t)t->shape[1] == lnx_row_bytes(q[i], cols)) {
            *out = (lnx_wmat){ t->data, q[i], rows, cols };
            return LNX_OK;
        }
    return lnx_error(LNX_E_FORMAT, "%s: tensor '%s' is U8 of shape [%lld, %lld], which is not a quantized [%lld x %lld] "
                     "matrix (q8 rows are %zu bytes, q4 rows %zu)", t->file, t->name, (long long)t->shape[0],
                     (long long)(t->ndim > 1 ? t->shape[1] : 0), (long long)rows, (long long)cols,
                     cols % 32 ? (size_t)0 : lnx_row_bytes(LNX_DT_Q8, cols), cols % 32 ? (size_t)0 : lnx_row_bytes(LNX_DT_Q4, cols));
}

lnx_status lnx_wstore_matrix(lnx_wstore *ws, const char *name, int64_t rows, int64_t cols, lnx_wmat *out)
{
    for (size_t i = 0; i < ws->nconv; i++)
        if (strcmp(ws->conv[i].name, name) == 0) {
            if (ws->conv[i].w.rows != rows || ws->conv[i].w.cols != cols)
                return lnx_error(LNX_E_FORMAT, "tensor '%s' has shape [%lld, %lld], the config implies [%lld, %lld]",
                                 name, (long long)ws->conv[i].w.rows, (long long)ws->conv[i].w.cols, (long long)rows,
                                 (long long)cols);
            *out = ws->conv[i].w;
            return LNX_OK;
        }
    const lnx_st_tensor *q = lnx_st_find(ws->st, name);
    if (q && q->dtype == LNX_ST_U8)
        return quantized_matrix(q, rows, cols, out);
    int64_t dims[2] = { rows, cols };
    const lnx_st_tensor *t;
    lnx_status st = lnx_wstore_tensor(ws, name, 2, dims, &t);
    if (st != LNX_OK)
        return st;
    out->data = t->data;
    out->dtype = to_dtype(t->dtype);
    out->rows = rows;
    out->cols = cols;
    return LNX_OK;
}

lnx_status lnx_wstore_conv(lnx_wstore *ws, const char *name, int64_t out_ch, int64_t in_ch, int64_t kh, int64_t kw,
                           lnx_wmat *out)
{
    int64_t dims[4] = { out_ch, in_ch, kh, kw };
    const lnx_st_tensor *t;
    lnx_status st = lnx_wstore_tensor(ws, name, 4, dims, &t);
    if (st != LNX_OK)
        return st;
    out->data = t->data;
    out->dtype = to_dtype(t->dtype);
    out->rows = out_ch;
    out->cols = in_ch * kh * kw;
    return LNX_OK;
}

lnx_status lnx_wstore_floats(lnx_wstore *ws, const char *name, int32_t ndim, const int64_t *dims, const float **out)
{
    const lnx_st_tensor *t;
    lnx_status st = lnx_wstore_tensor(ws, name, ndim, dims, &t);
    if (st != LNX_OK)
        return st;
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 64;
        float **o = realloc(ws->owned, cap * sizeof *o);
        if (!o)
            return lnx_error(LNX_E_NOMEM, "out of memory");
        ws->owned = o;
        ws->cap = cap;
    }
    float *v = lnx_amalloc((size_t)t->numel * sizeof(float));
    if (!v)
        return lnx_error(LNX_E_NOMEM, "out of memory widening '%s'", name);
    lnx_widen(to_dtype(t->dtype), t->data, v, (size_t)t->numel);
    ws->owned[ws->n++] = v;
    *out = v;
    return LNX_OK;
}

lnx_status lnx_wstore_vector(lnx_wstore *ws, const char *name, int64_t n, const float **out)
{
    return lnx_wstore_floats(ws, name, 1, &n, out);
}

lnx_status lnx_wstore_check_finite(const lnx_st *st)
{
    float buf[1024];
    for (size_t i = 0; i < lnx_st_count(st); i++) {
        const lnx_st_tensor *t = lnx_st_at(st, i);
        if (t->dtype != LNX_ST_F32 && t->dtype != LNX_ST_F16 && t->dtype != LNX_ST_BF16)
            continue;
        lnx_dtype dt = to_dtype(t->dtype);
        size_t es = lnx_dtype_size(dt);
        for (int64_t off = 0; off < t->numel; off += 1024) {
            size_t n = (size_t)(t->numel - off < 1024 ? t->numel - off : 1024);
            lnx_widen(dt, (const char *)t->data + (size_t)off * es, buf, n);
            for (size_t k = 0; k < n; k++)
                if (!isfinite(buf[k]))
                    return lnx_error(LNX_E_FORMAT, "%s: tensor '%s' element %lld is %s", t->file, t->name,
                                     (long long)(off + (int64_t)k), isnan(buf[k]) ? "NaN" : "infinite");
        }
    }
    return LNX_OK;
}
