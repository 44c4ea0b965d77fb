/* A synthetic video for the benchmarks (see bench_video.h). */
#include "bench_video.h"

#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>

/* A moving diagonal gradient with a bouncing box: cheap to draw, not trivial to code. */
static void draw(AVFrame *f, int i)
{
    int w = f->width, h = f->height;
    for (int y = 0; y < h; y++) {
        uint8_t *row = f->data[0] + (size_t)y * (size_t)f->linesize[0];
        for (int x = 0; x < w; x++)
            row[x] = (uint8_t)(x + y + 3 * i);
    }
    int bx = (i * 7) % (w > 64 ? w - 64 : 1), by = (i * 5) % (h > 64 ? h - 64 : 1);
    for (int y = by; y < by + 64 && y < h; y++)
        memset(f->data[0] + (size_t)y * (size_t)f->linesize[0] + bx, 235, (size_t)(w - bx < 64 ? w - bx : 64));
    for (int p = 1; p < 3; p++)
        for (int y = 0; y < (h + 1) / 2; y++)
            memset(f->data[p] + (size_t)y * (size_t)f->linesize[p], p == 1 ? (uint8_t)(96 + y / 4 + i) : (uint8_t)(160 - i),
                   (size_t)(w + 1) / 2);
}

static int drain(AVFormatContext *oc, AVCodecContext *enc, AVStream *st, AVPacket *pkt)
{
    int ret;
    while ((ret = avcodec_receive_packet(enc, pkt)) == 0) {
        if (pkt->duration == 0)
            pkt->duration = 1;
        av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
        pkt->stream_index = st->index;
        if (av_interleaved_write_frame(oc, pkt) < 0)
            return -1;
    }
    return ret == AVERROR(EAGAIN) || ret == AVERROR_EOF ? 0 : -1;
}

int bench_video_generate(const char *path, int width, int height, int fps, int gop, int64_t nframes)
{
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (!codec)
        codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    if (!codec) {
        fprintf(stderr, "no H.264 or MPEG-4 encoder in this libavcodec\n");
        return -1;
    }
    fprintf(stderr, "generating %s: %lld frames %dx%d at %d fps, GOP %d, encoder %s\n", path, (long long)nframes, width,
           height, fps, gop, codec->name);
    fflush(stdout);
    AVFormatContext *oc = NULL;
    if (avformat_alloc_output_context2(&oc, NULL, "mp4", path) < 0)
        return -1;
    AVCodecContext *enc = avcodec_alloc_context3(codec);
    AVStream *st = avformat_new_stream(oc, NULL);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    int rc = -1;
    if (!enc || !st || !pkt || !f)
        goto out;
    enc->width = width;
    enc->height = height;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->time_base = (AVRational){1, fps};
    enc->framerate = (AVRational){fps, 1};
    enc->gop_size = gop;
    enc->thread_count = 0;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (!strcmp(codec->name, "libx264"))
        av_opt_set(enc->priv_data, "preset", "ultrafast", 0);
    else
        enc->bit_rate = 2000000;
    if (avcodec_open2(enc, codec, NULL) < 0 || avcodec_parameters_from_context(st->codecpar, enc) < 0)
        goto out;
    st->time_base = enc->time_base;
    if (avio_open(&oc->pb, path, AVIO_FLAG_WRITE) < 0 || avformat_write_header(oc, NULL) < 0)
        goto out;
    f->width = width;
    f->height = height;
    f->format = AV_PIX_FMT_YUV420P;
    if (av_frame_get_buffer(f, 0) < 0)
        goto out;
    for (int64_t i = 0; i < nframes; i++) {
        if (av_frame_make_writable(f) < 0)
            goto out;
        draw(f, (int)i);
        f->pts = i;
        if (avcodec_send_frame(enc, f) < 0 || drain(oc, enc, st, pkt) < 0)
            goto out;
    }
    if (avcodec_send_frame(enc, NULL) < 0 || drain(oc, enc, st, pkt) < 0 || av_write_trailer(oc) < 0)
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

