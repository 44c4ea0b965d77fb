#include "../common/testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "base/parallel.h"
#include "base/status.h"
#include "io/safetensors.h"
#include "media/frames.h"
#include "vision/preprocess.h"

/* ---- a slow oracle of Pillow's bicubic resize, written independently of lib/vision ---- */

static double oracle_kernel(double x)
{
    x = fabs(x);
    if (x < 1.0)
        return ((-0.5 + 2.0) * x - (-0.5 + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * -0.5;
    return 0.0;
}

/* Resamples one line of `n_in` samples (stride `step` bytes, 3 channels) to n_out samples. */
static void oracle_line(const uint8_t *in, size_t in_step, int n_in, uint8_t *out, size_t out_step, int n_out)
{
    double scale = (double)n_in / (double)n_out;
    double fs = scale > 1.0 ? scale : 1.0;
    double support = 2.0 * fs;
    for (int o = 0; o < n_out; o++) {
        double center = (o + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > n_in ? n_in : hi;
        double w[4096], sum = 0;
        assert_true(hi - lo <= 4096);
        for (int i = lo; i < hi; i++) {
            w[i - lo] = oracle_kernel((i - center + 0.5) / fs);
            sum += w[i - lo];
        }
        for (int ch = 0; ch < 3; ch++) {
            int64_t acc = 1 << 21;
            for (int i = lo; i < hi; i++) {
                double k = sum != 0 ? w[i - lo] / sum : w[i - lo];
                int64_t fixed = (int64_t)(k < 0 ? -0.5 + k * 4194304.0 : 0.5 + k * 4194304.0);
                acc += fixed * in[(size_t)i * in_step + (size_t)ch];
            }
            int64_t v = acc < 0 ? 0 : acc / 4194304;
            out[(size_t)o * out_step + (size_t)ch] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

/* Full image: horizontal pass over every row, then vertical; a pass is skipped when its size is
 * unchanged. */
static void oracle_resize(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    uint8_t *mid = malloc((size_t)dw * (size_t)sh * 3);
    for (int y = 0; y < sh; y++) {
        if (dw == sw)
            memcpy(mid + (size_t)y * dw * 3, src + (size_t)y * sw * 3, (size_t)sw * 3);
        else
            oracle_line(src + (size_t)y * sw * 3, 3, sw, mid + (size_t)y * dw * 3, 3, dw);
    }
    for (int x = 0; x < dw; x++) {
        if (dh == sh) {
            for (int y = 0; y < dh; y++)
                memcpy(dst + ((size_t)y * dw + x) * 3, mid + ((size_t)y * dw + x) * 3, 3);
        } else {
            oracle_line(mid + (size_t)x * 3, (size_t)dw * 3, sh, dst + (size_t)x * 3, (size_t)dw * 3, dh);
        }
    }
    free(mid);
}

static uint8_t *random_image(int w, int h, uint64_t seed)
{
    uint8_t *p = malloc((size_t)w * (size_t)h * 3 + 1);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < (size_t)w * (size_t)h * 3; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        /* mostly smooth with hard edges, so both clipping ends are reached */
        p[i] = (uint8_t)((s >> 60) < 3 ? ((s >> 59) & 1) * 255 : (s >> 24));
    }
    return p;
}

static void check_against_oracle(int sw, int sh, int dw, int dh, lnx_pool *pool, uint64_t seed)
{
    /* a padded source stride checks that the stride is honoured */
    int stride = sw * 3 + 5;
    uint8_t *packed = random_image(sw, sh, seed);
    uint8_t *src = malloc((size_t)stride * (size_t)sh);
    for (int y = 0; y < sh; y++)
        memcpy(src + (size_t)y * stride, packed + (size_t)y * sw * 3, (size_t)sw * 3);
    size_t n = (size_t)dw * (size_t)dh * 3;
    uint8_t *want = malloc(n), *got = malloc(n);
    oracle_resize(packed, sw, sh, want, dw, dh);
    assert_int_equal(lnx_resize_bicubic(src, sw, sh, stride, got, dw, dh, pool), LNX_OK);
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i])
            fail_msg("%dx%d -> %dx%d: byte %zu is %d, oracle %d", sw, sh, dw, dh, i, got[i], want[i]);
    }
    free(packed);
    free(src);
    free(want);
    free(got);
}

static void resize_matches_oracle_up_and_down_by_odd_factors(void **state)
{
    (void)state;
    static const int sizes[][4] = {
        { 37, 23, 111, 69 }, { 101, 77, 33, 25 }, { 64, 48, 21, 16 }, { 17, 90, 51, 30 },
        { 160, 120, 74, 56 }, { 90, 50, 100, 56 }, { 120, 80, 112, 75 }, { 50, 130, 56, 146 },
        { 333, 211, 47, 29 }, { 7, 5, 63, 45 }, { 200, 3, 13, 7 }, { 31, 29, 30, 28 },
        { 640, 360, 99, 56 },
    };
    lnx_pool *pool;
    assert_int_equal(lnx_pool_create(&pool, 3), LNX_OK);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_against_oracle(sizes[i][0], sizes[i][1], sizes[i][2], sizes[i][3], NULL, i);
        check_against_oracle(sizes[i][0], sizes[i][1], sizes[i][2], sizes[i][3], pool, i);
    }
    lnx_pool_free(pool);
}

static void resize_handles_lines_single_pixels_and_one_changed_axis(void **state)
{
    (void)state;
    static const int sizes[][4] = {
        { 1, 50, 7, 3 }, { 50, 1, 3, 9 }, { 1, 1, 5, 5 }, { 13, 1, 1, 1 }, { 1, 13, 1, 1 }, { 1, 40, 1, 13 },
        { 40, 1, 97, 1 }, { 30, 20, 30, 57 }, { 30, 20, 11, 20 }, { 23, 19, 23, 19 }, { 2, 2, 1, 1 },
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_against_oracle(sizes[i][0], sizes[i][1], sizes[i][2], sizes[i][3], NULL, 100 + i);
}

static void resize_to_the_same_size_is_a_copy(void **state)
{
    (void)state;
    uint8_t *img = random_image(19, 11, 5);
    uint8_t out[19 * 11 * 3];
    assert_int_equal(lnx_resize_bicubic(img, 19, 11, 19 * 3, out, 19, 11, NULL), LNX_OK);
    assert_memory_equal(out, img, sizeof out);
    free(img);
}

static void resize_rejects_invalid_arguments(void **state)
{
    (void)state;
    uint8_t img[4 * 4 * 3] = { 0 }, out[4 * 4 * 3];
    assert_int_equal(lnx_resize_bicubic(img, 0, 4, 12, out, 4, 4, NULL), LNX_E_INVALID);
    assert_int_equal(lnx_resize_bicubic(img, 4, -1, 12, out, 4, 4, NULL), LNX_E_INVALID);
    assert_int_equal(lnx_resize_bicubic(img, 4, 4, 11, out, 4, 4, NULL), LNX_E_INVALID);
    assert_int_equal(lnx_resize_bicubic(img, 4, 4, 12, out, 0, 4, NULL), LNX_E_INVALID);
    assert_int_equal(lnx_resize_bicubic(img, 4, 4, 12, out, 4, (1 << 24) + 1, NULL), LNX_E_INVALID);
    assert_int_equal(lnx_resize_bicubic(NULL, 4, 4, 12, out, 4, 4, NULL), LNX_E_INVALID);
    assert_int_equal(lnx_resize_bicubic(img, 4, 4, 12, NULL, 4, 4, NULL), LNX_E_INVALID);
    assert_string_contains(lnx_last_error(), "NULL");
}

/* ---- per-frame path ---- */

/* The processor's steps done the long way: full resize, crop with zero padding, table lookup. */
static void frame_the_long_way(const lnx_preproc_cfg *c, const uint8_t *img, int w, int h, float *out, int *oh,
                               int *ow)
{
    int rh = h, rw = w;
    if (c->do_resize) {
        if (w <= h) {
            rw = c->shortest_edge;
            rh = (int)((double)(c->shortest_edge * h) / w);
        } else {
            rh = c->shortest_edge;
            rw = (int)((double)(c->shortest_edge * w) / h);
        }
    }
    uint8_t *rs = malloc((size_t)rw * (size_t)rh * 3);
    assert_int_equal(lnx_resize_bicubic(img, w, h, w * 3, rs, rw, rh, NULL), LNX_OK);
    *oh = c->do_center_crop ? c->crop_h : rh;
    *ow = c->do_center_crop ? c->crop_w : rw;
    int top = (int)floor((rh - *oh) / 2.0), left = (int)floor((rw - *ow) / 2.0);
    size_t plane = (size_t)*oh * (size_t)*ow;
    for (int ch = 0; ch < 3; ch++) {
        for (int y = 0; y < *oh; y++) {
            for (int x = 0; x < *ow; x++) {
                int sy = y + top, sx = x + left;
                uint8_t v = (sy >= 0 && sy < rh && sx >= 0 && sx < rw) ? rs[((size_t)sy * rw + sx) * 3 + ch] : 0;
                float f = c->do_rescale ? (float)(v * c->rescale_factor) : (float)v;
                if (c->do_normalize)
                    f = (f - c->mean[ch]) / c->std[ch];
                out[ch * plane + (size_t)y * *ow + x] = f;
            }
        }
    }
    free(rs);
}

static void check_frame(const lnx_preproc_cfg *c, int w, int h, lnx_pool *pool, uint64_t seed)
{
    uint8_t *img = random_image(w, h, seed);
    int32_t osz[2];
    assert_int_equal(lnx_preproc_output_size(osz, c, w, h), LNX_OK);
    size_t n = 3 * (size_t)osz[0] * (size_t)osz[1];
    float *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
    int oh, ow;
    frame_the_long_way(c, img, w, h, want, &oh, &ow);
    assert_int_equal(oh, osz[0]);
    assert_int_equal(ow, osz[1]);
    assert_int_equal(lnx_preprocess_frame(c, img, w, h, w * 3, got, pool), LNX_OK);
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("frame %dx%d: value %zu is %.9g, want %.9g", w, h, i, got[i], want[i]);
    }
    free(img);
    free(want);
    free(got);
}

static void frame_equals_full_resize_then_crop_then_normalise(void **state)
{
    (void)state;
    lnx_pool *pool;
    assert_int_equal(lnx_pool_create(&pool, 4), LNX_OK);
    lnx_preproc_cfg c;
    lnx_preproc_cfg_default(&c, 56);
    static const int sizes[][2] = { { 160, 120 }, { 90, 50 }, { 50, 90 }, { 56, 56 }, { 56, 55 }, { 55, 56 },
                                    { 1, 7 }, { 300, 301 }, { 57, 200 } };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_frame(&c, sizes[i][0], sizes[i][1], (i & 1) ? pool : NULL, 200 + i);
    }
    /* a crop larger than the resized image is padded with zero bytes */
    c.crop_h = 40;
    c.crop_w = 70;
    c.shortest_edge = 32;
    check_frame(&c, 64, 48, pool, 300);
    check_frame(&c, 48, 200, NULL, 301);
    /* steps switched off */
    lnx_preproc_cfg_default(&c, 24);
    c.do_center_crop = 0;
    check_frame(&c, 47, 31, pool, 302);
    c.do_resize = 0;
    c.do_center_crop = 1;
    check_frame(&c, 47, 31, NULL, 303);
    c.do_rescale = 0;
    check_frame(&c, 47, 31, NULL, 304);
    c.do_normalize = 0;
    c.do_rescale = 1;
    check_frame(&c, 47, 31, NULL, 305);
    lnx_pool_free(pool);
}

static void frame_prep_is_reusable_and_reports_its_memory(void **state)
{
    (void)state;
    lnx_preproc_cfg c;
    lnx_preproc_cfg_default(&c, 336);
    lnx_frame_prep *fp;
    assert_int_equal(lnx_frame_prep_create(&fp, &c, 1280, 720), LNX_OK);
    int32_t osz[2];
    lnx_frame_prep_output_size(fp, osz);
    assert_int_equal(osz[0], 336);
    assert_int_equal(osz[1], 336);
    /* 720 intermediate rows of the 336 kept columns, plus the coefficients */
    size_t bytes = lnx_frame_prep_bytes(fp);
    print_message("frame preprocessor 1280x720 -> 336x336 holds %zu bytes\n", bytes);
    assert_true(bytes >= (size_t)720 * 336 * 3 && bytes < (size_t)900 * 1000);
    uint8_t *img = random_image(1280, 720, 9);
    size_t n = 3 * 336 * 336;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    assert_int_equal(lnx_frame_prep_run(fp, img, 1280 * 3, a, NULL), LNX_OK);
    assert_int_equal(lnx_preprocess_frame(&c, img, 1280, 720, 1280 * 3, b, NULL), LNX_OK);
    assert_memory_equal(a, b, n * sizeof(float));
    assert_int_equal(lnx_frame_prep_run(fp, img, 1280 * 3 - 1, a, NULL), LNX_E_INVALID);
    lnx_frame_prep_free(fp);
    lnx_frame_prep_free(NULL);
    free(img);
    free(a);
    free(b);
}

static void frame_rejects_invalid_settings(void **state)
{
    (void)state;
    lnx_preproc_cfg c;
    lnx_preproc_cfg_default(&c, 56);
    lnx_frame_prep *fp = (lnx_frame_prep *)&c;
    c.std[1] = 0.0f;
    assert_int_equal(lnx_frame_prep_create(&fp, &c, 10, 10), LNX_E_INVALID);
    assert_null(fp);
    lnx_preproc_cfg_default(&c, 56);
    c.resample = 2;
    assert_int_equal(lnx_frame_prep_create(&fp, &c, 10, 10), LNX_E_UNSUPPORTED);
    lnx_preproc_cfg_default(&c, 0);
    assert_int_equal(lnx_frame_prep_create(&fp, &c, 10, 10), LNX_E_INVALID);
    lnx_preproc_cfg_default(&c, 56);
    assert_int_equal(lnx_frame_prep_create(&fp, &c, 0, 10), LNX_E_INVALID);
    assert_int_equal(lnx_frame_prep_create(&fp, NULL, 10, 10), LNX_E_INVALID);
    /* the long side would exceed the size limit */
    assert_int_equal(lnx_frame_prep_create(&fp, &c, 1 << 20, 1), LNX_E_LIMIT);
    int32_t sz[2];
    assert_int_equal(lnx_preproc_resized_size(sz, &c, 1280, 720), LNX_OK);
    assert_int_equal(sz[0], 56);
    assert_int_equal(sz[1], 99);
    assert_int_equal(lnx_preproc_resized_size(sz, &c, 55, 56), LNX_OK);
    assert_int_equal(sz[0], 57);
    assert_int_equal(sz[1], 56);
}

/* ---- AnyRes geometry and token arithmetic ---- */

static const int32_t tiny_pins[5][2] = { { 56, 112 }, { 112, 56 }, { 112, 112 }, { 168, 56 }, { 56, 168 } };

static void best_resolution_breaks_ties_by_waste_then_order(void **state)
{
    (void)state;
    int32_t best[2];
    const int32_t wide_first[2][2] = { { 56, 112 }, { 112, 56 } };
    const int32_t tall_first[2][2] = { { 112, 56 }, { 56, 112 } };
    assert_int_equal(lnx_anyres_best_resolution(best, 100, 100, wide_first, 2), LNX_OK);
    assert_int_equal(best[0], 56);
    assert_int_equal(best[1], 112);
    assert_int_equal(lnx_anyres_best_resolution(best, 100, 100, tall_first, 2), LNX_OK);
    assert_int_equal(best[0], 112);
    assert_int_equal(best[1], 56);
    /* both cover the whole 100x100 image: the smaller waste wins although it comes second */
    const int32_t big_first[2][2] = { { 168, 168 }, { 112, 112 } };
    assert_int_equal(lnx_anyres_best_resolution(best, 100, 100, big_first, 2), LNX_OK);
    assert_int_equal(best[0], 112);
    /* larger effective resolution beats smaller waste */
    assert_int_equal(lnx_anyres_best_resolution(best, 80, 120, tiny_pins, 5), LNX_OK);
    assert_int_equal(best[0], 112);
    assert_int_equal(best[1], 112);
    assert_int_equal(lnx_anyres_best_resolution(best, 130, 50, tiny_pins, 5), LNX_OK);
    assert_int_equal(best[0], 168);
    assert_int_equal(best[1], 56);
    assert_int_equal(lnx_anyres_best_resolution(best, 130, 50, tiny_pins, 0), LNX_E_INVALID);
    assert_int_equal(lnx_anyres_best_resolution(best, 0, 50, tiny_pins, 5), LNX_E_INVALID);
}

static void anyres_plan_pads_one_pixel_short_when_odd(void **state)
{
    (void)state;
    lnx_anyres_plan p;
    assert_int_equal(lnx_anyres_plan_for(&p, 80, 120, tiny_pins, 5, 56, 14), LNX_OK);
    assert_int_equal(p.resized_h, 75);
    assert_int_equal(p.resized_w, 112);
    assert_int_equal(p.pad_top, 18);
    assert_int_equal(p.pad_left, 0);
    assert_int_equal(p.padded_h, 111);
    assert_int_equal(p.padded_w, 112);
    assert_int_equal(p.rows, 2);
    assert_int_equal(p.cols, 2);
    assert_int_equal(p.patches, 5);
    assert_int_equal(p.grid, 4);
    assert_int_equal(p.feat_h, 8);
    assert_int_equal(p.unpadded_rows, 6);
    assert_int_equal(p.unpadded_cols, 8);
    assert_int_equal(p.unpad_top, 1);
    assert_int_equal(p.tokens, 70);
    assert_int_equal(lnx_anyres_token_count(4, 6, 8), 70);
    assert_int_equal(lnx_video_tokens_per_frame(56, 14), 4);
    assert_int_equal(lnx_video_tokens_per_frame(336, 14), 144);
    int32_t un[4];
    assert_int_equal(lnx_anyres_unpad(un, 130, 50, 12, 4), LNX_OK);
    assert_int_equal(un[0], 10);
    assert_int_equal(un[1], 4);
    assert_int_equal(un[2], 1);
    assert_int_equal(un[3], 0);
    /* the 7B model's geometry for a 1280x720 picture */
    const int32_t pins7b[5][2] = { { 336, 672 }, { 672, 336 }, { 672, 672 }, { 1008, 336 }, { 336, 1008 } };
    assert_int_equal(lnx_anyres_plan_for(&p, 720, 1280, pins7b, 5, 336, 14), LNX_OK);
    assert_int_equal(p.best_h, 672);
    assert_int_equal(p.best_w, 672);
    assert_int_equal(p.resized_h, 378);
    assert_int_equal(p.pad_top, 147);
    assert_int_equal(p.grid, 24);
    assert_int_equal(p.unpad_top, 10);
    assert_int_equal(p.unpadded_rows, 28);
    assert_int_equal(p.unpadded_cols, 48);
    assert_int_equal(p.tokens, 576 + 28 * 49);
}

static void anyres_rejects_invalid_geometry(void **state)
{
    (void)state;
    lnx_anyres_plan p;
    const int32_t odd_pin[1][2] = { { 100, 112 } };
    assert_int_equal(lnx_anyres_plan_for(&p, 80, 120, odd_pin, 1, 56, 14), LNX_E_INVALID);
    assert_int_equal(lnx_anyres_plan_for(&p, 80, 120, tiny_pins, 5, 50, 14), LNX_E_INVALID);
    assert_int_equal(lnx_anyres_plan_for(&p, 80, 120, tiny_pins, 5, 56, 0), LNX_E_INVALID);
    assert_int_equal(lnx_anyres_plan_for(&p, 80, 120, NULL, 5, 56, 14), LNX_E_INVALID);
    assert_int_equal(lnx_anyres_plan_for(&p, 80, -120, tiny_pins, 5, 56, 14), LNX_E_INVALID);
    assert_int_equal(lnx_anyres_plan_for(&p, 80, 120, tiny_pins, 5, 56, 14), LNX_OK);
    uint8_t img[3] = { 0 };
    float out[1];
    lnx_preproc_cfg c;
    lnx_preproc_cfg_default(&c, 56);
    assert_int_equal(lnx_preprocess_anyres(&c, &p, img, 1, 1, 3, out, NULL), LNX_E_INVALID);
    c.crop_h = 28;
    c.crop_w = 28;
    uint8_t *big = random_image(120, 80, 1);
    assert_int_equal(lnx_preprocess_anyres(&c, &p, big, 120, 80, 360, out, NULL), LNX_E_UNSUPPORTED);
    free(big);
}

/* ---- reference fixtures ---- */

typedef struct fixture {
    lnx_st *st;
    json_t *json;
} fixture;

static void fixture_open(fixture *f, const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/tiny-a/%s/reference.safetensors", name);
    assert_int_equal(lnx_st_open(&f->st, tu_data(rel), LNX_ST_MMAP), LNX_OK);
    snprintf(rel, sizeof rel, "reference/tiny-a/%s/case.json", name);
    json_error_t err;
    f->json = json_load_file(tu_data(rel), 0, &err);
    assert_non_null(f->json);
}

static void fixture_close(fixture *f)
{
    lnx_st_close(f->st);
    json_decref(f->json);
}

static const lnx_st_tensor *tensor(const fixture *f, const char *name, lnx_st_dtype dt, int32_t ndim)
{
    const lnx_st_tensor *t = lnx_st_find(f->st, name);
    if (!t)
        fail_msg("tensor %s is missing", name);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    return t;
}

static int json_int(const json_t *o, const char *key, size_t index)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_array(v))
        v = json_array_get(v, index);
    if (!json_is_integer(v))
        fail_msg("case.json has no integer %s[%zu]", key, index);
    return (int)json_integer_value(v);
}

/* The tiny-a processor settings, read from its preprocessor_config.json. */
static void tiny_cfg(lnx_preproc_cfg *c, int32_t pins[8][2], int32_t *npin)
{
    json_error_t err;
    json_t *j = json_load_file(tu_data("tiny-a/preprocessor_config.json"), 0, &err);
    assert_non_null(j);
    lnx_preproc_cfg_default(c, 0);
    c->shortest_edge = (int32_t)json_integer_value(json_object_get(json_object_get(j, "size"), "shortest_edge"));
    c->crop_h = (int32_t)json_integer_value(json_object_get(json_object_get(j, "crop_size"), "height"));
    c->crop_w = (int32_t)json_integer_value(json_object_get(json_object_get(j, "crop_size"), "width"));
    for (size_t i = 0; i < 3; i++) {
        c->mean[i] = (float)json_real_value(json_array_get(json_object_get(j, "image_mean"), i));
        c->std[i] = (float)json_real_value(json_array_get(json_object_get(j, "image_std"), i));
    }
    c->rescale_factor = json_real_value(json_object_get(j, "rescale_factor"));
    c->resample = (int32_t)json_integer_value(json_object_get(j, "resample"));
    const json_t *pp = json_object_get(j, "image_grid_pinpoints");
    *npin = (int32_t)json_array_size(pp);
    assert_true(*npin >= 1 && *npin <= 8);
    for (int32_t i = 0; i < *npin; i++) {
        pins[i][0] = (int32_t)json_integer_value(json_array_get(json_array_get(pp, (size_t)i), 0));
        pins[i][1] = (int32_t)json_integer_value(json_array_get(json_array_get(pp, (size_t)i), 1));
    }
    json_decref(j);
}

static void assert_bytes_equal(const uint8_t *got, const void *want, size_t n, const char *what)
{
    const uint8_t *w = want;
    for (size_t i = 0; i < n; i++) {
        if (got[i] != w[i])
            fail_msg("%s: byte %zu is %d, reference %d", what, i, got[i], w[i]);
    }
}

/* Largest |got - ref| over n floats of an unaligned reference tensor. */
static double max_diff(const float *got, const void *ref, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        float r;
        memcpy(&r, (const uint8_t *)ref + i * sizeof(float), sizeof r);
        double d = fabs((double)got[i] - (double)r);
        m = d > m ? d : m;
    }
    return m;
}

static void check_video_case(const char *name, lnx_pool *pool)
{
    fixture f;
    fixture_open(&f, name);
    lnx_preproc_cfg c;
    int32_t pins[8][2], npin;
    tiny_cfg(&c, pins, &npin);
    const lnx_st_tensor *in = tensor(&f, "video_frames_rgb24", LNX_ST_U8, 4);
    const lnx_st_tensor *rs = tensor(&f, "video_frames_resized_rgb24", LNX_ST_U8, 4);
    const lnx_st_tensor *cr = tensor(&f, "video_frames_cropped_rgb24", LNX_ST_U8, 4);
    const lnx_st_tensor *pv = tensor(&f, "pixel_values_videos", LNX_ST_F32, 5);
    int32_t F = (int32_t)in->shape[0], H = (int32_t)in->shape[1], W = (int32_t)in->shape[2];
    int32_t S = c.crop_h;
    int32_t rsz[2];
    assert_int_equal(lnx_preproc_resized_size(rsz, &c, W, H), LNX_OK);
    assert_int_equal(rsz[0], rs->shape[1]);
    assert_int_equal(rsz[1], rs->shape[2]);
    assert_int_equal(pv->shape[1], F);
    assert_int_equal(pv->shape[3], S);

    /* the same frames as bytes: rescale and normalise off give float(u8) of the crop */
    lnx_preproc_cfg raw = c;
    raw.do_rescale = 0;
    raw.do_normalize = 0;
    lnx_frame_prep *fp, *fp_raw;
    assert_int_equal(lnx_frame_prep_create(&fp, &c, W, H), LNX_OK);
    assert_int_equal(lnx_frame_prep_create(&fp_raw, &raw, W, H), LNX_OK);
    size_t frame_bytes = (size_t)H * W * 3, rs_bytes = (size_t)rsz[0] * rsz[1] * 3, plane = (size_t)S * S;
    uint8_t *resized = malloc(rs_bytes);
    float *planes = malloc(3 * plane * sizeof(float));
    uint8_t *crop = malloc(3 * plane);
    double worst = 0;
    for (int32_t i = 0; i < F; i++) {
        const uint8_t *frame = (const uint8_t *)in->data + (size_t)i * frame_bytes;
        assert_int_equal(lnx_resize_bicubic(frame, W, H, W * 3, resized, rsz[1], rsz[0], pool), LNX_OK);
        assert_bytes_equal(resized, (const uint8_t *)rs->data + (size_t)i * rs_bytes, rs_bytes, "resized frame");
        assert_int_equal(lnx_frame_prep_run(fp_raw, frame, W * 3, planes, pool), LNX_OK);
        for (size_t p = 0; p < plane; p++)
            for (size_t ch = 0; ch < 3; ch++)
                crop[p * 3 + ch] = (uint8_t)planes[ch * plane + p];
        assert_bytes_equal(crop, (const uint8_t *)cr->data + (size_t)i * 3 * plane, 3 * plane, "cropped frame");
        assert_int_equal(lnx_frame_prep_run(fp, frame, W * 3, planes, pool), LNX_OK);
        double d = max_diff(planes, (const uint8_t *)pv->data + (size_t)i * 3 * plane * sizeof(float), 3 * plane);
        worst = d > worst ? d : worst;
    }
    /* the whole batch at once */
    lnx_frames *batch;
    assert_int_equal(lnx_frames_alloc(&batch, F, W, H, 0), LNX_OK);
    memcpy(batch->data, in->data, (size_t)F * frame_bytes);
    float *all = malloc((size_t)F * 3 * plane * sizeof(float));
    assert_int_equal(lnx_preprocess_frames(&c, batch, all, pool), LNX_OK);
    double batch_worst = max_diff(all, pv->data, (size_t)F * 3 * plane);
    print_message("%s: %d frames %dx%d, resized/cropped bytes exact, pixel_values_videos max |diff| = %g (batch %g)\n",
                  name, (int)F, (int)W, (int)H, worst, batch_worst);
    assert_true(worst <= 1e-6);
    assert_true(batch_worst <= 1e-6);
    free(all);
    lnx_frames_free(batch);
    lnx_frame_prep_free(fp);
    lnx_frame_prep_free(fp_raw);
    free(resized);
    free(planes);
    free(crop);
    fixture_close(&f);
}

static void check_image_case(const char *name, lnx_pool *pool)
{
    fixture f;
    fixture_open(&f, name);
    lnx_preproc_cfg c;
    int32_t pins[8][2], npin;
    tiny_cfg(&c, pins, &npin);
    const lnx_st_tensor *in = tensor(&f, "image_rgb24", LNX_ST_U8, 3);
    const lnx_st_tensor *base = tensor(&f, "image_base_resized_rgb24", LNX_ST_U8, 3);
    const lnx_st_tensor *hr = tensor(&f, "image_hr_resized_rgb24", LNX_ST_U8, 3);
    const lnx_st_tensor *pad = tensor(&f, "image_hr_padded_rgb24", LNX_ST_U8, 3);
    const lnx_st_tensor *pv = tensor(&f, "pixel_values", LNX_ST_F32, 5);
    int32_t H = (int32_t)in->shape[0], W = (int32_t)in->shape[1], S = c.crop_h;

    lnx_anyres_plan p;
    assert_int_equal(lnx_anyres_plan_for(&p, H, W, (const int32_t(*)[2])pins, npin, S, 14), LNX_OK);
    assert_int_equal(p.best_h, json_int(f.json, "best_resolution_hw", 0));
    assert_int_equal(p.best_w, json_int(f.json, "best_resolution_hw", 1));
    assert_int_equal(p.rows, json_int(f.json, "grid_rows_cols", 0));
    assert_int_equal(p.cols, json_int(f.json, "grid_rows_cols", 1));
    assert_int_equal(p.unpadded_rows, json_int(f.json, "unpadded_feature_rows", 0));
    assert_int_equal(p.unpadded_cols, json_int(f.json, "unpadded_feature_cols", 0));
    assert_int_equal(p.tokens, json_int(f.json, "num_image_tokens", 0));
    assert_int_equal(p.patches, json_int(f.json, "num_patches_incl_base", 0));
    assert_int_equal(p.grid * p.grid, json_int(f.json, "base_tokens", 0));
    assert_int_equal(p.unpadded_rows, json_int(f.json, "newline_tokens", 0));
    assert_int_equal(p.resized_h, hr->shape[0]);
    assert_int_equal(p.resized_w, hr->shape[1]);
    assert_int_equal(p.padded_h, pad->shape[0]);
    assert_int_equal(p.padded_w, pad->shape[1]);
    assert_int_equal(p.patches, pv->shape[1]);

    size_t n = (size_t)S * S * 3;
    uint8_t *buf = malloc((size_t)p.padded_h * p.padded_w * 3 + n + (size_t)p.resized_h * p.resized_w * 3);
    assert_int_equal(lnx_resize_bicubic(in->data, W, H, W * 3, buf, S, S, pool), LNX_OK);
    assert_bytes_equal(buf, base->data, n, "base image");
    n = (size_t)p.resized_h * p.resized_w * 3;
    assert_int_equal(lnx_resize_bicubic(in->data, W, H, W * 3, buf, p.resized_w, p.resized_h, pool), LNX_OK);
    assert_bytes_equal(buf, hr->data, n, "resized for patching");
    n = (size_t)p.padded_h * p.padded_w * 3;
    assert_int_equal(lnx_anyres_padded_image(&p, in->data, W, H, W * 3, buf, pool), LNX_OK);
    assert_bytes_equal(buf, pad->data, n, "padded");
    free(buf);

    n = (size_t)p.patches * 3 * S * S;
    float *out = malloc(n * sizeof(float));
    assert_int_equal(lnx_preprocess_anyres(&c, &p, in->data, W, H, W * 3, out, pool), LNX_OK);
    double d = max_diff(out, pv->data, n);
    print_message("%s: %dx%d -> best %dx%d, %d patches, %d tokens, pixel_values max |diff| = %g\n", name, (int)W,
                  (int)H, (int)p.best_w, (int)p.best_h, (int)p.patches, (int)p.tokens, d);
    assert_true(d <= 1e-6);
    free(out);
    fixture_close(&f);
}

static void video_cases_match_the_processor(void **state)
{
    (void)state;
    static const char *cases[] = { "video8_h264", "video4_vp9", "video8_mjpeg", "video4_h264_90x50",
                                   "image_video_mixed" };
    lnx_pool *pool;
    assert_int_equal(lnx_pool_create(&pool, 3), LNX_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_video_case(cases[i], (i & 1) ? pool : NULL);
    lnx_pool_free(pool);
}

static void image_cases_match_the_processor(void **state)
{
    (void)state;
    static const char *cases[] = { "image_png_120x80", "image_jpeg_50x130", "image_video_mixed" };
    lnx_pool *pool;
    assert_int_equal(lnx_pool_create(&pool, 3), LNX_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_image_case(cases[i], (i & 1) ? NULL : pool);
    lnx_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resize_matches_oracle_up_and_down_by_odd_factors),
        cmocka_unit_test(resize_handles_lines_single_pixels_and_one_changed_axis),
        cmocka_unit_test(resize_to_the_same_size_is_a_copy),
        cmocka_unit_test(resize_rejects_invalid_arguments),
        cmocka_unit_test(frame_equals_full_resize_then_crop_then_normalise),
        cmocka_unit_test(frame_prep_is_reusable_and_reports_its_memory),
        cmocka_unit_test(frame_rejects_invalid_settings),
        cmocka_unit_test(best_resolution_breaks_ties_by_waste_then_order),
        cmocka_unit_test(anyres_plan_pads_one_pixel_short_when_odd),
        cmocka_unit_test(anyres_rejects_invalid_geometry),
        cmocka_unit_test(video_cases_match_the_processor),
        cmocka_unit_test(image_cases_match_the_processor),
    };
    return cmocka_run_group_tests_name("preprocess", tests, NULL, NULL);
}
