/* llavanext_frames and llavanext_tensor: value objects with shape accessors. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#include "../base/alloc.h"

lnx_status lnx_frames_wrap(llavanext_frames **out, lnx_frames *f)
{
    *out = malloc(sizeof **out);
    if (!*out) {
        lnx_frames_free(f);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    (*out)->f = f;
    return LNX_OK;
}

LLAVANEXT_API int32_t llavanext_frames_count(const llavanext_frames *f)
{
    return f ? f->f->count : 0;
}

LLAVANEXT_API int32_t llavanext_frames_width(const llavanext_frames *f)
{
    return f ? f->f->width : 0;
}

LLAVANEXT_API int32_t llavanext_frames_height(const llavanext_frames *f)
{
    return f ? f->f->height : 0;
}

LLAVANEXT_API const uint8_t *llavanext_frames_data(const llavanext_frames *f, int32_t i)
{
    if (!f || i < 0 || i >= f->f->count)
        return NULL;
    return lnx_frame_ptr(f->f, i);
}

LLAVANEXT_API int64_t llavanext_frames_source_index(const llavanext_frames *f, int32_t i)
{
    if (!f || i < 0 || i >= f->f->count)
        return -1;
    return f->f->index[i];
}

LLAVANEXT_API double llavanext_frames_timestamp(const llavanext_frames *f, int32_t i)
{
    if (!f || i < 0 || i >= f->f->count)
        return NAN;
    return f->f->time[i];
}

LLAVANEXT_API llavanext_status llavanext_frames_from_host(llavanext_frames **out, int32_t pixel_format,
                                                          const uint8_t *const planes[3], const int32_t strides[3],
                                                          int32_t width, int32_t height)
{
    API_CHECK(out, "llavanext_frames_from_host: out is NULL");
    *out = NULL;
    API_CHECK(planes && strides, "llavanext_frames_from_host: planes or strides is NULL");
    API_CHECK(pixel_format >= LLAVANEXT_PIXEL_RGB24 && pixel_format <= LLAVANEXT_PIXEL_NV12,
              "llavanext_frames_from_host: pixel format %d is unknown", (int)pixel_format);
    lnx_frames *f;
    lnx_status st = lnx_frames_from_host(&f, pixel_format, planes, strides, width, height);
    if (st != LNX_OK)
        return st;
    return lnx_frames_wrap(out, f);
}

LLAVANEXT_API void llavanext_frames_free(llavanext_frames *f)
{
    if (!f)
        return;
    lnx_frames_free(f->f);
    free(f);
}

lnx_status lnx_tensor_new(llavanext_tensor **out, int32_t kind, int32_t ndim, const int64_t *dims)
{
    *out = NULL;
    if (ndim < 1 || ndim > 8)
        return lnx_error(LNX_E_INVALID, "tensor: %d dimensions (1 to 8 allowed)", (int)ndim);
    size_t n = 1;
    for (int32_t i = 0; i < ndim; i++)
        if (dims[i] < 0 || !lnx_mul_size(n, (size_t)dims[i], &n))
            return lnx_error(LNX_E_INVALID, "tensor: dimension %d = %lld is invalid", (int)i, (long long)dims[i]);
    size_t bytes;
    if (!lnx_mul_size(n, sizeof(float), &bytes))
        return lnx_error(LNX_E_LIMIT, "tensor: too large");
    llavanext_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    t->data = lnx_amalloc(bytes);
    if (!t->data) {
        free(t);
        return lnx_error(LNX_E_NOMEM, "cannot allocate a tensor of %zu bytes", bytes);
    }
    t->kind = kind;
    t->ndim = ndim;
    for (int32_t i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    t->numel = (int64_t)n;
    *out = t;
    return LNX_OK;
}

LLAVANEXT_API int32_t llavanext_tensor_kind(const llavanext_tensor *t)
{
    return t ? t->kind : LLAVANEXT_TENSOR_OTHER;
}

LLAVANEXT_API int32_t llavanext_tensor_ndim(const llavanext_tensor *t)
{
    return t ? t->ndim : 0;
}

LLAVANEXT_API int64_t llavanext_tensor_dim(const llavanext_tensor *t, int32_t dim)
{
    return t && dim >= 0 && dim < t->ndim ? t->dims[dim] : 0;
}

LLAVANEXT_API int64_t llavanext_tensor_numel(const llavanext_tensor *t)
{
    return t ? t->numel : 0;
}

LLAVANEXT_API const float *llavanext_tensor_data(const llavanext_tensor *t)
{
    return t ? t->data : NULL;
}

LLAVANEXT_API int32_t llavanext_tensor_image_height(const llavanext_tensor *t)
{
    return t ? t->image_h : 0;
}

LLAVANEXT_API int32_t llavanext_tensor_image_width(const llavanext_tensor *t)
{
    return t ? t->image_w : 0;
}

LLAVANEXT_API llavanext_status llavanext_tensor_create(llavanext_tensor **out, int32_t kind, int32_t ndim,
                                                       const int64_t *dims, const float *data, int32_t image_height,
                                                       int32_t image_width)
{
    API_CHECK(out, "llavanext_tensor_create: out is NULL");
    *out = NULL;
    API_CHECK(dims, "llavanext_tensor_create: dims is NULL");
    API_CHECK(kind >= LLAVANEXT_TENSOR_VIDEO_PIXELS && kind <= LLAVANEXT_TENSOR_VIDEO_PROJECTED,
              "llavanext_tensor_create: kind %d is unknown", (int)kind);
    API_CHECK(image_height >= 0 && image_width >= 0, "llavanext_tensor_create: negative image size");
    llavanext_tensor *t;
    lnx_status st = lnx_tensor_new(&t, kind, ndim, dims);
    if (st != LNX_OK)
        return st;
    if (t->numel > 0 && !data) {
        llavanext_tensor_free(t);
        return lnx_error(LNX_E_INVALID, "llavanext_tensor_create: data is NULL");
    }
    if (t->numel > 0)
        memcpy(t->data, data, sizeof(float) * (size_t)t->numel);
    t->image_h = image_height;
    t->image_w = image_width;
    *out = t;
    return LNX_OK;
}

LLAVANEXT_API llavanext_status llavanext_tensor_concat(llavanext_tensor **out, const llavanext_tensor *const *tensors,
                                                       int32_t count)
{
    API_CHECK(out, "llavanext_tensor_concat: out is NULL");
    *out = NULL;
    API_CHECK(tensors && count > 0, "llavanext_tensor_concat: no tensors");
    const llavanext_tensor *first = tensors[0];
    API_CHECK(first, "llavanext_tensor_concat: tensor 0 is NULL");
    int64_t dims[8];
    memcpy(dims, first->dims, sizeof dims);
    dims[0] = 0;
    for (int32_t i = 0; i < count; i++) {
        const llavanext_tensor *t = tensors[i];
        API_CHECK(t, "llavanext_tensor_concat: tensor %d is NULL", (int)i);
        API_CHECK(t->kind == first->kind && t->ndim == first->ndim,
                  "llavanext_tensor_concat: tensor %d differs in kind or rank from tensor 0", (int)i);
        for (int32_t d = 1; d < t->ndim; d++)
            API_CHECK(t->dims[d] == first->dims[d], "llavanext_tensor_concat: tensor %d has dimension %d = %lld, "
                      "tensor 0 has %lld", (int)i, (int)d, (long long)t->dims[d], (long long)first->dims[d]);
        dims[0] += t->dims[0];
    }
    llavanext_tensor *r;
    lnx_status st = lnx_tensor_new(&r, first->kind, first->ndim, dims);
    if (st != LNX_OK)
        return st;
    float *dst = r->data;
    for (int32_t i = 0; i < count; i++) {
        memcpy(dst, tensors[i]->data, sizeof(float) * (size_t)tensors[i]->numel);
        dst += tensors[i]->numel;
    }
    r->image_h = first->image_h;
    r->image_w = first->image_w;
    *out = r;
    return LNX_OK;
}

LLAVANEXT_API void llavanext_tensor_free(llavanext_tensor *t)
{
    if (!t)
        return;
    lnx_afree(t->data);
    free(t);
}
