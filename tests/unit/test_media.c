/* Frame sampler: reference frames, sources, seek-based vs decode-everything, sampling policies,
 * host frames, and bad input (generated at run time with libav's encoders). */
#include "../common/testutil.h"

#include <math.h>
#include <stdlib.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>

#include "io/safetensors.h"
#include "media/media_internal.h"
#include "media/sampler.h"

/* --- helpers --------------------------------------------------------------------------------- */

static lnx_media *open_ok(const char *path, const lnx_media_opts *o)
{
    lnx_media *m = NULL;
    lnx_status st = lnx_media_open_path(&m, path, o);
    if (st)
        fail_msg("open %s: %d %s", path, st, lnx_last_error());
    return m;
}

static void assert_frames_equal(const lnx_frames *a, const lnx_frames *b)
{
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    for (int32_t i = 0; i < a->count; i++) {
        assert_int_equal(a->index[i], b->index[i]);
        if (memcmp(lnx_frame_ptr(a, i), lnx_frame_ptr(b, i), (size_t)a->width * (size_t)a->height * 3) != 0)
            fail_msg("frame %d (source index %lld) differs", (int)i, (long long)a->index[i]);
    }
}

/* Frames of `all` (every frame of the source, in order) at the given indices. */
static void assert_matches_all(const lnx_frames *got, const lnx_frames *all, const int64_t *idx, int32_t n)
{
    assert_int_equal(got->count, n);
    size_t bytes = (size_t)all->width * (size_t)all->height * 3;
    for (int32_t i = 0; i < n; i++) {
        assert_int_equal(got->index[i], idx[i]);
        if (memcmp(lnx_frame_ptr(got, i), lnx_frame_ptr(all, (int32_t)idx[i]), bytes) != 0)
            fail_msg("frame %lld (slot %d) differs from the decode-everything pass", (long long)idx[i], (int)i);
        assert_true(got->time[i] == all->time[idx[i]]);
    }
}

static void expect_error(lnx_status st, lnx_status want, const char *needle)
{
    if (st != want)
        fail_msg("status %d (%s), expected %d; message: %s", st, lnx_status_name(st), want, lnx_last_error());
    if (!strstr(lnx_last_error(), needle))
        fail_msg("message \"%s\" lacks \"%s\"", lnx_last_error(), needle);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* --- test video generation --------------------------------------------------------------------- */

typedef struct gen {
    const char *path, *muxer, *encoder;
    int w, h, frames, gop, bframes;
    enum AVPixelFormat pix;
    AVRational tb;          /* encoder time base; pts are 0, 1, 2, ... unless pts is given */
    const int64_t *pts;
    int rotation;           /* clockwise display rotation, written as display matrix side data */
    int bad_packet;         /* packet number whose bytes are replaced by zeros; -1 none */
    int no_packets;         /* write the header and trailer only */
} gen;

static void fill_picture(AVFrame *f, int i)
{
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++)
            f->data[0][y * f->linesize[0] + x] = (uint8_t)(x * 3 + y * 2 + i * 7 + ((x / 8 + y / 8 + i) & 1) * 40);
    int cw = (f->width + 1) / 2, ch = (f->height + 1) / 2;
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            f->data[1][y * f->linesize[1] + x] = (uint8_t)(64 + x * 2 + i * 3);
            f->data[2][y * f->linesize[2] + x] = (uint8_t)(200 - y * 2 - i);
        }
}

static int write_packets(AVFormatContext *oc, AVCodecContext *enc, AVStream *st, AVPacket *pkt, const gen *g,
                         int *npkt)
{
    int ret;
    while ((ret = avcodec_receive_packet(enc, pkt)) == 0) {
        if (!g->pts && pkt->duration == 0)
            pkt->duration = 1; /* else MP4 edit lists end before the last frame */
        av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
        pkt->stream_index = st->index;
        if (*npkt == g->bad_packet) {
            if (av_packet_make_writable(pkt) < 0)
                return -1;
            memset(pkt->data, 0, (size_t)pkt->size);
        }
        (*npkt)++;
        if (av_interleaved_write_frame(oc, pkt) < 0)
            return -1;
    }
    return ret == AVERROR(EAGAIN) || ret == AVERROR_EOF ? 0 : -1;
}

/* Returns 0 on success, 1 when the encoder is not available, -1 on failure. */
static int gen_video(const gen *g)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(g->encoder);
    if (!codec)
        return 1;
    AVFormatContext *oc = NULL;
    if (avformat_alloc_output_context2(&oc, NULL, g->muxer, g->path) < 0)
        return -1;
    AVCodecContext *enc = avcodec_alloc_context3(codec);
    AVStream *st = avformat_new_stream(oc, NULL);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    int rc = -1, npkt = 0;
    if (!enc || !st || !pkt || !f)
        goto out;
    enc->width = g->w;
    enc->height = g->h;
    enc->pix_fmt = g->pix;
    enc->time_base = g->tb;
    enc->framerate = av_inv_q(g->tb);
    enc->gop_size = g->gop;
    enc->max_b_frames = g->bframes;
    enc->thread_count = 1;
    if (!strcmp(g->encoder, "libx264")) {
        av_opt_set(enc->priv_data, "preset", "ultrafast", 0);
        if (g->bframes) /* ultrafast turns B-frames off; keep them for reordering coverage */
            av_opt_set(enc->priv_data, "x264-params", "bframes=2:b-adapt=0:keyint-min=1", 0);
    }
    if (oc->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (avcodec_open2(enc, codec, NULL) < 0 || avcodec_parameters_from_context(st->codecpar, enc) < 0)
        goto out;
    st->time_base = enc->time_base;
    if (g->rotation) {
        /* Through libavformat 59's MP4 muxer and demuxer a matrix set to +R degrees reads back as
         * -R, which ffprobe prints as "rotation of -R degrees" and ffmpeg displays turned R degrees
         * clockwise (the convention of phone videos). */
        uint8_t *sd = av_stream_new_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t));
        if (!sd)
            goto out;
        av_display_rotation_set((int32_t *)sd, (double)g->rotation);
    }
    if (avio_open(&oc->pb, g->path, AVIO_FLAG_WRITE) < 0 || avformat_write_header(oc, NULL) < 0)
        goto out;
    f->width = g->w;
    f->height = g->h;
    f->format = g->pix;
    if (av_frame_get_buffer(f, 0) < 0)
        goto out;
    for (int i = 0; i < g->frames && !g->no_packets; i++) {
        if (av_frame_make_writable(f) < 0)
            goto out;
        fill_picture(f, i);
        f->pts = g->pts ? g->pts[i] : i;
        if (avcodec_send_frame(enc, f) < 0 || write_packets(oc, enc, st, pkt, g, &npkt) < 0)
            goto out;
    }
    if (!g->no_packets && (avcodec_send_frame(enc, NULL) < 0 || write_packets(oc, enc, st, pkt, g, &npkt) < 0))
        goto out;
    if (av_write_trailer(oc) < 0)
        goto out;
    rc = 0;
out:
    if (oc && oc->pb)
        avio_closep(&oc->pb);
    avformat_free_context(oc);
    avcodec_free_context(&enc);
    av_packet_free(&pkt);
    av_frame_free(&f);
    return rc;
}

static gen gen_defaults(const char *path)
{
    gen g = {.path = path, .muxer = "matroska", .encoder = "mpeg4", .w = 64, .h = 48, .frames = 30, .gop = 8,
             .pix = AV_PIX_FMT_YUV420P, .tb = {1, 25}, .bad_packet = -1};
    return g;
}

/* A temp dir per test group. */
static char *g_tmp;
static const char *tmp_path(const char *name)
{
    static char bufs[4][4096];
    static int slot;
    char *b = bufs[slot++ & 3];
    snprintf(b, sizeof bufs[0], "%s/%s", g_tmp, name);
    return b;
}

static int setup_tmp(void **state)
{
    (void)state;
    g_tmp = tu_tempdir();
    return g_tmp ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    if (!getenv("LNX_TEST_KEEP_TMP"))
        tu_rmtree(g_tmp);
    free(g_tmp);
    g_tmp = NULL;
    return 0;
}

/* --- reference cases --------------------------------------------------------------------------- */

typedef struct ref_case {
    const char *name, *media;
    int32_t num_frames;
    int64_t total;
} ref_case;

static const ref_case video_cases[] = {
    {"video8_h264", "media/clip_h264_160x120_97f.mp4", 8, 97},
    {"video4_vp9", "media/clip_vp9_128x96_60f.webm", 4, 60},
    {"video8_mjpeg", "media/clip_mjpeg_96x72_45f.avi", 8, 45},
    {"video4_h264_90x50", "media/clip_h264_90x50_41f.mp4", 4, 41},
    {"image_video_mixed", "media/clip_h264_160x120_97f.mp4", 4, 97},
};

static lnx_st *open_reference(const char *case_name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/tiny-a/%s/reference.safetensors", case_name);
    lnx_st *st = NULL;
    if (lnx_st_open(&st, tu_data(rel), LNX_ST_READ))
        fail_msg("cannot open %s: %s", rel, lnx_last_error());
    return st;
}

static void test_reference_video_frames(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof video_cases / sizeof video_cases[0]; c++) {
        const ref_case *rc = &video_cases[c];
        lnx_st *ref = open_reference(rc->name);
        const lnx_st_tensor *rgb = lnx_st_find(ref, "video_frames_rgb24");
        const lnx_st_tensor *idx = lnx_st_find(ref, "frame_indices");
        assert_non_null(rgb);
        assert_non_null(idx);
        assert_int_equal(rgb->dtype, LNX_ST_U8);
        assert_int_equal(rgb->ndim, 4);
        assert_int_equal(rgb->shape[0], rc->num_frames);

        lnx_media *m = open_ok(tu_data(rc->media), NULL);
        const lnx_media_info *in = lnx_media_get_info(m);
        assert_int_equal(in->frame_count, rc->total);
        assert_int_equal(in->height, rgb->shape[1]);
        assert_int_equal(in->width, rgb->shape[2]);

        int64_t want[16], got_idx[16];
        memcpy(want, idx->data, sizeof(int64_t) * (size_t)rc->num_frames);
        assert_int_equal(lnx_media_uniform_indices(m, rc->num_frames, got_idx), LNX_OK);
        for (int32_t k = 0; k < rc->num_frames; k++)
            assert_int_equal(got_idx[k], want[k]);

        lnx_frames *seek = NULL, *seq = NULL;
        assert_int_equal(lnx_media_read(m, got_idx, rc->num_frames, &seek), LNX_OK);
        assert_int_equal(lnx_media_read_sequential(m, got_idx, rc->num_frames, &seq), LNX_OK);
        assert_int_equal(seek->count, rc->num_frames);
        if (memcmp(seek->data, rgb->data, rgb->nbytes) != 0) {
            size_t first = 0;
            while (first < rgb->nbytes && seek->data[first] == ((const uint8_t *)rgb->data)[first])
                first++;
            fail_msg("%s: frames differ from the reference at byte %zu", rc->name, first);
        }
        assert_frames_equal(seek, seq);
        for (int32_t k = 0; k < rc->num_frames; k++) {
            assert_int_equal(seek->index[k], want[k]);
            assert_false(isnan(seek->time[k]));
        }
        lnx_frames_free(seek);
        lnx_frames_free(seq);
        lnx_media_close(m);
        lnx_st_close(ref);
    }
}

static void check_image(const char *case_name, const char *media, int w, int h)
{
    lnx_st *ref = open_reference(case_name);
    const lnx_st_tensor *rgb = lnx_st_find(ref, "image_rgb24");
    assert_non_null(rgb);
    assert_int_equal(rgb->shape[0], h);
    assert_int_equal(rgb->shape[1], w);
    lnx_media *m = open_ok(tu_data(media), NULL);
    const lnx_media_info *in = lnx_media_get_info(m);
    assert_int_equal(in->is_image, 1);
    assert_int_equal(in->frame_count, 1);
    assert_int_equal(in->width, w);
    assert_int_equal(in->height, h);
    int64_t zero = 0;
    lnx_frames *f = NULL;
    assert_int_equal(lnx_media_read(m, &zero, 1, &f), LNX_OK);
    assert_int_equal(f->count, 1);
    assert_memory_equal(f->data, rgb->data, rgb->nbytes);
    lnx_frames *g = NULL;
    assert_int_equal(lnx_media_read_all(m, &g), LNX_OK);
    assert_frames_equal(f, g);
    lnx_frames_free(f);
    lnx_frames_free(g);
    lnx_media_close(m);
    lnx_st_close(ref);
}

static void test_reference_images(void **state)
{
    (void)state;
    check_image("image_png_120x80", "media/image_120x80.png", 120, 80);
    check_image("image_jpeg_50x130", "media/image_50x130.jpg", 50, 130);
}

/* --- description ------------------------------------------------------------------------------ */

static void test_info_fields(void **state)
{
    (void)state;
    struct {
        const char *media, *container, *codec;
        int64_t frames;
        double fps;
        int w, h;
    } cases[] = {
        {"media/clip_h264_160x120_97f.mp4", "mov,mp4,m4a,3gp,3g2,mj2", "h264", 97, 25, 160, 120},
        {"media/clip_vp9_128x96_60f.webm", "matroska,webm", "vp9", 60, 24, 128, 96},
        {"media/clip_mjpeg_96x72_45f.avi", "avi", "mjpeg", 45, 15, 96, 72},
        {"media/clip_h264_90x50_41f.mp4", "mov,mp4,m4a,3gp,3g2,mj2", "h264", 41, 12, 90, 50},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lnx_media *m = open_ok(tu_data(cases[i].media), NULL);
        const lnx_media_info *in = lnx_media_get_info(m);
        assert_string_equal(in->container, cases[i].container);
        assert_string_equal(in->codec, cases[i].codec);
        assert_int_equal(in->frame_count, cases[i].frames);
        assert_int_equal(in->frame_count_exact, 1);
        assert_true(fabs(in->fps - cases[i].fps) < 1e-6);
        /* WebM keeps milliseconds: 2.499 s for 60 frames at 24 fps */
        assert_true(fabs(in->duration - (double)cases[i].frames / cases[i].fps) < 2e-3);
        assert_int_equal(in->width, cases[i].w);
        assert_int_equal(in->height, cases[i].h);
        assert_int_equal(in->coded_width, cases[i].w);
        assert_int_equal(in->rotation, 0);
        assert_int_equal(in->is_image, 0);
        assert_true(lnx_media_frame_time(m, 0) == 0.0);
        assert_true(fabs(lnx_media_frame_time(m, 10) - 10.0 / cases[i].fps) < 1e-3);
        assert_true(isnan(lnx_media_frame_time(m, cases[i].frames)));
        lnx_media_close(m);
    }
    lnx_media *m = open_ok(tu_data("media/image_120x80.png"), NULL);
    assert_string_equal(lnx_media_get_info(m)->codec, "png");
    assert_int_equal(lnx_media_get_info(m)->is_image, 1);
    lnx_media_close(m);
}

/* --- sources ----------------------------------------------------------------------------------- */

typedef struct host_stream {
    const uint8_t *data;
    int64_t size, pos;
    int reads;
} host_stream;

static int32_t host_read(void *user_data, uint8_t *buf, int32_t size)
{
    host_stream *h = user_data;
    h->reads++;
    int64_t left = h->size - h->pos;
    int32_t n = left < size ? (int32_t)left : size;
    if (n > 1000)
        n = 1000; /* short reads are legal */
    memcpy(buf, h->data + h->pos, (size_t)n);
    h->pos += n;
    return n;
}

static int64_t host_seek(void *user_data, int64_t offset, int32_t whence)
{
    host_stream *h = user_data;
    if (whence == LNX_MEDIA_SEEK_SIZE)
        return h->size;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? h->pos : h->size;
    if (base + offset < 0)
        return -1;
    h->pos = base + offset;
    return h->pos;
}

static void test_memory_and_callback_sources(void **state)
{
    (void)state;
    const char *media[] = {"media/clip_h264_160x120_97f.mp4", "media/clip_vp9_128x96_60f.webm",
                           "media/clip_mjpeg_96x72_45f.avi", "media/image_120x80.png", "media/image_50x130.jpg"};
    for (size_t i = 0; i < sizeof media / sizeof media[0]; i++) {
        size_t len = 0;
        char *bytes = tu_read_file(tu_data(media[i]), &len);
        assert_non_null(bytes);
        lnx_media *a = open_ok(tu_data(media[i]), NULL), *b = NULL, *c = NULL;
        assert_int_equal(lnx_media_open_memory(&b, bytes, len, NULL), LNX_OK);
        host_stream hs = {(const uint8_t *)bytes, (int64_t)len, 0, 0};
        assert_int_equal(lnx_media_open_callbacks(&c, host_read, host_seek, NULL, &hs), LNX_OK);
        assert_true(hs.reads > 0);
        const lnx_media_info *ia = lnx_media_get_info(a), *ib = lnx_media_get_info(b), *ic = lnx_media_get_info(c);
        assert_int_equal(ia->frame_count, ib->frame_count);
        assert_int_equal(ia->frame_count, ic->frame_count);
        assert_int_equal(ia->is_image, ib->is_image);
        assert_int_equal(ia->is_image, ic->is_image);
        assert_string_equal(ib->codec, ic->codec);
        int32_t n = ia->frame_count < 5 ? (int32_t)ia->frame_count : 5;
        int64_t idx[5];
        assert_int_equal(lnx_media_uniform_indices(a, n, idx), LNX_OK);
        lnx_frames *fa, *fb, *fc;
        assert_int_equal(lnx_media_read(a, idx, n, &fa), LNX_OK);
        assert_int_equal(lnx_media_read(b, idx, n, &fb), LNX_OK);
        assert_int_equal(lnx_media_read(c, idx, n, &fc), LNX_OK);
        assert_frames_equal(fa, fb);
        assert_frames_equal(fa, fc);
        lnx_frames_free(fa);
        lnx_frames_free(fb);
        lnx_frames_free(fc);
        lnx_media_close(a);
        lnx_media_close(b);
        lnx_media_close(c);
        free(bytes);
    }
}

/* --- seek-based == decode-everything ------------------------------------------------------------- */

/* Many index sets against one decode-everything pass: ascending, descending, random order with
 * repeats, single frames, clustered in one GOP, the pull API in small batches, and several
 * thread counts. */
static void check_seek_matches_all(const char *path)
{
    lnx_media_opts o = lnx_media_opts_default();
    o.threads = 1;
    lnx_media *m = open_ok(path, &o);
    lnx_frames *all = NULL;
    assert_int_equal(lnx_media_read_all(m, &all), LNX_OK);
    int64_t T = lnx_media_get_info(m)->frame_count;
    assert_int_equal(all->count, T);
    for (int64_t i = 0; i < T; i++)
        assert_int_equal(all->index[i], i);

    int64_t idx[64];
    for (int set = 0; set < 24; set++) {
        int32_t n = 1 + (int32_t)(rng() % 40);
        for (int32_t i = 0; i < n; i++)
            idx[i] = (int64_t)(rng() % (uint64_t)T);
        if (set % 4 == 0) { /* ascending */
            for (int32_t i = 1; i < n; i++)
                for (int32_t j = i; j > 0 && idx[j - 1] > idx[j]; j--) {
                    int64_t t = idx[j];
                    idx[j] = idx[j - 1];
                    idx[j - 1] = t;
                }
        } else if (set % 4 == 1) { /* descending */
            for (int32_t i = 0; i < n; i++)
                idx[i] = T - 1 - (int64_t)i * T / n;
        } else if (set % 4 == 2) { /* clustered */
            int64_t base = (int64_t)(rng() % (uint64_t)T);
            for (int32_t i = 0; i < n; i++)
                idx[i] = (base + i / 2) % T;
        }
        lnx_frames *f = NULL;
        assert_int_equal(lnx_media_read(m, idx, n, &f), LNX_OK);
        assert_matches_all(f, all, idx, n);
        lnx_frames_free(f);
    }
    /* every single frame, both directions */
    for (int64_t i = 0; i < T; i++) {
        int64_t j = i % 2 ? T - 1 - i : i;
        lnx_frames *f = NULL;
        assert_int_equal(lnx_media_read(m, &j, 1, &f), LNX_OK);
        assert_matches_all(f, all, &j, 1);
        lnx_frames_free(f);
    }
    /* pull in batches of 3 */
    int32_t n = T < 20 ? (int32_t)T : 20;
    assert_int_equal(lnx_media_uniform_indices(m, n, idx), LNX_OK);
    assert_int_equal(lnx_media_begin(m, idx, n), LNX_OK);
    int32_t pos = 0;
    lnx_frames *f = NULL;
    lnx_status st;
    while ((st = lnx_media_next(m, 3, &f)) == LNX_OK) {
        assert_true(f->count <= 3);
        assert_matches_all(f, all, idx + pos, f->count);
        pos += f->count;
        lnx_frames_free(f);
    }
    assert_int_equal(st, LNX_DONE);
    assert_null(f);
    assert_int_equal(pos, n);
    assert_int_equal(lnx_media_next(m, 3, &f), LNX_DONE);
    lnx_media_close(m);

    /* frame threading, and reads of 4+ frames split over two decoders, give the same pixels */
    o.threads = 4;
    m = open_ok(path, &o);
    assert_int_equal(lnx_media_read(m, idx, n, &f), LNX_OK);
    assert_matches_all(f, all, idx, n);
    lnx_frames_free(f);
    for (int set = 0; set < 6; set++) {
        int32_t k = 4 + (int32_t)(rng() % 37);
        for (int32_t i = 0; i < k; i++)
            idx[i] = (int64_t)(rng() % (uint64_t)T);
        assert_int_equal(lnx_media_read(m, idx, k, &f), LNX_OK);
        assert_matches_all(f, all, idx, k);
        lnx_frames_free(f);
    }
    assert_non_null(m->twin);
    lnx_media_close(m);
    lnx_frames_free(all);
}

static void test_seek_matches_decode_all_fixtures(void **state)
{
    (void)state;
    check_seek_matches_all(tu_data("media/clip_h264_160x120_97f.mp4"));
    check_seek_matches_all(tu_data("media/clip_vp9_128x96_60f.webm"));
    check_seek_matches_all(tu_data("media/clip_mjpeg_96x72_45f.avi"));
    check_seek_matches_all(tu_data("media/clip_h264_90x50_41f.mp4"));
}

static void test_seek_matches_decode_all_generated(void **state)
{
    (void)state;
    /* H.264 with B-frames and short GOPs in MP4 and Matroska; MPEG-4 part 2 in AVI */
    const char *muxers[] = {"mp4", "matroska"};
    for (int i = 0; i < 2; i++) {
        gen g = gen_defaults(tmp_path(i ? "x264.mkv" : "x264.mp4"));
        g.muxer = muxers[i];
        g.encoder = "libx264";
        g.frames = 75;
        g.gop = 12;
        g.bframes = 2;
        int rc = gen_video(&g);
        assert_true(rc >= 0);
        if (rc == 0)
            check_seek_matches_all(g.path);
    }
    gen g = gen_defaults(tmp_path("mpeg4.avi"));
    g.muxer = "avi";
    g.frames = 50;
    g.gop = 10;
    assert_int_equal(gen_video(&g), 0);
    check_seek_matches_all(g.path);
}

/* Seek-based reads decode about one GOP per target, reuse the run for targets ahead, and only
 * reopen the source when the demuxer cannot seek. */
static void test_seek_decodes_little(void **state)
{
    (void)state;
    gen g = gen_defaults(tmp_path("economy.mp4"));
    g.muxer = "mp4";
    g.frames = 200;
    g.gop = 20;
    assert_int_equal(gen_video(&g), 0);
    lnx_media_opts o = lnx_media_opts_default();
    o.threads = 1;
    lnx_media *m = open_ok(g.path, &o);
    int64_t last = 199, mid[2] = {105, 110};
    lnx_frames *f = NULL;
    assert_int_equal(lnx_media_read(m, &last, 1, &f), LNX_OK);
    lnx_frames_free(f);
    assert_int_equal(m->n_reopens, 0);
    assert_int_equal(m->n_seeks, 1);
    assert_true(m->n_sent <= 20 + 2);
    m->n_sent = 0;
    assert_int_equal(lnx_media_read(m, mid, 2, &f), LNX_OK); /* backwards: one seek, then on in the GOP */
    lnx_frames_free(f);
    assert_int_equal(m->n_seeks, 2);
    assert_true(m->n_sent <= 11 + 2);
    int64_t idx[32];
    assert_int_equal(lnx_media_uniform_indices(m, 32, idx), LNX_OK);
    m->n_sent = 0;
    assert_int_equal(lnx_media_read(m, idx, 32, &f), LNX_OK);
    lnx_frames_free(f);
    assert_int_equal(m->n_reopens, 0);
    assert_true(m->n_sent < 200);
    lnx_media_close(m);
}

/* --- sampling policies ------------------------------------------------------------------------- */

static void test_fps_and_time_sampling(void **state)
{
    (void)state;
    lnx_media *m = open_ok(tu_data("media/clip_h264_160x120_97f.mp4"), NULL); /* 25 fps, 97 frames */
    int64_t out[128];
    int32_t count = 0;
    assert_int_equal(lnx_media_fps_indices(m, 1.0, 100, out, &count), LNX_OK);
    assert_int_equal(count, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(out[i], 25 * i);
    assert_int_equal(lnx_media_fps_indices(m, 2.0, 3, out, &count), LNX_OK);
    assert_int_equal(count, 3);
    assert_int_equal(out[2], 25);
    assert_int_equal(lnx_media_fps_indices(m, 25.0, 128, out, &count), LNX_OK);
    assert_int_equal(count, 97);
    assert_int_equal(lnx_media_fps_indices(m, 1e9, 128, out, &count), LNX_OK); /* duplicates merged */
    assert_int_equal(count, 97);
    assert_int_equal(out[96], 96);
    assert_int_equal(lnx_media_fps_indices(m, 3.0, 128, out, &count), LNX_OK);
    assert_int_equal(count, 12); /* t = 0, 1/3, ... 11/3 <= 3.84 */
    assert_int_equal(out[1], 8); /* 0.333 s -> frame 8 (0.32 s) */
    expect_error(lnx_media_fps_indices(m, 0.0, 10, out, &count), LNX_E_INVALID, "fps");

    const double times[] = {0.0, 0.039, 0.04, 1.0, -1.0, 100.0, 2.5};
    const int64_t want[] = {0, 0, 1, 25, 0, 96, 62};
    assert_int_equal(lnx_media_time_indices(m, times, 7, out), LNX_OK);
    for (int i = 0; i < 7; i++)
        assert_int_equal(out[i], want[i]);
    const double bad = NAN;
    expect_error(lnx_media_time_indices(m, &bad, 1, out), LNX_E_INVALID, "NaN");

    lnx_frames *f = NULL;
    assert_int_equal(lnx_media_read(m, out, 7, &f), LNX_OK);
    assert_int_equal(f->count, 7);
    assert_true(fabs(f->time[3] - 1.0) < 1e-12);
    assert_true(fabs(f->time[6] - 2.48) < 1e-12);
    lnx_frames_free(f);
    lnx_media_close(m);
}

static void test_variable_frame_rate(void **state)
{
    (void)state;
    static const int64_t pts[] = {0, 1, 3, 4, 8, 9, 10, 15, 16, 20, 21, 22, 30, 31, 40}; /* tenths of a second */
    gen g = gen_defaults(tmp_path("vfr.mkv"));
    g.tb = (AVRational){1, 10};
    g.pts = pts;
    g.frames = 15;
    g.gop = 4;
    assert_int_equal(gen_video(&g), 0);
    lnx_media *m = open_ok(g.path, NULL);
    const lnx_media_info *in = lnx_media_get_info(m);
    assert_int_equal(in->frame_count, 15);
    for (int i = 0; i < 15; i++)
        assert_true(fabs(lnx_media_frame_time(m, i) - (double)pts[i] / 10) < 1e-9);
    const double times[] = {0.25, 0.5, 1.99, 2.0, 3.5, 9.0};
    const int64_t want[] = {1, 3, 8, 9, 13, 14};
    int64_t out[32];
    assert_int_equal(lnx_media_time_indices(m, times, 6, out), LNX_OK);
    for (int i = 0; i < 6; i++)
        assert_int_equal(out[i], want[i]);
    int32_t count = 0;
    assert_int_equal(lnx_media_fps_indices(m, 1.0, 32, out, &count), LNX_OK); /* t = 0,1,2,3,4 */
    const int64_t want_fps[] = {0, 6, 9, 12, 14};
    assert_int_equal(count, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(out[i], want_fps[i]);
    lnx_frames *f = NULL;
    assert_int_equal(lnx_media_read(m, out, count, &f), LNX_OK);
    assert_true(fabs(f->time[2] - 2.0) < 1e-9);
    lnx_frames_free(f);
    lnx_media_close(m);
    check_seek_matches_all(g.path);
}

/* --- rotation ----------------------------------------------------------------------------------- */

static void test_display_rotation(void **state)
{
    (void)state;
    const int rotations[] = {90, 180, 270};
    for (int r = 0; r < 3; r++) {
        char name[32];
        snprintf(name, sizeof name, "rot%d.mp4", rotations[r]);
        gen g = gen_defaults(tmp_path(name));
        g.muxer = "mp4";
        g.w = 40;
        g.h = 24;
        g.frames = 6;
        g.rotation = rotations[r];
        assert_int_equal(gen_video(&g), 0);
        lnx_media_opts raw_o = lnx_media_opts_default();
        raw_o.apply_rotation = 0;
        lnx_media *rot = open_ok(g.path, NULL), *raw = open_ok(g.path, &raw_o);
        const lnx_media_info *ir = lnx_media_get_info(rot), *iw = lnx_media_get_info(raw);
        assert_int_equal(ir->rotation, rotations[r]);
        assert_int_equal(iw->rotation, rotations[r]);
        assert_int_equal(iw->width, 40);
        assert_int_equal(iw->height, 24);
        int quarter = rotations[r] != 180;
        assert_int_equal(ir->width, quarter ? 24 : 40);
        assert_int_equal(ir->height, quarter ? 40 : 24);
        int64_t idx[2] = {0, 5};
        lnx_frames *a = NULL, *b = NULL;
        assert_int_equal(lnx_media_read(rot, idx, 2, &a), LNX_OK);
        assert_int_equal(lnx_media_read(raw, idx, 2, &b), LNX_OK);
        assert_int_equal(a->width, ir->width);
        for (int32_t k = 0; k < 2; k++) {
            const uint8_t *pa = lnx_frame_ptr(a, k), *pb = lnx_frame_ptr(b, k);
            for (int y = 0; y < 24; y++)
                for (int x = 0; x < 40; x++) {
                    /* where raw pixel (x, y) lands after a clockwise turn */
                    int ox = rotations[r] == 90 ? 23 - y : rotations[r] == 180 ? 39 - x : y;
                    int oy = rotations[r] == 90 ? x : rotations[r] == 180 ? 23 - y : 39 - x;
                    assert_memory_equal(pa + ((size_t)oy * (size_t)a->width + (size_t)ox) * 3,
                                        pb + ((size_t)y * 40 + (size_t)x) * 3, 3);
                }
        }
        lnx_frames_free(a);
        lnx_frames_free(b);
        lnx_media_close(rot);
        lnx_media_close(raw);
    }
}

/* --- generated edge cases ------------------------------------------------------------------------ */

static void test_one_frame_video(void **state)
{
    (void)state;
    gen g = gen_defaults(tmp_path("one.mkv"));
    g.frames = 1;
    assert_int_equal(gen_video(&g), 0);
    lnx_media *m = open_ok(g.path, NULL);
    assert_int_equal(lnx_media_get_info(m)->frame_count, 1);
    assert_int_equal(lnx_media_get_info(m)->is_image, 0);
    int64_t idx[2];
    assert_int_equal(lnx_media_uniform_indices(m, 1, idx), LNX_OK);
    assert_int_equal(idx[0], 0);
    expect_error(lnx_media_uniform_indices(m, 2, idx), LNX_E_INVALID, "2 frames uniformly from 1 frames");
    lnx_frames *f = NULL;
    assert_int_equal(lnx_media_read(m, idx, 1, &f), LNX_OK);
    assert_int_equal(f->count, 1);
    lnx_frames_free(f);
    lnx_media_close(m);
}

static void test_truncated_streams(void **state)
{
    (void)state;
    /* Matroska cut in the middle: the frames before the cut are readable */
    gen g = gen_defaults(tmp_path("full.mkv"));
    g.frames = 40;
    assert_int_equal(gen_video(&g), 0);
    size_t len = 0;
    char *bytes = tu_read_file(g.path, &len);
    assert_non_null(bytes);
    const char *cut = tmp_path("cut.mkv");
    assert_int_equal(tu_write_file(cut, bytes, len / 2), 0);
    lnx_media *m = open_ok(cut, NULL);
    const lnx_media_info *in = lnx_media_get_info(m);
    assert_true(in->frame_count > 5 && in->frame_count < 40);
    lnx_frames *all = NULL;
    lnx_media_opts skip = lnx_media_opts_default();
    skip.skip_corrupt = 1;
    lnx_media *ms = open_ok(cut, &skip);
    assert_int_equal(lnx_media_read_all(ms, &all), LNX_OK);
    assert_true(all->count >= in->frame_count - 1);
    int64_t first = 0;
    lnx_frames *f = NULL;
    assert_int_equal(lnx_media_read(m, &first, 1, &f), LNX_OK);
    assert_memory_equal(f->data, all->data, (size_t)f->width * (size_t)f->height * 3);
    lnx_frames_free(f);
    lnx_frames_free(all);
    lnx_media_close(ms);
    lnx_media_close(m);

    /* MP4 whose index (moov, written last) is cut off */
    gen g2 = gen_defaults(tmp_path("full.mp4"));
    g2.muxer = "mp4";
    assert_int_equal(gen_video(&g2), 0);
    free(bytes);
    bytes = tu_read_file(g2.path, &len);
    const char *cut2 = tmp_path("cut.mp4");
    assert_int_equal(tu_write_file(cut2, bytes, len / 2), 0);
    lnx_media *bad = NULL;
    expect_error(lnx_media_open_path(&bad, cut2, NULL), LNX_E_FORMAT, "cut.mp4");
    assert_null(bad);
    free(bytes);
}

static void test_corrupt_frame_in_the_middle(void **state)
{
    (void)state;
    gen g = gen_defaults(tmp_path("corrupt.avi"));
    g.muxer = "avi";
    g.encoder = "mjpeg";
    g.pix = AV_PIX_FMT_YUVJ420P;
    g.frames = 12;
    g.bad_packet = 5;
    assert_int_equal(gen_video(&g), 0);
    lnx_media *m = open_ok(g.path, NULL);
    assert_int_equal(lnx_media_get_info(m)->frame_count, 12);
    int64_t idx[3] = {4, 5, 6};
    lnx_frames *f = NULL;
    expect_error(lnx_media_read(m, idx, 3, &f), LNX_E_MEDIA, "frame 5 of 12");
    assert_null(f);
    expect_error(lnx_media_read_sequential(m, idx, 3, &f), LNX_E_MEDIA, "frame 5 of 12");
    /* the handle stays usable */
    assert_int_equal(lnx_media_read(m, idx + 2, 1, &f), LNX_OK);
    lnx_frames_free(f);
    /* the corrupt frame in the half that the second decoder reads (on its own thread) */
    lnx_media_opts two = lnx_media_opts_default();
    two.threads = 2;
    lnx_media *m2 = open_ok(g.path, &two);
    int64_t six[6] = {9, 1, 5, 2, 8, 3};
    expect_error(lnx_media_read(m2, six, 6, &f), LNX_E_MEDIA, "frame 5 of 12");
    assert_null(f);
    assert_non_null(m2->twin);
    lnx_media_close(m2);
    lnx_media_close(m);

    lnx_media_opts o = lnx_media_opts_default();
    o.skip_corrupt = 1;
    m = open_ok(g.path, &o);
    assert_int_equal(lnx_media_read(m, six, 6, &f), LNX_OK); /* request order kept, frame 5 left out */
    assert_int_equal(f->count, 5);
    const int64_t kept[5] = {9, 1, 2, 8, 3};
    for (int i = 0; i < 5; i++)
        assert_int_equal(f->index[i], kept[i]);
    lnx_frames_free(f);
    assert_int_equal(lnx_media_read(m, idx, 3, &f), LNX_OK);
    assert_int_equal(f->count, 2);
    assert_int_equal(f->index[0], 4);
    assert_int_equal(f->index[1], 6);
    lnx_frames *all = NULL;
    assert_int_equal(lnx_media_read_all(m, &all), LNX_OK);
    assert_int_equal(all->count, 11);
    assert_int_equal(all->index[5], 6);
    assert_memory_equal(lnx_frame_ptr(f, 1), lnx_frame_ptr(all, 5), (size_t)f->width * (size_t)f->height * 3);
    /* a batch made only of the corrupt frame is skipped by the pull API */
    int64_t only[2] = {5, 7};
    assert_int_equal(lnx_media_begin(m, only, 2), LNX_OK);
    lnx_frames *b = NULL;
    assert_int_equal(lnx_media_next(m, 1, &b), LNX_OK);
    assert_int_equal(b->count, 1);
    assert_int_equal(b->index[0], 7);
    lnx_frames_free(b);
    assert_int_equal(lnx_media_next(m, 1, &b), LNX_DONE);
    lnx_frames_free(all);
    lnx_frames_free(f);
    lnx_media_close(m);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void test_bad_inputs(void **state)
{
    (void)state;
    lnx_media *m = (lnx_media *)1;
    expect_error(lnx_media_open_path(&m, tmp_path("does-not-exist.mp4"), NULL), LNX_E_IO, "does-not-exist.mp4");
    assert_null(m);
    expect_error(lnx_media_open_path(&m, g_tmp, NULL), LNX_E_IO, "not a regular file");

    const char *empty = tmp_path("empty.mp4");
    assert_int_equal(tu_write_file(empty, "", 0), 0);
    expect_error(lnx_media_open_path(&m, empty, NULL), LNX_E_FORMAT, "empty file");
    expect_error(lnx_media_open_memory(&m, "", 0, NULL), LNX_E_FORMAT, "empty");

    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(rng() >> 24);
    const char *garbage = tmp_path("garbage.mp4");
    assert_int_equal(tu_write_file(garbage, junk, sizeof junk), 0);
    expect_error(lnx_media_open_path(&m, garbage, NULL), LNX_E_FORMAT, "not a recognised media format");
    expect_error(lnx_media_open_memory(&m, junk, sizeof junk, NULL), LNX_E_FORMAT, "<memory>");

    /* a WAV file: audio only */
    uint8_t wav[44 + 800] = {0};
    memcpy(wav, "RIFF", 4);
    put_le32(wav + 4, sizeof wav - 8);
    memcpy(wav + 8, "WAVEfmt ", 8);
    put_le32(wav + 16, 16);
    wav[20] = 1;  /* PCM */
    wav[22] = 1;  /* mono */
    put_le32(wav + 24, 8000);
    put_le32(wav + 28, 16000);
    wav[32] = 2;
    wav[34] = 16;
    memcpy(wav + 36, "data", 4);
    put_le32(wav + 40, 800);
    expect_error(lnx_media_open_memory(&m, wav, sizeof wav, NULL), LNX_E_MEDIA, "no video stream");

    /* a video stream without a single frame */
    gen g = gen_defaults(tmp_path("noframes.avi"));
    g.muxer = "avi";
    g.no_packets = 1;
    assert_int_equal(gen_video(&g), 0);
    expect_error(lnx_media_open_path(&m, g.path, NULL), LNX_E_MEDIA, "no frames");

    /* a PNG header claiming 65535 x 65535 */
    uint8_t png[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    put_be32(png + 8, 13);
    memcpy(png + 12, "IHDR", 4);
    put_be32(png + 16, 65535);
    put_be32(png + 20, 65535);
    png[24] = 8; /* depth */
    png[25] = 2; /* RGB */
    put_be32(png + 29, 0);
    put_be32(png + 33, 0);
    memcpy(png + 37, "IDAT", 4);
    const char *huge_png = tmp_path("huge.png");
    assert_int_equal(tu_write_file(huge_png, png, sizeof png), 0);
    expect_error(lnx_media_open_path(&m, huge_png, NULL), LNX_E_LIMIT, "65535x65535");
    expect_error(lnx_media_open_memory(&m, png, sizeof png, NULL), LNX_E_LIMIT, "65535x65535");

    /* a BMP header claiming 20000 x 20000 */
    uint8_t bmp[54 + 64] = {'B', 'M'};
    put_le32(bmp + 2, sizeof bmp);
    put_le32(bmp + 10, 54);
    put_le32(bmp + 14, 40);
    put_le32(bmp + 18, 20000);
    put_le32(bmp + 22, 20000);
    bmp[26] = 1;
    bmp[28] = 24;
    expect_error(lnx_media_open_memory(&m, bmp, sizeof bmp, NULL), LNX_E_LIMIT, "20000x20000");

    /* a configurable area limit on an ordinary video */
    lnx_media_opts o = lnx_media_opts_default();
    o.max_frame_pixels = 160 * 120 - 1;
    expect_error(lnx_media_open_path(&m, tu_data("media/clip_h264_160x120_97f.mp4"), &o), LNX_E_LIMIT, "160x120");
    o = lnx_media_opts_default();
    o.max_frames = 50;
    expect_error(lnx_media_open_path(&m, tu_data("media/clip_h264_160x120_97f.mp4"), &o), LNX_E_LIMIT,
                 "more than 50 video frames");
    assert_null(m);

    expect_error(lnx_media_open_callbacks(&m, host_read, NULL, NULL, NULL), LNX_E_INVALID, "seek");
}

static void test_bad_requests(void **state)
{
    (void)state;
    lnx_media *m = open_ok(tu_data("media/clip_vp9_128x96_60f.webm"), NULL);
    int64_t idx[64];
    expect_error(lnx_media_uniform_indices(m, 0, idx), LNX_E_INVALID, "0 frames uniformly from 60 frames");
    expect_error(lnx_media_uniform_indices(m, 61, idx), LNX_E_INVALID, "61 frames uniformly from 60 frames");
    lnx_frames *f = (lnx_frames *)1;
    idx[0] = 3;
    idx[1] = 60;
    expect_error(lnx_media_read(m, idx, 2, &f), LNX_E_INVALID, "frame index 60 (position 1)");
    assert_null(f);
    idx[1] = -1;
    expect_error(lnx_media_read_sequential(m, idx, 2, &f), LNX_E_INVALID, "frame index -1");
    expect_error(lnx_media_read(m, idx, 0, &f), LNX_E_INVALID, "0 frames");
    expect_error(lnx_media_begin(m, idx, 2), LNX_E_INVALID, "outside [0, 60)");
    expect_error(lnx_media_next(m, 0, &f), LNX_E_INVALID, "batch size");
    assert_int_equal(lnx_media_next(m, 4, &f), LNX_DONE);
    lnx_media_close(m);
    lnx_media_close(NULL);
}

/* A BMP written by hand (lossless, so the RGB values are known exactly), and a file name that the
 * image2 demuxer would otherwise read as a sequence pattern. */
static void test_bmp_image_and_pattern_like_name(void **state)
{
    (void)state;
    enum { W = 3, H = 2, ROW = 12 }; /* 9 bytes of BGR + 3 of padding */
    uint8_t bmp[54 + ROW * H] = {'B', 'M'};
    put_le32(bmp + 2, sizeof bmp);
    put_le32(bmp + 10, 54);
    put_le32(bmp + 14, 40);
    put_le32(bmp + 18, W);
    put_le32(bmp + 22, H);
    bmp[26] = 1;
    bmp[28] = 24;
    put_le32(bmp + 34, ROW * H);
    uint8_t want[H][W][3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            want[y][x][0] = (uint8_t)(10 + 40 * x);
            want[y][x][1] = (uint8_t)(200 - 50 * y);
            want[y][x][2] = (uint8_t)(7 * x + 90 * y);
            uint8_t *p = bmp + 54 + (H - 1 - y) * ROW + x * 3; /* bottom-up rows, BGR */
            p[0] = want[y][x][2];
            p[1] = want[y][x][1];
            p[2] = want[y][x][0];
        }
    const char *path = tmp_path("frame%03d.bmp");
    assert_int_equal(tu_write_file(path, bmp, sizeof bmp), 0);
    lnx_media *m = open_ok(path, NULL), *mm = NULL;
    assert_int_equal(lnx_media_open_memory(&mm, bmp, sizeof bmp, NULL), LNX_OK);
    assert_int_equal(lnx_media_get_info(m)->is_image, 1);
    assert_int_equal(lnx_media_get_info(mm)->is_image, 1);
    assert_string_equal(lnx_media_get_info(m)->codec, "bmp");
    int64_t zero = 0;
    lnx_frames *f = NULL, *g = NULL;
    assert_int_equal(lnx_media_read(m, &zero, 1, &f), LNX_OK);
    assert_int_equal(lnx_media_read(mm, &zero, 1, &g), LNX_OK);
    assert_int_equal(f->width, W);
    assert_int_equal(f->height, H);
    assert_memory_equal(f->data, want, sizeof want);
    assert_frames_equal(f, g);
    lnx_frames_free(f);
    lnx_frames_free(g);
    lnx_media_close(m);
    lnx_media_close(mm);
}

static int32_t failing_read(void *user_data, uint8_t *buf, int32_t size)
{
    (void)user_data;
    (void)buf;
    (void)size;
    return -1;
}

static void test_host_io_errors(void **state)
{
    (void)state;
    host_stream hs = {NULL, 0, 0, 0};
    lnx_media *m = NULL;
    expect_error(lnx_media_open_callbacks(&m, failing_read, host_seek, NULL, &hs), LNX_E_IO, "<callbacks>");
    assert_null(m);
    /* a host stream that ends early behaves like a truncated file */
    size_t len = 0;
    char *bytes = tu_read_file(tu_data("media/clip_h264_160x120_97f.mp4"), &len);
    assert_non_null(bytes);
    host_stream cut = {(const uint8_t *)bytes, 2000, 0, 0};
    expect_error(lnx_media_open_callbacks(&m, host_read, host_seek, NULL, &cut), LNX_E_FORMAT, "<callbacks>");
    free(bytes);
}

/* --- host frames -------------------------------------------------------------------------------- */

static void test_host_frames(void **state)
{
    (void)state;
    enum { W = 6, H = 4 };
    /* RGB24 with padded rows is copied */
    uint8_t rgb[H][W * 3 + 5];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W * 3 + 5; x++)
            rgb[y][x] = (uint8_t)(y * 31 + x);
    const uint8_t *planes[3] = {&rgb[0][0], NULL, NULL};
    int32_t strides[3] = {W * 3 + 5, 0, 0};
    lnx_frames *f = NULL;
    assert_int_equal(lnx_frames_from_host(&f, LNX_PIX_RGB24, planes, strides, W, H), LNX_OK);
    assert_int_equal(f->count, 1);
    for (int y = 0; y < H; y++)
        assert_memory_equal(f->data + y * W * 3, rgb[y], W * 3);
    lnx_frames_free(f);

    /* YUV420P and NV12 of the same picture: limited-range white and black (swscale's NV12 path at
     * this small width is the generic one, within 2 of the YUV420P converter) */
    uint8_t yp[H][W], up[H / 2][W / 2], vp[H / 2][W / 2], uv[H / 2][W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            yp[y][x] = x < W / 2 ? 235 : 16;
    for (int y = 0; y < H / 2; y++)
        for (int x = 0; x < W / 2; x++) {
            up[y][x] = vp[y][x] = 128;
            uv[y][2 * x] = uv[y][2 * x + 1] = 128;
        }
    const uint8_t *p3[3] = {&yp[0][0], &up[0][0], &vp[0][0]};
    int32_t s3[3] = {W, W / 2, W / 2};
    const uint8_t *p2[3] = {&yp[0][0], &uv[0][0], NULL};
    int32_t s2[3] = {W, W, 0};
    lnx_frames *a = NULL, *b = NULL;
    assert_int_equal(lnx_frames_from_host(&a, LNX_PIX_YUV420P, p3, s3, W, H), LNX_OK);
    assert_int_equal(lnx_frames_from_host(&b, LNX_PIX_NV12, p2, s2, W, H), LNX_OK);
    assert_int_equal(b->count, 1);
    for (int i = 0; i < W * H * 3; i++)
        assert_true(abs((int)a->data[i] - (int)b->data[i]) <= 2);
    for (int y = 0; y < H; y++) {
        const uint8_t *row = a->data + y * W * 3;
        assert_int_equal(row[0], 255);
        assert_int_equal(row[1], 255);
        assert_int_equal(row[2], 255);
        assert_int_equal(row[(W - 1) * 3], 0);
    }
    lnx_frames_free(a);
    lnx_frames_free(b);

    expect_error(lnx_frames_from_host(&a, LNX_PIX_YUV420P, p3, s3, 5, 4), LNX_E_INVALID, "even size");
    expect_error(lnx_frames_from_host(&a, 7, p3, s3, W, H), LNX_E_INVALID, "pixel format 7");
    s3[0] = 2;
    expect_error(lnx_frames_from_host(&a, LNX_PIX_YUV420P, p3, s3, W, H), LNX_E_INVALID, "stride 2 of plane 0");
    expect_error(lnx_frames_from_host(&a, LNX_PIX_RGB24, planes, strides, 20000, 2), LNX_E_LIMIT, "20000x2");
    assert_null(a);
}

int main(void)
{
    /* the test is the host here: libav's own logging is its business */
    av_log_set_level(AV_LOG_QUIET);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_video_frames),
        cmocka_unit_test(test_reference_images),
        cmocka_unit_test(test_info_fields),
        cmocka_unit_test(test_memory_and_callback_sources),
        cmocka_unit_test(test_seek_matches_decode_all_fixtures),
        cmocka_unit_test(test_seek_matches_decode_all_generated),
        cmocka_unit_test(test_seek_decodes_little),
        cmocka_unit_test(test_fps_and_time_sampling),
        cmocka_unit_test(test_variable_frame_rate),
        cmocka_unit_test(test_display_rotation),
        cmocka_unit_test(test_one_frame_video),
        cmocka_unit_test(test_truncated_streams),
        cmocka_unit_test(test_corrupt_frame_in_the_middle),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_bmp_image_and_pattern_like_name),
        cmocka_unit_test(test_host_io_errors),
        cmocka_unit_test(test_host_frames),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
