/* llavanext_frame_sampler: the public face of lib/media. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

struct llavanext_frame_sampler {
    lnx_media *m;
    lnx_err_slot err;
};

LLAVANEXT_API void llavanext_frame_sampler_params_init(llavanext_frame_sampler_params *p, size_t size)
{
    llavanext_frame_sampler_params d;
    memset(&d, 0, sizeof d);
    d.apply_rotation = 1;
    lnx_params_init(p, size, &d, sizeof d);
}

static lnx_status make_opts(lnx_media_opts *o, const llavanext_frame_sampler_params *params)
{
    llavanext_frame_sampler_params p;
    llavanext_frame_sampler_params_init(&p, sizeof p);
    lnx_status st = lnx_params_copy(&p, sizeof p, params, "llavanext_frame_sampler_params");
    if (st != LNX_OK)
        return st;
    API_CHECK(p.threads >= 0 && p.threads <= 256, "llavanext_frame_sampler_params: threads = %d", (int)p.threads);
    API_CHECK(p.max_frame_pixels >= 0, "llavanext_frame_sampler_params: negative max_frame_pixels");
    *o = lnx_media_opts_default();
    o->threads = p.threads;
    o->apply_rotation = p.apply_rotation != 0;
    o->skip_corrupt = p.skip_corrupt != 0;
    o->log.fn = p.log;
    o->log.user_data = p.log_user_data;
    if (p.max_frame_pixels > 0)
        o->max_frame_pixels = (uint64_t)p.max_frame_pixels;
    return LNX_OK;
}

static lnx_status wrap(llavanext_frame_sampler **out, lnx_media *m)
{
    *out = calloc(1, sizeof **out);
    if (!*out) {
        lnx_media_close(m);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    (*out)->m = m;
    return LNX_OK;
}

LLAVANEXT_API llavanext_status llavanext_frame_sampler_open(llavanext_frame_sampler **out, const char *path,
                                                            const llavanext_frame_sampler_params *params)
{
    API_CHECK(out, "llavanext_frame_sampler_open: out is NULL");
    *out = NULL;
    API_CHECK(path, "llavanext_frame_sampler_open: path is NULL");
    lnx_media_opts o;
    lnx_status st = make_opts(&o, params);
    lnx_media *m;
    if (st == LNX_OK)
        st = lnx_media_open_path(&m, path, &o);
    return st == LNX_OK ? wrap(out, m) : st;
}

LLAVANEXT_API llavanext_status llavanext_frame_sampler_open_memory(llavanext_frame_sampler **out, const void *data,
                                                                   size_t size,
                                                                   const llavanext_frame_sampler_params *params)
{
    API_CHECK(out, "llavanext_frame_sampler_open_memory: out is NULL");
    *out = NULL;
    API_CHECK(data || size == 0, "llavanext_frame_sampler_open_memory: data is NULL");
    lnx_media_opts o;
    lnx_status st = make_opts(&o, params);
    lnx_media *m;
    if (st == LNX_OK)
        st = lnx_media_open_memory(&m, data, size, &o);
    return st == LNX_OK ? wrap(out, m) : st;
}

LLAVANEXT_API llavanext_status llavanext_frame_sampler_open_callbacks(llavanext_frame_sampler **out,
                                                                      llavanext_read_callback read,
                                                                      llavanext_seek_callback seek,
                                                                      const llavanext_frame_sampler_params *params,
                                                                      void *user_data)
{
    API_CHECK(out, "llavanext_frame_sampler_open_callbacks: out is NULL");
    *out = NULL;
    API_CHECK(read && seek, "llavanext_frame_sampler_open_callbacks: read or seek callback is NULL");
    lnx_media_opts o;
    lnx_status st = make_opts(&o, params);
    lnx_media *m;
    if (st == LNX_OK)
        st = lnx_media_open_callbacks(&m, read, seek, &o, user_data);
    return st == LNX_OK ? wrap(out, m) : st;
}

LLAVANEXT_API void llavanext_frame_sampler_free(llavanext_frame_sampler *s)
{
    if (!s)
        return;
    lnx_media_close(s->m);
    free(s);
}

static llavanext_status api_frame_sampler_info(llavanext_media_info *out, const llavanext_frame_sampler *s);

LLAVANEXT_API llavanext_status llavanext_frame_sampler_info(llavanext_media_info *out, const llavanext_frame_sampler *s)
{
    return lnx_err_record(s ? &s->err : NULL, api_frame_sampler_info(out, s));
}

static llavanext_status api_frame_sampler_info(llavanext_media_info *out, const llavanext_frame_sampler *s)
{
    API_CHECK(out && s, "llavanext_frame_sampler_info: NULL argument");
    API_CHECK(out->struct_size >= sizeof(uint32_t), "llavanext_frame_sampler_info: set out->struct_size first");
    const lnx_media_info *i = lnx_media_get_info(s->m);
    llavanext_media_info r;
    memset(&r, 0, sizeof r);
    r.struct_size = out->struct_size < sizeof r ? out->struct_size : (uint32_t)sizeof r;
    r.width = i->width;
    r.height = i->height;
    r.rotation = i->rotation;
    r.is_image = i->is_image;
    r.frame_count_exact = i->frame_count_exact;
    r.frame_count = i->frame_count;
    r.duration = i->duration;
    r.fps = i->fps;
    snprintf(r.container, sizeof r.container, "%s", i->container);
    snprintf(r.codec, sizeof r.codec, "%s", i->codec);
    uint32_t n = r.struct_size;
    memcpy(out, &r, n);
    return LNX_OK;
}

/* How a request picks its frame indices. */
typedef enum pick_kind { PICK_UNIFORM, PICK_FPS, PICK_TIMES } pick_kind;

typedef struct pick {
    pick_kind kind;
    int32_t count;       /* frames wanted (uniform, times) or the most (fps) */
    double fps;
    const double *times;
} pick;

/* Computes the indices of `p` into a fresh array; *n receives how many. */
static lnx_status pick_indices(const llavanext_frame_sampler *s, const pick *p, int64_t **idx, int32_t *n)
{
    *idx = malloc(sizeof **idx * (size_t)p->count);
    if (!*idx)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    *n = p->count;
    lnx_status st = p->kind == PICK_UNIFORM ? lnx_media_uniform_indices(s->m, p->count, *idx)
                    : p->kind == PICK_FPS   ? lnx_media_fps_indices(s->m, p->fps, p->count, *idx, n)
                                            : lnx_media_time_indices(s->m, p->times, p->count, *idx);
    if (st != LNX_OK) {
        free(*idx);
        *idx = NULL;
    }
    return st;
}

static lnx_status read_indices(llavanext_frames **out, llavanext_frame_sampler *s, const int64_t *idx, int32_t n)
{
    lnx_frames *f;
    lnx_status st = lnx_media_read(s->m, idx, n, &f);
    return st == LNX_OK ? lnx_frames_wrap(out, f) : st;
}

static lnx_status read_picked(llavanext_frames **out, llavanext_frame_sampler *s, const pick *p)
{
    int64_t *idx = NULL;
    int32_t n = 0;
    LNX_TRY(pick_indices(s, p, &idx, &n));
    lnx_status st = read_indices(out, s, idx, n);
    free(idx);
    return st;
}

#define CHECK_COUNT(fn, count)                                                                                \
    API_CHECK((count) > 0 && (count) <= 100000, fn ": frame count %d must be 1 to 100000", (int)(count))

static llavanext_status api_frame_sampler_uniform(llavanext_frames **out, llavanext_frame_sampler *s,
                                                               int32_t count);

LLAVANEXT_API llavanext_status llavanext_frame_sampler_uniform(llavanext_frames **out, llavanext_frame_sampler *s,
                                                               int32_t count)
{
    return lnx_err_record(s ? &s->err : NULL, api_frame_sampler_uniform(out, s, count));
}

static llavanext_status api_frame_sampler_uniform(llavanext_frames **out, llavanext_frame_sampler *s,
                                                               int32_t count)
{
    API_CHECK(out, "llavanext_frame_sampler_uniform: out is NULL");
    *out = NULL;
    API_CHECK(s, "llavanext_frame_sampler_uniform: sampler is NULL");
    CHECK_COUNT("llavanext_frame_sampler_uniform", count);
    pick p = { PICK_UNIFORM, count, 0, NULL };
    return read_picked(out, s, &p);
}

static llavanext_status api_frame_sampler_by_fps(llavanext_frames **out, llavanext_frame_sampler *s,
                                                              double fps, int32_t max_count);

LLAVANEXT_API llavanext_status llavanext_frame_sampler_by_fps(llavanext_frames **out, llavanext_frame_sampler *s,
                                                              double fps, int32_t max_count)
{
    return lnx_err_record(s ? &s->err : NULL, api_frame_sampler_by_fps(out, s, fps, max_count));
}

static llavanext_status api_frame_sampler_by_fps(llavanext_frames **out, llavanext_frame_sampler *s,
                                                              double fps, int32_t max_count)
{
    API_CHECK(out, "llavanext_frame_sampler_by_fps: out is NULL");
    *out = NULL;
    API_CHECK(s, "llavanext_frame_sampler_by_fps: sampler is NULL");
    API_CHECK(fps > 0 && fps < 1e6, "llavanext_frame_sampler_by_fps: fps %g must be positive", fps);
    API_CHECK(max_count > 0 && max_count <= 100000, "llavanext_frame_sampler_by_fps: max_count %d must be 1 to 100000",
              (int)max_count);
    pick p = { PICK_FPS, max_count, fps, NULL };
    return read_picked(out, s, &p);
}

static llavanext_status api_frame_sampler_at_times(llavanext_frames **out, llavanext_frame_sampler *s,
                                                                const double *times, int32_t count);

LLAVANEXT_API llavanext_status llavanext_frame_sampler_at_times(llavanext_frames **out, llavanext_frame_sampler *s,
                                                                const double *times, int32_t count)
{
    return lnx_err_record(s ? &s->err : NULL, api_frame_sampler_at_times(out, s, times, count));
}

static llavanext_status api_frame_sampler_at_times(llavanext_frames **out, llavanext_frame_sampler *s,
                                                                const double *times, int32_t count)
{
    API_CHECK(out, "llavanext_frame_sampler_at_times: out is NULL");
    *out = NULL;
    API_CHECK(s && times, "llavanext_frame_sampler_at_times: NULL argument");
    CHECK_COUNT("llavanext_frame_sampler_at_times", count);
    pick p = { PICK_TIMES, count, 0, times };
    return read_picked(out, s, &p);
}

static llavanext_status api_frame_sampler_at_indices(llavanext_frames **out, llavanext_frame_sampler *s,
                                                                  const int64_t *indices, int32_t count);

LLAVANEXT_API llavanext_status llavanext_frame_sampler_at_indices(llavanext_frames **out, llavanext_frame_sampler *s,
                                                                  const int64_t *indices, int32_t count)
{
    return lnx_err_record(s ? &s->err : NULL, api_frame_sampler_at_indices(out, s, indices, count));
}

static llavanext_status api_frame_sampler_at_indices(llavanext_frames **out, llavanext_frame_sampler *s,
                                                                  const int64_t *indices, int32_t count)
{
    API_CHECK(out, "llavanext_frame_sampler_at_indices: out is NULL");
    *out = NULL;
    API_CHECK(s && indices, "llavanext_frame_sampler_at_indices: NULL argument");
    CHECK_COUNT("llavanext_frame_sampler_at_indices", count);
    return read_indices(out, s, indices, count);
}

static llavanext_status api_frame_sampler_begin_uniform(llavanext_frame_sampler *s, int32_t count);

LLAVANEXT_API llavanext_status llavanext_frame_sampler_begin_uniform(llavanext_frame_sampler *s, int32_t count)
{
    return lnx_err_record(s ? &s->err : NULL, api_frame_sampler_begin_uniform(s, count));
}

static llavanext_status api_frame_sampler_begin_uniform(llavanext_frame_sampler *s, int32_t count)
{
    API_CHECK(s, "llavanext_frame_sampler_begin_uniform: sampler is NULL");
    CHECK_COUNT("llavanext_frame_sampler_begin_uniform", count);
    pick p = { PICK_UNIFORM, count, 0, NULL };
    int64_t *idx = NULL;
    int32_t n = 0;
    LNX_TRY(pick_indices(s, &p, &idx, &n));
    lnx_status st = lnx_media_begin(s->m, idx, n);
    free(idx);
    return st;
}

static llavanext_status api_frame_sampler_next(llavanext_frames **out, llavanext_frame_sampler *s,
                                                            int32_t max_batch);

LLAVANEXT_API llavanext_status llavanext_frame_sampler_next(llavanext_frames **out, llavanext_frame_sampler *s,
                                                            int32_t max_batch)
{
    return lnx_err_record(s ? &s->err : NULL, api_frame_sampler_next(out, s, max_batch));
}

static llavanext_status api_frame_sampler_next(llavanext_frames **out, llavanext_frame_sampler *s,
                                                            int32_t max_batch)
{
    API_CHECK(out, "llavanext_frame_sampler_next: out is NULL");
    *out = NULL;
    API_CHECK(s, "llavanext_frame_sampler_next: sampler is NULL");
    API_CHECK(max_batch > 0, "llavanext_frame_sampler_next: max_batch %d must be positive", (int)max_batch);
    lnx_frames *f = NULL;
    lnx_status st = lnx_media_next(s->m, max_batch, &f);
    if (st != LNX_OK)
        return st;
    return lnx_frames_wrap(out, f);
}

LLAVANEXT_API size_t llavanext_frame_sampler_last_error(const llavanext_frame_sampler *handle, char *buf, size_t size)
{
    return lnx_err_copy(handle ? &handle->err : NULL, buf, size);
}
