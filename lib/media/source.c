/* Opening a media source: host byte sources behind one custom AVIOContext, demuxer and decoder
 * setup with limits, the packet index scan, and the description (lnx_media_info). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/display.h>
#include <libavutil/imgutils.h>

#include "../base/alloc.h"
#include "media_internal.h"

#include "../base/file.h"
#include "avlog.h"

#define AVIO_BUFFER_SIZE 65536
#define DEFAULT_MAX_PIXELS ((uint64_t)8192 * 8192)
#define DEFAULT_MAX_FRAMES ((int64_t)1 << 22)
/* Non-video packets skipped per video packet before the demuxer is deemed stuck. */
#define MAX_FOREIGN_PACKETS 100000

lnx_media_opts lnx_media_opts_default(void)
{
    lnx_media_opts o;
    memset(&o, 0, sizeof o);
    o.threads = 0;
    o.apply_rotation = 1;
    o.skip_corrupt = 0;
    o.max_frame_pixels = DEFAULT_MAX_PIXELS;
    o.max_frames = DEFAULT_MAX_FRAMES;
    return o;
}

/* --- byte sources ------------------------------------------------------------------------- */

static int src_read(void *opaque, uint8_t *buf, int size)
{
    lnx_media *m = opaque;
    if (size <= 0)
        return 0;
    switch (m->kind) {
    case LNX_SRC_PATH: {
        size_t got = fread(buf, 1, (size_t)size, m->file);
        if (got == 0) {
            if (ferror(m->file)) {
                m->io_error = 1;
                return AVERROR(EIO);
            }
            return AVERROR_EOF;
        }
        return (int)got;
    }
    case LNX_SRC_MEMORY: {
        if (m->mem_pos >= (int64_t)m->mem_size)
            return AVERROR_EOF;
        size_t left = m->mem_size - (size_t)m->mem_pos;
        size_t n = left < (size_t)size ? left : (size_t)size;
        memcpy(buf, m->mem + m->mem_pos, n);
        m->mem_pos += (int64_t)n;
        return (int)n;
    }
    default: {
        int32_t got = m->read_fn(m->user_data, buf, size);
        if (got < 0 || got > size) {
            m->io_error = 1;
            return AVERROR(EIO);
        }
        return got == 0 ? AVERROR_EOF : got;
    }
    }
}

static int64_t src_seek(void *opaque, int64_t offset, int whence)
{
    lnx_media *m = opaque;
    int size_query = (whence & AVSEEK_SIZE) != 0;
    whence &= ~(AVSEEK_SIZE | AVSEEK_FORCE);
    switch (m->kind) {
    case LNX_SRC_PATH: {
        if (size_query)
            return m->file_size;
        if (fseeko(m->file, (off_t)offset, whence) != 0)
            return AVERROR(errno ? errno : EIO);
        return (int64_t)ftello(m->file);
    }
    case LNX_SRC_MEMORY: {
        if (size_query)
            return (int64_t)m->mem_size;
        int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->mem_pos : (int64_t)m->mem_size;
        if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
            return AVERROR(EINVAL);
        int64_t pos = base + offset;
        if (pos < 0)
            return AVERROR(EINVAL);
        m->mem_pos = pos;
        return pos;
    }
    default: {
        if (size_query) {
            int64_t s = m->seek_fn(m->user_data, 0, LNX_MEDIA_SEEK_SIZE);
            return s < 0 ? AVERROR(ENOSYS) : s;
        }
        int64_t r = m->seek_fn(m->user_data, offset, whence);
        return r < 0 ? AVERROR(EIO) : r;
    }
    }
}

static lnx_status src_rewind(lnx_media *m)
{
    switch (m->kind) {
    case LNX_SRC_PATH:
        if (fseeko(m->file, 0, SEEK_SET) != 0)
            return lnx_error(LNX_E_IO, "%s: cannot seek: %s", m->origin, strerror(errno));
        return LNX_OK;
    case LNX_SRC_MEMORY:
        m->mem_pos = 0;
        return LNX_OK;
    default:
        if (m->seek_fn(m->user_data, 0, SEEK_SET) != 0)
            return lnx_error(LNX_E_IO, "%s: the host seek callback failed to go to offset 0", m->origin);
        return LNX_OK;
    }
}

/* Demuxers must not open further files or URLs on their own (playlists, MOV references). */
static int deny_io_open(struct AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                        AVDictionary **options)
{
    (void)s;
    (void)url;
    (void)flags;
    (void)options;
    *pb = NULL;
    return AVERROR(EPERM);
}

/* --- demuxer ------------------------------------------------------------------------------- */

static void demux_close(lnx_media *m)
{
    avformat_close_input(&m->fmt);
    if (m->avio) {
        av_freep(&m->avio->buffer);
        avio_context_free(&m->avio);
    }
}

static lnx_status av_status(int err, lnx_status fallback)
{
    if (err == AVERROR(ENOMEM))
        return LNX_E_NOMEM;
    if (err == AVERROR(EIO))
        return LNX_E_IO;
    return fallback;
}

static const char *av_msg(int err, char *buf, size_t n)
{
    if (av_strerror(err, buf, n) < 0)
        snprintf(buf, n, "libav error %d", err);
    return buf;
}

/* The first video stream that is not a cover picture, else the first cover picture; -1 if none. */
static int pick_video_stream(const AVFormatContext *fmt)
{
    int cover = -1;
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *st = fmt->streams[i];
        if (st->codecpar->codec_type != AVMEDIA_TYPE_VIDEO)
            continue;
        if (!(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
            return (int)i;
        if (cover < 0)
            cover = (int)i;
    }
    return cover;
}

lnx_status lnx_media_check_size(const lnx_media *m, uint64_t w, uint64_t h)
{
    if (w == 0 || h == 0)
        return lnx_error(LNX_E_MEDIA, "%s: the video stream has no frame size", m->origin);
    if (w > LNX_MEDIA_MAX_SIDE || h > LNX_MEDIA_MAX_SIDE || w * h > m->opts.max_frame_pixels)
        return lnx_error(LNX_E_LIMIT, "%s: frame size %llux%llu exceeds the limit (%d per side, %llu pixels)",
                         m->origin, (unsigned long long)w, (unsigned long long)h, LNX_MEDIA_MAX_SIDE,
                         (unsigned long long)m->opts.max_frame_pixels);
    return LNX_OK;
}

/* Probes stream parameters with a decoder pixel limit so that a forged header cannot make libav
 * allocate a giant picture while probing. */
static int find_stream_info_limited(lnx_media *m)
{
    unsigned n = m->fmt->nb_streams;
    AVDictionary **opts = calloc(n ? n : 1, sizeof *opts);
    if (!opts)
        return AVERROR(ENOMEM);
    char px[32];
    snprintf(px, sizeof px, "%llu", (unsigned long long)m->opts.max_frame_pixels);
    for (unsigned i = 0; i < n; i++)
        av_dict_set(&opts[i], "max_pixels", px, 0);
    int ret = avformat_find_stream_info(m->fmt, opts);
    for (unsigned i = 0; i < n; i++)
        av_dict_free(&opts[i]);
    free(opts);
    return ret;
}

static lnx_status demux_open_inner(lnx_media *m)
{
    m->io_error = 0;
    lnx_status st = src_rewind(m);
    if (st)
        return st;
    uint8_t *buf = av_malloc(AVIO_BUFFER_SIZE);
    if (!buf)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory", m->origin);
    m->avio = avio_alloc_context(buf, AVIO_BUFFER_SIZE, 0, m, src_read, NULL, src_seek);
    if (!m->avio) {
        av_free(buf);
        return lnx_error(LNX_E_NOMEM, "%s: out of memory", m->origin);
    }
    m->fmt = avformat_alloc_context();
    if (!m->fmt)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory", m->origin);
    m->fmt->pb = m->avio;
    m->fmt->io_open = deny_io_open;
    AVDictionary *fopts = NULL;
    /* The image2 demuxer would otherwise read "%d" in a file name as a sequence pattern. */
    av_dict_set(&fopts, "pattern_type", "none", 0);
    char err[128];
    int ret = avformat_open_input(&m->fmt, m->kind == LNX_SRC_PATH ? m->path : "", NULL, &fopts);
    av_dict_free(&fopts);
    if (ret < 0) {
        if (m->io_error)
            return lnx_error(LNX_E_IO, "%s: read error while probing the format", m->origin);
        return lnx_error(av_status(ret, LNX_E_FORMAT), "%s: not a recognised media format (%s)", m->origin,
                         av_msg(ret, err, sizeof err));
    }
    ret = find_stream_info_limited(m);
    if (ret < 0 && m->io_error)
        return lnx_error(LNX_E_IO, "%s: read error while probing the streams", m->origin);
    if (ret == AVERROR(ENOMEM))
        return lnx_error(LNX_E_NOMEM, "%s: out of memory while probing the streams", m->origin);
    m->stream = pick_video_stream(m->fmt);
    if (m->stream < 0)
        return lnx_error(LNX_E_MEDIA, "%s: no video stream (%u streams in a %s container)", m->origin,
                         m->fmt->nb_streams, m->fmt->iformat->name);
    for (unsigned i = 0; i < m->fmt->nb_streams; i++)
        m->fmt->streams[i]->discard = (int)i == m->stream ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    const AVCodecParameters *par = m->fmt->streams[m->stream]->codecpar;
    /* A zero size is settled after the index scan (lnx_media_prepare_image). */
    if (par->width > 0 && par->height > 0) {
        st = lnx_media_check_size(m, (uint64_t)par->width, (uint64_t)par->height);
        if (st)
            return st;
    } else if (par->width < 0 || par->height < 0) {
        return lnx_error(LNX_E_MEDIA, "%s: negative frame size", m->origin);
    }
    if (ret < 0 && par->width > 0)
        return lnx_error(LNX_E_MEDIA, "%s: cannot read the stream parameters (%s)", m->origin,
                         av_msg(ret, err, sizeof err));
    m->time_base = m->fmt->streams[m->stream]->time_base;
    return LNX_OK;
}

lnx_status lnx_demux_open(lnx_media *m)
{
    demux_close(m);
    lnx_status st = demux_open_inner(m);
    if (st)
        demux_close(m); /* later reads see no demuxer rather than a half-open one */
    return st;
}

/* Reads the next non-empty packet of the video stream into m->pkt. Returns 0, AVERROR_EOF at the
 * end, or another negative libav error. */
int lnx_demux_read(lnx_media *m)
{
    if (!m->fmt) /* a reopen failed earlier */
        return AVERROR(EIO);
    for (int foreign = 0; foreign < MAX_FOREIGN_PACKETS; foreign++) {
        av_packet_unref(m->pkt);
        int ret = av_read_frame(m->fmt, m->pkt);
        if (ret < 0)
            return ret;
        if (m->pkt->stream_index == m->stream && m->pkt->size > 0)
            return 0;
    }
    av_packet_unref(m->pkt);
    return AVERROR_INVALIDDATA;
}

/* --- decoder -------------------------------------------------------------------------------- */

static lnx_status decoder_open(lnx_media *m)
{
    const AVStream *s = m->fmt->streams[m->stream];
    const AVCodec *codec = avcodec_find_decoder(s->codecpar->codec_id);
    if (!codec)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: no decoder for codec %s", m->origin,
                         avcodec_get_name(s->codecpar->codec_id));
    m->dec = avcodec_alloc_context3(codec);
    if (!m->dec)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory", m->origin);
    int ret = avcodec_parameters_to_context(m->dec, s->codecpar);
    if (ret < 0)
        return lnx_error(av_status(ret, LNX_E_MEDIA), "%s: bad codec parameters", m->origin);
    m->dec->pkt_timebase = s->time_base;
    m->dec->opaque = m; /* its messages, also from libav's decoder threads, reach m's logger */
    m->dec->thread_count = m->opts.threads > 0 ? m->opts.threads : 0;
    m->dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    m->dec->max_pixels = (int64_t)m->opts.max_frame_pixels;
    ret = avcodec_open2(m->dec, codec, NULL);
    if (ret < 0) {
        char err[128];
        return lnx_error(av_status(ret, LNX_E_MEDIA), "%s: cannot open the %s decoder (%s)", m->origin, codec->name,
                         av_msg(ret, err, sizeof err));
    }
    snprintf(m->info.codec, sizeof m->info.codec, "%s", codec->name);
    return LNX_OK;
}

/* --- index ---------------------------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct rank_item {
    int64_t pts, pkt;
} rank_item;

static int cmp_rank(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    if (x->pts != y->pts)
        return (x->pts > y->pts) - (x->pts < y->pts);
    return (x->pkt > y->pkt) - (x->pkt < y->pkt);
}

static lnx_status scan_index(lnx_media *m)
{
    int64_t cap = 0;
    int ret;
    m->truncated = 0;
    while ((ret = lnx_demux_read(m)) == 0) {
        if (m->npkts >= m->opts.max_frames)
            return lnx_error(LNX_E_LIMIT, "%s: more than %lld video frames", m->origin, (long long)m->opts.max_frames);
        if (m->npkts == cap) {
            cap = cap ? cap * 2 : 1024;
            lnx_media_pkt *p = realloc(m->pkts, sizeof *p * (size_t)cap);
            if (!p)
                return lnx_error(LNX_E_NOMEM, "%s: out of memory for the frame index", m->origin);
            m->pkts = p;
        }
        lnx_media_pkt *p = &m->pkts[m->npkts++];
        p->pts = m->pkt->pts;
        p->dts = m->pkt->dts;
        p->pos = m->pkt->pos;
        p->duration = m->pkt->duration;
        p->key = (m->pkt->flags & AV_PKT_FLAG_KEY) != 0;
        p->discard = (m->pkt->flags & AV_PKT_FLAG_DISCARD) != 0;
    }
    av_packet_unref(m->pkt);
    if (ret != AVERROR_EOF) {
        if (m->io_error && m->npkts == 0)
            return lnx_error(LNX_E_IO, "%s: read error", m->origin);
        m->truncated = 1;
    }
    return LNX_OK;
}

/* Orders the frames: by pts when every frame has a distinct one, else by decode order. */
static lnx_status build_ranks(lnx_media *m)
{
    int64_t n = 0;
    for (int64_t i = 0; i < m->npkts; i++)
        n += !m->pkts[i].discard;
    m->nframes = n;
    if (n == 0)
        return LNX_OK;
    rank_item *items = malloc(sizeof *items * (size_t)n);
    m->rank_pkt = malloc(sizeof *m->rank_pkt * (size_t)n);
    m->rank_pts = malloc(sizeof *m->rank_pts * (size_t)n);
    if (!items || !m->rank_pkt || !m->rank_pts) {
        free(items);
        return lnx_error(LNX_E_NOMEM, "%s: out of memory for the frame index", m->origin);
    }
    int has_pts = 1;
    int64_t k = 0;
    for (int64_t i = 0; i < m->npkts; i++) {
        if (m->pkts[i].discard)
            continue;
        items[k].pts = m->pkts[i].pts;
        items[k].pkt = i;
        has_pts &= m->pkts[i].pts != AV_NOPTS_VALUE;
        k++;
    }
    if (has_pts) {
        qsort(items, (size_t)n, sizeof *items, cmp_rank);
        for (int64_t i = 1; i < n; i++)
            has_pts &= items[i].pts != items[i - 1].pts;
    }
    m->by_pts = has_pts;
    if (!has_pts) {
        /* decode order */
        k = 0;
        for (int64_t i = 0; i < m->npkts; i++)
            if (!m->pkts[i].discard)
                items[k++].pkt = i;
    }
    for (int64_t i = 0; i < n; i++) {
        m->rank_pkt[i] = items[i].pkt;
        m->rank_pts[i] = has_pts ? items[i].pts : AV_NOPTS_VALUE;
    }
    free(items);
    return LNX_OK;
}

/* Chooses how a packet read after a seek is recognised: byte position, pts or dts, whichever is
 * present and distinct for every packet. */
static lnx_status build_identity(lnx_media *m)
{
    const int fields[3] = {1, 2, 3};
    m->key_field = 0;
    if (m->npkts == 0)
        return LNX_OK;
    int64_t *keys = malloc(sizeof *keys * (size_t)m->npkts);
    if (!keys)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory for the frame index", m->origin);
    for (int f = 0; f < 3 && !m->key_field; f++) {
        int ok = 1;
        for (int64_t i = 0; i < m->npkts && ok; i++) {
            int64_t v = lnx_pkt_identity(&m->pkts[i], fields[f]);
            ok = fields[f] == 1 ? v >= 0 : v != AV_NOPTS_VALUE;
            keys[i] = v;
        }
        if (!ok)
            continue;
        qsort(keys, (size_t)m->npkts, sizeof *keys, cmp_i64);
        for (int64_t i = 1; i < m->npkts && ok; i++)
            ok = keys[i] != keys[i - 1];
        if (ok)
            m->key_field = fields[f];
    }
    free(keys);
    if (!m->key_field)
        return LNX_OK;
    m->id_sorted = malloc(sizeof *m->id_sorted * (size_t)m->npkts);
    if (!m->id_sorted)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory for the frame index", m->origin);
    rank_item *items = malloc(sizeof *items * (size_t)m->npkts);
    if (!items)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory for the frame index", m->origin);
    for (int64_t i = 0; i < m->npkts; i++) {
        items[i].pts = lnx_pkt_identity(&m->pkts[i], m->key_field);
        items[i].pkt = i;
    }
    qsort(items, (size_t)m->npkts, sizeof *items, cmp_rank);
    m->id_pkt = malloc(sizeof *m->id_pkt * (size_t)m->npkts);
    if (!m->id_pkt) {
        free(items);
        return lnx_error(LNX_E_NOMEM, "%s: out of memory for the frame index", m->origin);
    }
    for (int64_t i = 0; i < m->npkts; i++) {
        m->id_sorted[i] = items[i].pts;
        m->id_pkt[i] = items[i].pkt;
    }
    free(items);
    return LNX_OK;
}

int64_t lnx_pkt_identity(const lnx_media_pkt *p, int field)
{
    return field == 1 ? p->pos : field == 2 ? p->pts : p->dts;
}

/* --- description ----------------------------------------------------------------------------- */

static int32_t display_rotation(const AVStream *s)
{
    size_t size = 0;
    const uint8_t *sd = av_stream_get_side_data(s, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (!sd || size < 9 * sizeof(int32_t))
        return 0;
    int32_t matrix[9];
    memcpy(matrix, sd, sizeof matrix);
    double ccw = av_display_rotation_get(matrix);
    if (isnan(ccw))
        return 0;
    long quarter = lround(-ccw / 90.0) % 4;
    if (quarter < 0)
        quarter += 4;
    return (int32_t)(quarter * 90);
}

static int is_image_demuxer(const char *name)
{
    size_t n = strlen(name);
    return !strcmp(name, "image2") || (n > 5 && !strcmp(name + n - 5, "_pipe"));
}

static void describe(lnx_media *m)
{
    lnx_media_info *in = &m->info;
    const AVStream *s = m->fmt->streams[m->stream];
    snprintf(in->container, sizeof in->container, "%s", m->fmt->iformat->name);
    in->frame_count = m->nframes;
    in->frame_count_exact = !m->truncated;
    in->coded_width = s->codecpar->width;
    in->coded_height = s->codecpar->height;
    in->rotation = display_rotation(s);
    int quarter = m->opts.apply_rotation && (in->rotation == 90 || in->rotation == 270);
    in->width = quarter ? in->coded_height : in->coded_width;
    in->height = quarter ? in->coded_width : in->coded_height;
    in->is_image = is_image_demuxer(m->fmt->iformat->name) && m->nframes == 1;
    if (in->is_image)
        return;

    double fps = 0;
    if (s->avg_frame_rate.num > 0 && s->avg_frame_rate.den > 0)
        fps = av_q2d(s->avg_frame_rate);
    else if (s->r_frame_rate.num > 0 && s->r_frame_rate.den > 0)
        fps = av_q2d(s->r_frame_rate);
    double tb = av_q2d(m->time_base);
    double duration = 0;
    if (m->by_pts) {
        const lnx_media_pkt *last = &m->pkts[m->rank_pkt[m->nframes - 1]];
        double tail = last->duration > 0 ? (double)last->duration * tb : fps > 0 ? 1.0 / fps : 0;
        duration = (double)(m->rank_pts[m->nframes - 1] - m->rank_pts[0]) * tb + tail;
    } else if (s->duration != AV_NOPTS_VALUE && s->duration > 0) {
        duration = (double)s->duration * tb;
    } else if (m->fmt->duration != AV_NOPTS_VALUE && m->fmt->duration > 0) {
        duration = (double)m->fmt->duration / AV_TIME_BASE;
    } else if (fps > 0) {
        duration = (double)m->nframes / fps;
    }
    if (fps <= 0 && duration > 0)
        fps = (double)m->nframes / duration;
    in->fps = fps;
    in->duration = duration;
}

double lnx_media_frame_time(const lnx_media *m, int64_t index)
{
    if (!m || index < 0 || index >= m->nframes)
        return NAN;
    if (m->by_pts) /* exact quotient, so that 512/12800 and 1/25 compare equal */
        return (double)(m->rank_pts[index] - m->rank_pts[0]) * (double)m->time_base.num / (double)m->time_base.den;
    return m->info.fps > 0 ? (double)index / m->info.fps : NAN;
}

/* --- open / close ---------------------------------------------------------------------------- */

static lnx_status media_new(lnx_media **out, int kind, const lnx_media_opts *opts)
{
    lnx_media *m = calloc(1, sizeof *m);
    if (!m)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    m->kind = kind;
    m->opts = opts ? *opts : lnx_media_opts_default();
    lnx_media_opts d = lnx_media_opts_default();
    if (m->opts.max_frame_pixels == 0)
        m->opts.max_frame_pixels = d.max_frame_pixels;
    if (m->opts.max_frames <= 0)
        m->opts.max_frames = d.max_frames;
    m->stream = -1;
    m->next_pkt = -1;
    m->pid = getpid();
    lnx_avlog_install();
    lnx_avlog_register(m, &m->opts.log);
    m->last_rank = -1;
    m->held_rank = -1;
    *out = m;
    return LNX_OK;
}

/* Everything after the byte source is set up. */
static lnx_status media_finish_open(lnx_media *m)
{
    if (m->opts.threads < 0)
        return lnx_error(LNX_E_INVALID, "%s: negative thread count %d", m->origin, (int)m->opts.threads);
    m->pkt = av_packet_alloc();
    m->frame = av_frame_alloc();
    m->held = av_frame_alloc();
    if (!m->pkt || !m->frame || !m->held)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory", m->origin);
    lnx_status st = lnx_demux_open(m);
    if (st)
        return st;
    st = decoder_open(m);
    if (st)
        return st;
    st = scan_index(m);
    if (st)
        return st;
    st = build_ranks(m);
    if (st)
        return st;
    if (m->nframes == 0) {
        if (m->truncated)
            return lnx_error(LNX_E_MEDIA, "%s: the video stream is unreadable before its first frame", m->origin);
        return lnx_error(LNX_E_MEDIA, "%s: the video stream has no frames", m->origin);
    }
    st = build_identity(m);
    if (st)
        return st;
    describe(m);
    return lnx_media_prepare_image(m);
}

static lnx_status open_common(lnx_media **out, lnx_media *m)
{
    lnx_avlog_scope scope;
    lnx_avlog_enter(&scope, &m->opts.log);
    lnx_status st = media_finish_open(m);
    lnx_avlog_leave(&scope);
    if (st) {
        lnx_media_close(m);
        return st;
    }
    *out = m;
    return LNX_OK;
}

lnx_status lnx_media_open_path(lnx_media **out, const char *path, const lnx_media_opts *opts)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_media_open_path: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return lnx_error(LNX_E_INVALID, "lnx_media_open_path: empty path");
    FILE *f;
    lnx_status fst = lnx_fopen_regular(path, &f);
    if (fst)
        return fst;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        fclose(f);
        return lnx_error(LNX_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (sb.st_size == 0) {
        fclose(f);
        return lnx_error(LNX_E_FORMAT, "%s: empty file", path);
    }
    lnx_media *m;
    lnx_status st = media_new(&m, LNX_SRC_PATH, opts);
    if (st) {
        fclose(f);
        return st;
    }
    m->file = f;
    m->file_size = (int64_t)sb.st_size;
    m->path = lnx_strdup(path);
    snprintf(m->origin, sizeof m->origin, "%s", path);
    if (!m->path) {
        lnx_media_close(m);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    return open_common(out, m);
}

lnx_status lnx_media_open_memory(lnx_media **out, const void *data, size_t size, const lnx_media_opts *opts)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_media_open_memory: out is NULL");
    *out = NULL;
    if (!data && size)
        return lnx_error(LNX_E_INVALID, "lnx_media_open_memory: NULL data");
    if (size == 0)
        return lnx_error(LNX_E_FORMAT, "<memory>: empty buffer");
    lnx_media *m;
    lnx_status st = media_new(&m, LNX_SRC_MEMORY, opts);
    if (st)
        return st;
    snprintf(m->origin, sizeof m->origin, "<memory>");
    m->mem = malloc(size);
    if (!m->mem) {
        lnx_media_close(m);
        return lnx_error(LNX_E_NOMEM, "<memory>: cannot copy %zu bytes", size);
    }
    memcpy(m->mem, data, size);
    m->mem_size = size;
    return open_common(out, m);
}

lnx_status lnx_media_open_callbacks(lnx_media **out, lnx_media_read_fn read_fn, lnx_media_seek_fn seek_fn,
                                    const lnx_media_opts *opts, void *user_data)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_media_open_callbacks: out is NULL");
    *out = NULL;
    if (!read_fn || !seek_fn)
        return lnx_error(LNX_E_INVALID, "lnx_media_open_callbacks: both read and seek callbacks are required");
    lnx_media *m;
    lnx_status st = media_new(&m, LNX_SRC_CALLBACKS, opts);
    if (st)
        return st;
    snprintf(m->origin, sizeof m->origin, "<callbacks>");
    m->read_fn = read_fn;
    m->seek_fn = seek_fn;
    m->user_data = user_data;
    return open_common(out, m);
}

lnx_status lnx_media_after_fork(lnx_media *m)
{
    if (m->pid == getpid())
        return LNX_OK;
    m->pid = getpid();
    /* the old decoder's threads and the twin's stayed in the parent: leave both (freeing them
     * would join threads that do not exist here) and start new ones */
    m->dec = NULL;
    m->twin = NULL;
    m->twin_failed = 0;
    if (m->kind == LNX_SRC_PATH && m->path) {
        /* the inherited stream shares its file offset with the parent's: read through our own */
        FILE *f;
        LNX_TRY(lnx_fopen_regular(m->path, &f));
        fclose(m->file);
        m->file = f;
    }
    if (m->kind != LNX_SRC_CALLBACKS)
        LNX_TRY(lnx_demux_open(m));
    return m->fmt ? decoder_open(m) : LNX_OK;
}

lnx_status lnx_media_twin(lnx_media *m)
{
    if (m->twin)
        return LNX_OK;
    if (m->twin_failed || m->borrowed || (m->kind != LNX_SRC_PATH && m->kind != LNX_SRC_MEMORY))
        return LNX_E_UNSUPPORTED;
    lnx_media *t = NULL;
    lnx_status st = media_new(&t, m->kind, &m->opts);
    if (st)
        goto fail;
    t->borrowed = 1;
    snprintf(t->origin, sizeof t->origin, "%s", m->origin);
    if (m->kind == LNX_SRC_PATH) {
        t->file = fopen(m->path, "rb");
        if (!t->file) {
            st = LNX_E_IO;
            goto fail;
        }
        t->file_size = m->file_size;
    } else {
        t->mem = m->mem;
        t->mem_size = m->mem_size;
    }
    t->pkt = av_packet_alloc();
    t->frame = av_frame_alloc();
    t->held = av_frame_alloc();
    if (!t->pkt || !t->frame || !t->held) {
        st = LNX_E_NOMEM;
        goto fail;
    }
    st = lnx_demux_open(t);
    if (!st)
        st = decoder_open(t);
    if (st)
        goto fail;
    /* the same index: the bytes are the same */
    t->info = m->info;
    t->pkts = m->pkts;
    t->npkts = m->npkts;
    t->nframes = m->nframes;
    t->truncated = m->truncated;
    t->rank_pkt = m->rank_pkt;
    t->rank_pts = m->rank_pts;
    t->by_pts = m->by_pts;
    t->key_field = m->key_field;
    t->id_sorted = m->id_sorted;
    t->id_pkt = m->id_pkt;
    m->twin = t;
    return LNX_OK;
fail:
    lnx_media_close(t);
    m->twin_failed = 1;
    lnx_clear_error();
    return st ? st : LNX_E_INTERNAL;
}

void lnx_media_close(lnx_media *m)
{
    if (!m)
        return;
    lnx_avlog_scope scope;
    lnx_avlog_enter(&scope, &m->opts.log);
    if (m->pid != getpid()) {
        /* a forked child: freeing a frame-threaded decoder would join libav's worker threads,
         * which stayed in the parent; its memory is left to the child's exit */
        m->dec = NULL;
        m->twin = NULL;
    }
    lnx_media_close(m->twin);
    if (m->borrowed) {
        /* the index and the memory source belong to the original handle */
        m->pkts = NULL;
        m->rank_pkt = m->rank_pts = m->id_sorted = m->id_pkt = NULL;
        m->mem = NULL;
    }
    avcodec_free_context(&m->dec);
    lnx_avlog_unregister(m);
    demux_close(m);
    av_packet_free(&m->pkt);
    av_frame_free(&m->frame);
    av_frame_free(&m->held);
    lnx_rgb_conv_free(&m->conv);
    free(m->image_rgb);
    free(m->pkts);
    free(m->rank_pkt);
    free(m->rank_pts);
    free(m->id_sorted);
    free(m->id_pkt);
    free(m->plan);
    if (m->file)
        fclose(m->file);
    free(m->path);
    free(m->mem);
    lnx_avlog_leave(&scope);
    free(m);
}

const lnx_media_info *lnx_media_get_info(const lnx_media *m)
{
    return m ? &m->info : NULL;
}
