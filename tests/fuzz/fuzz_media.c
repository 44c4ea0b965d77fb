/* The frame sampler on hostile media. The first input byte picks the way the rest is opened
 * (bit 0: from memory or through read/seek callbacks) and how frames are read (bit 1: uniform
 * read or the pull interface; bits 2-3: 1 to 4 frames). Limits are lowered so that a small
 * input cannot ask for gigabytes. */
#include "fuzz.h"

#include <stdio.h>
#include <string.h>

#include <libavutil/log.h>

#include "media/sampler.h"

typedef struct stream {
    const uint8_t *data;
    int64_t size, pos;
} stream;

static int32_t read_cb(void *user, uint8_t *buf, int32_t n)
{
    stream *s = user;
    int64_t left = s->size - s->pos;
    if (left <= 0)
        return 0;
    if (n > left)
        n = (int32_t)left;
    memcpy(buf, s->data + s->pos, (size_t)n);
    s->pos += n;
    return n;
}

static int64_t seek_cb(void *user, int64_t off, int32_t whence)
{
    stream *s = user;
    int64_t base;
    switch (whence) {
    case LNX_MEDIA_SEEK_SIZE: return s->size;
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = s->pos; break;
    case SEEK_END: base = s->size; break;
    default: return -1;
    }
    if (off < -base || base + off > s->size)
        return -1;
    s->pos = base + off;
    return s->pos;
}

static void read_frames(lnx_media *m, int pull, int32_t want)
{
    const lnx_media_info *info = lnx_media_get_info(m);
    if (info->frame_count < 1)
        __builtin_trap(); /* opening must refuse a source without frames */
    if (want > info->frame_count)
        want = (int32_t)info->frame_count;
    int64_t idx[4];
    if (lnx_media_uniform_indices(m, want, idx) != LNX_OK)
        __builtin_trap();
    (void)lnx_media_frame_time(m, idx[want - 1]);
    lnx_frames *f = NULL;
    if (!pull) {
        if (lnx_media_read(m, idx, want, &f) == LNX_OK) {
            if (f->count > want || (f->count > 0 && (f->width != info->width || f->height != info->height)))
                __builtin_trap();
            lnx_frames_free(f);
        }
        return;
    }
    if (lnx_media_begin(m, idx, want) != LNX_OK)
        return;
    for (int guard = 0; guard < 8; guard++) {
        lnx_status st = lnx_media_next(m, 2, &f);
        if (st != LNX_OK)
            break;
        lnx_frames_free(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    av_log_set_level(AV_LOG_QUIET); /* the host's business, and this host wants quiet */
    uint8_t mode = data[0];
    stream s = { data + 1, (int64_t)size - 1, 0 };
    lnx_media_opts o = lnx_media_opts_default();
    o.threads = 1;
    o.max_frame_pixels = 1u << 20;
    o.max_frames = 4096;
    lnx_media *m;
    lnx_status st = (mode & 1) ? lnx_media_open_callbacks(&m, read_cb, seek_cb, &o, &s)
                               : lnx_media_open_memory(&m, s.data, (size_t)s.size, &o);
    if (st != LNX_OK)
        return 0;
    read_frames(m, (mode >> 1) & 1, 1 + ((mode >> 2) & 3));
    lnx_media_close(m);
    return 0;
}
