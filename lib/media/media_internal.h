/* Internals of the frame sampler shared by its source files (not for other modules). */
#ifndef LNX_MEDIA_INTERNAL_H
#define LNX_MEDIA_INTERNAL_H

#include <stdio.h>
#include <sys/types.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>

#include "sampler.h"

/* RGB24 conversion state: a cached swscale context and a 16-byte aligned scratch image (the
 * layout PyAV converts into, so swscale takes the same code paths). */
typedef struct lnx_rgb_conv {
    struct SwsContext *sws;
    uint8_t *tmp_data[4];
    int tmp_linesize[4];
    uint8_t *tmp;
    size_t tmp_size;
    int tmp_w, tmp_h;
} lnx_rgb_conv;

/* Converts one picture to packed RGB24 of dst_w x dst_h (scaling when sizes differ), rotated
 * clockwise by `rotation` degrees (0/90/180/270) into dst (rows of out_w * 3 bytes, where out_w is
 * dst_w or dst_h after a quarter turn). */
lnx_status lnx_rgb_convert(lnx_rgb_conv *c, const uint8_t *const src[4], const int src_stride[4], int src_w,
                           int src_h, enum AVPixelFormat src_fmt, int dst_w, int dst_h, int rotation, uint8_t *dst);
void lnx_rgb_conv_free(lnx_rgb_conv *c);

/* JPEG bytes -> packed RGB24 exactly as Pillow decodes them (libjpeg, islow, fancy upsampling).
 * *out is malloc'ed. max_pixels bounds width * height before any allocation. */
lnx_status lnx_jpeg_decode_rgb(const uint8_t *data, size_t size, uint64_t max_pixels, const char *origin,
                               uint8_t **out, int *width, int *height);

/* One video packet of the index, in decode order. */
typedef struct lnx_media_pkt {
    int64_t pts, dts, pos, duration;
    int32_t key;     /* keyframe flag from the container */
    int32_t discard; /* the container marks it as not displayed (before an edit list start) */
} lnx_media_pkt;

enum { LNX_SRC_PATH, LNX_SRC_MEMORY, LNX_SRC_CALLBACKS };

struct lnx_media {
    lnx_media_opts opts;
    lnx_media_info info;
    char origin[512]; /* path or "<memory>" / "<callbacks>", for messages */

    /* source */
    int kind;
    char *path;
    FILE *file;
    int64_t file_size;
    int io_error;    /* the byte source reported an error (as opposed to malformed data) */
    uint8_t *mem;
    size_t mem_size;
    int64_t mem_pos;
    lnx_media_read_fn read_fn;
    lnx_media_seek_fn seek_fn;
    void *user_data;

    /* demuxer and decoder */
    AVFormatContext *fmt;
    AVIOContext *avio;
    int stream;
    AVRational time_base;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    lnx_rgb_conv conv;
    uint8_t *image_rgb;  /* decoded JPEG still image (libjpeg path), NULL otherwise */

    /* index (decode order) and presentation order */
    lnx_media_pkt *pkts;
    int64_t npkts;
    int64_t nframes;     /* packets not marked discard = frames */
    int truncated;       /* the scan stopped at a read error */
    int64_t *rank_pkt;   /* presentation rank -> decode index */
    int64_t *rank_pts;   /* presentation rank -> pts, ascending (timestamp mode) */
    int by_pts;          /* 1: frames identified by pts; 0: by decoder output order */
    int key_field;       /* packet identity after a seek: 0 none, 1 pos, 2 pts, 3 dts */
    int64_t *id_sorted;  /* identity keys ascending, paired with id_pkt */
    int64_t *id_pkt;

    /* decoder run state */
    int64_t next_pkt;    /* decode index of the next packet the demuxer returns; -1 unknown */
    int have_pending;    /* m->pkt holds packet next_pkt - 1, read but not yet sent */
    int run_active;      /* the decoder has been fed continuously from a keyframe */
    int drained;         /* the decoder returned EOF in this run */
    int eof_sent;        /* the end of the stream was sent to the decoder in this run */
    int64_t run_key;     /* packet the current run started at */
    int sequential;      /* inside a decode-everything read: never seek */
    int64_t out_count;   /* frames output in this run (output-order numbering) */
    int64_t last_rank;   /* rank of the last frame the decoder returned in this run; -1 none */
    AVFrame *held;       /* last decoded frame (for repeats and for a frame found past a miss) */
    int64_t held_rank;

    /* counters for tests and benchmarks */
    int64_t n_seeks;     /* successful demuxer seeks */
    int64_t n_reopens;   /* fallbacks that reopened the source and read from the start */
    int64_t n_sent;      /* packets sent to the decoder */

    /* pull plan */
    int64_t *plan;
    int32_t plan_n, plan_pos;

    /* a second demuxer + decoder on the same bytes (path and memory sources), opened on the
     * first seek-based read of several frames so that both cores decode: shares the index */
    struct lnx_media *twin;
    int twin_failed;   /* opening it failed once: reads stay on one decoder */
    int borrowed;      /* this is a twin: mem and the index arrays belong to the original */
    pid_t pid;         /* the process that opened the decoder (libav's decoder threads live there) */
};

/* source.c: in a child forked since the decoder opened, replaces it (and the twin) with new ones
 * and reopens the byte source privately; a no-op in the process that opened it. */
lnx_status lnx_media_after_fork(lnx_media *m);

/* source.c: (re)opens the demuxer on the byte source from its start, with the video stream picked
 * and the limits checked. */
lnx_status lnx_demux_open(lnx_media *m);
/* Next non-empty packet of the video stream into m->pkt: 0, AVERROR_EOF or a libav error. */
int lnx_demux_read(lnx_media *m);
/* Identity of a packet for field 1 (pos), 2 (pts) or 3 (dts). */
int64_t lnx_pkt_identity(const lnx_media_pkt *p, int field);

/* source.c: the handle's twin (opened on first use): LNX_OK, or a failure status after which
 * the caller reads on one decoder (the error detail is cleared). */
lnx_status lnx_media_twin(lnx_media *m);

/* imagehdr.c: width and height from a PNG, BMP, WebP or JPEG header; 0 when not recognised. */
int lnx_image_header_size(const uint8_t *data, size_t size, uint64_t *width, uint64_t *height);
/* source.c: LNX_E_LIMIT (or LNX_E_MEDIA for a zero size) unless w x h is within the limits. */
lnx_status lnx_media_check_size(const lnx_media *m, uint64_t w, uint64_t h);

/* decode.c: at open time, finds the size from the first packet when the probe could not (a forged
 * image header), and decodes a JPEG still image with libjpeg. */
lnx_status lnx_media_prepare_image(lnx_media *m);

#endif
