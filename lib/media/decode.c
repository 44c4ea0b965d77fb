/* Decoding chosen frames: positioning the demuxer on a keyframe, decoder runs that are reused
 * while the next target lies ahead, the decode-everything pass, and the pull API. */
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <unistd.h>

#include "../base/parallel.h"
#include "avlog.h"
#include "media_internal.h"

/* --- positioning ------------------------------------------------------------------------------ */

static void reset_run(lnx_media *m)
{
    av_packet_unref(m->pkt);
    m->have_pending = 0;
    m->run_active = 0;
    m->drained = 0;
    m->eof_sent = 0;
    m->last_rank = -1;
    m->out_count = 0;
    m->next_pkt = -1;
}

/* Decode index of a packet just read after a seek, or -1 if it is not in the index. */
static int64_t identify(const lnx_media *m, const AVPacket *pkt)
{
    lnx_media_pkt p = {.pts = pkt->pts, .dts = pkt->dts, .pos = pkt->pos};
    int64_t key = lnx_pkt_identity(&p, m->key_field);
    int64_t lo = 0, hi = m->npkts;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (m->id_sorted[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->npkts && m->id_sorted[lo] == key ? m->id_pkt[lo] : -1;
}

/* Reads packets until packet k is pending. After a seek packets are recognised by identity;
 * after a reopen they are counted from 0. Returns 0, or -1 when k cannot be reached this way. */
static int skip_to(lnx_media *m, int64_t k, int by_identity)
{
    int64_t j = -1;
    for (int64_t guard = 0; guard <= m->npkts; guard++) {
        if (lnx_demux_read(m) < 0)
            return -1;
        j = by_identity ? identify(m, m->pkt) : j + 1;
        if (j < 0 || j > k)
            return -1;
        if (j == k) {
            m->have_pending = 1;
            m->next_pkt = k + 1;
            return 0;
        }
    }
    return -1;
}

/* Leaves the demuxer with packet k (decode order) pending and the decoder flushed. Seeks when the
 * packets can be recognised afterwards; otherwise, or when the seek lands wrong, reopens the
 * source and reads forward from the start. */
static lnx_status position_at(lnx_media *m, int64_t k)
{
    avcodec_flush_buffers(m->dec);
    reset_run(m);
    if (m->key_field && m->fmt) {
        const lnx_media_pkt *p = &m->pkts[k];
        int64_t ts = p->dts != AV_NOPTS_VALUE ? p->dts : p->pts;
        if (p->pts != AV_NOPTS_VALUE && p->pts < ts)
            ts = p->pts;
        if (ts != AV_NOPTS_VALUE && av_seek_frame(m->fmt, m->stream, ts, AVSEEK_FLAG_BACKWARD) >= 0 &&
            skip_to(m, k, 1) == 0) {
            m->n_seeks++;
            return LNX_OK;
        }
        reset_run(m);
    }
    m->n_reopens++;
    lnx_status st = lnx_demux_open(m);
    if (st) {
        lnx_error_prefix("%s: reopening to reach frame data", m->origin);
        return st;
    }
    if (skip_to(m, k, 0) == 0)
        return LNX_OK;
    reset_run(m);
    return lnx_error(LNX_E_MEDIA, "%s: cannot reach video packet %lld of %lld (the stream reads differently "
                     "than when it was indexed)", m->origin, (long long)k, (long long)m->npkts);
}

/* The packet to start decoding from for frame t: the last keyframe at or before its packet in
 * decode order whose own frame is not later than t (so open-GOP leading frames start one GOP
 * earlier). Without timestamps every run starts at the beginning. */
static int64_t start_packet(const lnx_media *m, int64_t t)
{
    if (!m->by_pts)
        return 0;
    int64_t pts = m->rank_pts[t];
    for (int64_t j = m->rank_pkt[t]; j >= 0; j--) {
        const lnx_media_pkt *p = &m->pkts[j];
        if (p->key && p->pts != AV_NOPTS_VALUE && p->pts <= pts)
            return j;
    }
    return 0;
}

/* --- decoding --------------------------------------------------------------------------------- */

/* Sends the pending packet, reading one first when none is pending; at the end of the stream
 * (or a read error, e.g. a truncated file) starts draining the decoder. */
static void feed(lnx_media *m)
{
    if (!m->have_pending) {
        if (m->eof_sent)
            return;
        if (lnx_demux_read(m) < 0) {
            avcodec_send_packet(m->dec, NULL);
            m->eof_sent = 1;
            return;
        }
        m->have_pending = 1;
        m->next_pkt++;
    }
    int ret = avcodec_send_packet(m->dec, m->pkt);
    if (ret == AVERROR(EAGAIN))
        return;
    m->n_sent++;
    /* A rejected packet (corrupt data) simply yields no frame; the target check reports it. */
    av_packet_unref(m->pkt);
    m->have_pending = 0;
}

static int64_t frame_rank(lnx_media *m, const AVFrame *f)
{
    int64_t n = m->out_count++;
    if (!m->by_pts)
        return n;
    int64_t ts = f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
    int64_t lo = 0, hi = m->nframes;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (m->rank_pts[mid] < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->nframes && m->rank_pts[lo] == ts ? lo : -1;
}

/* Whether the current run can go on to frame t (whose run would start at packet k) without a
 * seek: it is still open, has not passed t, and has already reached k. */
static int can_continue(const lnx_media *m, int64_t t, int64_t k)
{
    if (!m->run_active || m->drained || t <= m->last_rank)
        return 0;
    if (m->sequential)
        return 1;
    int64_t next_send = m->have_pending ? m->next_pkt - 1 : m->next_pkt;
    return m->run_key <= k && next_send >= k;
}

/* Decodes until frame t is in m->held. *found is 0 when the decoder skipped past it or the stream
 * ended (the frame is corrupt or missing); m->held then keeps the later frame, if any. */
static lnx_status decode_target(lnx_media *m, int64_t t, int *found)
{
    *found = 0;
    if (m->held_rank == t) {
        *found = 1;
        return LNX_OK;
    }
    int64_t k = start_packet(m, t);
    if (!can_continue(m, t, k)) {
        if (m->sequential && m->run_active)
            return LNX_OK; /* the one run from the start has ended */
        lnx_status st = position_at(m, k);
        if (st)
            return st;
        m->run_active = 1;
        m->run_key = k;
    }
    for (int64_t budget = 2 * (m->npkts + 64); budget > 0; budget--) {
        int ret = avcodec_receive_frame(m->dec, m->frame);
        if (ret == 0) {
            int64_t r = frame_rank(m, m->frame);
            if (r < 0 || r <= m->last_rank) {
                av_frame_unref(m->frame);
                continue;
            }
            m->last_rank = r;
            if (r < t) {
                av_frame_unref(m->frame);
                continue;
            }
            av_frame_unref(m->held);
            av_frame_move_ref(m->held, m->frame);
            m->held_rank = r;
            *found = r == t;
            return LNX_OK;
        }
        if (ret == AVERROR_EOF) {
            m->drained = 1;
            return LNX_OK;
        }
        if (ret == AVERROR(ENOMEM))
            return lnx_error(LNX_E_NOMEM, "%s: out of memory while decoding frame %lld", m->origin, (long long)t);
        if (ret == AVERROR(EAGAIN))
            feed(m);
        /* other errors belong to one corrupt packet; decoding goes on */
    }
    return lnx_error(LNX_E_MEDIA, "%s: the decoder made no progress towards frame %lld", m->origin, (long long)t);
}

static lnx_status emit(lnx_media *m, lnx_frames *f, int32_t slot, int64_t t)
{
    uint8_t *dst = lnx_frame_ptr(f, slot);
    f->index[slot] = t;
    f->time[slot] = lnx_media_frame_time(m, t);
    if (m->image_rgb) {
        memcpy(dst, m->image_rgb, (size_t)f->width * (size_t)f->height * 3);
        return LNX_OK;
    }
    const AVFrame *h = m->held;
    int rotation = m->opts.apply_rotation ? m->info.rotation : 0;
    lnx_status st = lnx_rgb_convert(&m->conv, (const uint8_t *const *)h->data, h->linesize, h->width, h->height,
                                    (enum AVPixelFormat)h->format, m->info.coded_width, m->info.coded_height,
                                    rotation, dst);
    if (st)
        lnx_error_prefix("%s: frame %lld", m->origin, (long long)t);
    return st;
}

/* --- reads ------------------------------------------------------------------------------------ */

static lnx_status check_indices(const lnx_media *m, const int64_t *indices, int32_t n)
{
    if (n <= 0)
        return lnx_error(LNX_E_INVALID, "%s: cannot read %d frames", m->origin, (int)n);
    if (!indices)
        return lnx_error(LNX_E_INVALID, "%s: NULL frame indices", m->origin);
    for (int32_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= m->nframes)
            return lnx_error(LNX_E_INVALID, "%s: frame index %lld (position %d) is outside [0, %lld)", m->origin,
                             (long long)indices[i], (int)i, (long long)m->nframes);
    return LNX_OK;
}

typedef struct slot_item {
    int64_t index;
    int32_t slot;
} slot_item;

static int cmp_slot(const void *a, const void *b)
{
    const slot_item *x = a, *y = b;
    if (x->index != y->index)
        return (x->index > y->index) - (x->index < y->index);
    return (x->slot > y->slot) - (x->slot < y->slot);
}

/* Removes the frames whose slot is not marked ok, keeping the order. */
static void compact(lnx_frames *f, const uint8_t *ok)
{
    size_t bytes = (size_t)f->width * (size_t)f->height * 3;
    int32_t w = 0;
    for (int32_t i = 0; i < f->count; i++) {
        if (!ok[i])
            continue;
        if (w != i) {
            memmove(lnx_frame_ptr(f, w), lnx_frame_ptr(f, i), bytes);
            f->index[w] = f->index[i];
            f->time[w] = f->time[i];
        }
        w++;
    }
    f->count = w;
}

/* Decodes the targets items[0..n) into their slots of f, marking ok[slot]. */
static lnx_status read_items(lnx_media *m, const slot_item *items, int32_t n, lnx_frames *f, uint8_t *ok)
{
    for (int32_t i = 0; i < n; i++) {
        int64_t t = items[i].index;
        int found = 1;
        if (!m->image_rgb)
            LNX_TRY(decode_target(m, t, &found));
        if (!found) {
            if (m->opts.skip_corrupt)
                continue;
            return lnx_error(LNX_E_MEDIA, "%s: frame %lld of %lld could not be decoded (corrupt or missing data)",
                             m->origin, (long long)t, (long long)m->nframes);
        }
        LNX_TRY(emit(m, f, items[i].slot, t));
        ok[items[i].slot] = 1;
    }
    return LNX_OK;
}

/* Seek-based reads of at least this many frames run on two decoders (the handle and its twin),
 * each taking half of the targets in index order: a seek-based read decodes from a keyframe to
 * each target on one core, so the second core otherwise idles. */
#define TWIN_MIN_FRAMES 4

typedef struct twin_job {
    lnx_media *m;
    const slot_item *items;
    int32_t n;
    lnx_frames *f;
    uint8_t *ok;
    lnx_status st;
    char msg[1024];
} twin_job;

static void *twin_main(void *p)
{
    twin_job *j = p;
    lnx_avlog_scope scope;
    lnx_avlog_enter(&scope, &j->m->opts.log);
    j->st = read_items(j->m, j->items, j->n, j->f, j->ok);
    if (j->st)
        snprintf(j->msg, sizeof j->msg, "%s", lnx_last_error());
    lnx_avlog_leave(&scope);
    return NULL;
}

static int use_twin(lnx_media *m, int32_t n, int sequential)
{
    if (sequential || m->image_rgb || n < TWIN_MIN_FRAMES || m->opts.threads == 1)
        return 0;
    if (m->opts.threads == 0 && lnx_cpu_count() < 2)
        return 0;
    return lnx_media_twin(m) == LNX_OK;
}

/* The shared read: targets in request order (seek-based; in index order split over two decoders
 * when use_twin says so) or sorted with one run from the start (sequential); results land in
 * request order. */
static lnx_status read_frames_inner(lnx_media *m, const int64_t *indices, int32_t n, int sequential,
                                    lnx_frames **out);

/* Every read runs with libav's messages routed to m's logger. */
static lnx_status read_frames(lnx_media *m, const int64_t *indices, int32_t n, int sequential, lnx_frames **out)
{
    lnx_avlog_scope scope;
    lnx_avlog_enter(&scope, &m->opts.log);
    lnx_status st = LNX_OK;
    if (m->pid != getpid()) {
        st = lnx_media_after_fork(m);
        reset_run(m);
        m->held_rank = -1;
    }
    if (st == LNX_OK)
        st = read_frames_inner(m, indices, n, sequential, out);
    lnx_avlog_leave(&scope);
    return st;
}

static lnx_status read_frames_inner(lnx_media *m, const int64_t *indices, int32_t n, int sequential,
                                    lnx_frames **out)
{
    lnx_frames *f = NULL;
    slot_item *order = malloc(sizeof *order * (size_t)n);
    uint8_t *ok = calloc((size_t)n, 1);
    lnx_status st = order && ok ? lnx_frames_alloc(&f, n, m->info.width, m->info.height, 0)
                                : lnx_error(LNX_E_NOMEM, "%s: out of memory", m->origin);
    if (st)
        goto done;
    for (int32_t i = 0; i < n; i++) {
        order[i].index = indices[i];
        order[i].slot = i;
    }
    m->sequential = sequential;
    if (sequential && !m->image_rgb) {
        qsort(order, (size_t)n, sizeof *order, cmp_slot);
        av_frame_unref(m->held);
        m->held_rank = -1;
        st = position_at(m, 0);
        if (st)
            goto done;
        m->run_active = 1;
        m->run_key = 0;
    }
    if (use_twin(m, n, sequential)) {
        qsort(order, (size_t)n, sizeof *order, cmp_slot);
        int32_t half = n / 2;
        twin_job j = { m->twin, order + half, n - half, f, ok, LNX_OK, "" };
        pthread_t th;
        if (pthread_create(&th, NULL, twin_main, &j) == 0) {
            st = read_items(m, order, half, f, ok);
            pthread_join(th, NULL);
            if (!st && j.st)
                st = lnx_error(j.st, "%s", j.msg);
            if (!st)
                compact(f, ok);
            goto done;
        }
    }
    st = read_items(m, order, n, f, ok);
    if (!st)
        compact(f, ok);
done:
    if (sequential) {
        /* the run from the start may continue as an ordinary run */
        m->sequential = 0;
    }
    if (st) {
        lnx_frames_free(f);
        f = NULL;
    }
    free(order);
    free(ok);
    *out = f;
    return st;
}

static void end_plan(lnx_media *m)
{
    free(m->plan);
    m->plan = NULL;
    m->plan_n = m->plan_pos = 0;
}

lnx_status lnx_media_read(lnx_media *m, const int64_t *indices, int32_t n, lnx_frames **out)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_media_read: out is NULL");
    *out = NULL;
    if (!m)
        return lnx_error(LNX_E_INVALID, "lnx_media_read: NULL handle");
    end_plan(m);
    lnx_status st = check_indices(m, indices, n);
    return st ? st : read_frames(m, indices, n, 0, out);
}

lnx_status lnx_media_read_sequential(lnx_media *m, const int64_t *indices, int32_t n, lnx_frames **out)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_media_read_sequential: out is NULL");
    *out = NULL;
    if (!m)
        return lnx_error(LNX_E_INVALID, "lnx_media_read_sequential: NULL handle");
    end_plan(m);
    lnx_status st = check_indices(m, indices, n);
    return st ? st : read_frames(m, indices, n, 1, out);
}

lnx_status lnx_media_read_all(lnx_media *m, lnx_frames **out)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_media_read_all: out is NULL");
    *out = NULL;
    if (!m)
        return lnx_error(LNX_E_INVALID, "lnx_media_read_all: NULL handle");
    if (m->nframes > INT32_MAX)
        return lnx_error(LNX_E_LIMIT, "%s: %lld frames are too many to read at once", m->origin,
                         (long long)m->nframes);
    int32_t n = (int32_t)m->nframes;
    int64_t *all = malloc(sizeof *all * (size_t)n);
    if (!all)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory", m->origin);
    for (int32_t i = 0; i < n; i++)
        all[i] = i;
    lnx_status st = lnx_media_read_sequential(m, all, n, out);
    free(all);
    return st;
}

lnx_status lnx_media_begin(lnx_media *m, const int64_t *indices, int32_t n)
{
    if (!m)
        return lnx_error(LNX_E_INVALID, "lnx_media_begin: NULL handle");
    end_plan(m);
    lnx_status st = check_indices(m, indices, n);
    if (st)
        return st;
    m->plan = malloc(sizeof *m->plan * (size_t)n);
    if (!m->plan)
        return lnx_error(LNX_E_NOMEM, "%s: out of memory", m->origin);
    memcpy(m->plan, indices, sizeof *m->plan * (size_t)n);
    m->plan_n = n;
    m->plan_pos = 0;
    return LNX_OK;
}

lnx_status lnx_media_next(lnx_media *m, int32_t max_batch, lnx_frames **out)
{
    if (!out)
        return lnx_error(LNX_E_INVALID, "lnx_media_next: out is NULL");
    *out = NULL;
    if (!m)
        return lnx_error(LNX_E_INVALID, "lnx_media_next: NULL handle");
    if (max_batch <= 0)
        return lnx_error(LNX_E_INVALID, "%s: batch size %d must be positive", m->origin, (int)max_batch);
    while (m->plan && m->plan_pos < m->plan_n) {
        int32_t take = m->plan_n - m->plan_pos < max_batch ? m->plan_n - m->plan_pos : max_batch;
        lnx_frames *f;
        lnx_status st = read_frames(m, m->plan + m->plan_pos, take, 0, &f);
        if (st) {
            end_plan(m);
            return st;
        }
        m->plan_pos += take;
        if (f->count > 0) {
            *out = f;
            return LNX_OK;
        }
        lnx_frames_free(f); /* every frame of this batch was skipped as corrupt */
    }
    end_plan(m);
    return LNX_DONE;
}

/* --- still images ----------------------------------------------------------------------------- */

/* The probe found no size (libav refuses to decode a picture beyond max_pixels, and then reports
 * none): read it from the image header to report a limit, else the stream is unusable. */
static lnx_status size_from_header(lnx_media *m)
{
    lnx_status st = position_at(m, 0);
    if (st)
        return st;
    uint64_t w = 0, h = 0;
    int known = lnx_image_header_size(m->pkt->data, (size_t)m->pkt->size, &w, &h);
    reset_run(m);
    if (known) {
        st = lnx_media_check_size(m, w, h);
        if (st)
            return st;
    }
    return lnx_error(LNX_E_MEDIA, "%s: the video stream has no frame size", m->origin);
}

lnx_status lnx_media_prepare_image(lnx_media *m)
{
    if (m->info.coded_width <= 0 || m->info.coded_height <= 0)
        return size_from_header(m);
    if (!m->info.is_image || m->fmt->streams[m->stream]->codecpar->codec_id != AV_CODEC_ID_MJPEG)
        return LNX_OK;
    lnx_status st = position_at(m, 0);
    if (st)
        return st;
    int w = 0, h = 0;
    uint8_t *rgb = NULL;
    st = lnx_jpeg_decode_rgb(m->pkt->data, (size_t)m->pkt->size, m->opts.max_frame_pixels, m->origin, &rgb, &w, &h);
    reset_run(m);
    if (st == LNX_E_UNSUPPORTED) /* CMYK / YCCK: libav decodes those */
        return LNX_OK;
    if (st)
        return st;
    m->image_rgb = rgb;
    m->info.width = m->info.coded_width = w;
    m->info.height = m->info.coded_height = h;
    m->info.rotation = 0;
    return LNX_OK;
}
