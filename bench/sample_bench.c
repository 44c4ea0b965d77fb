/* Frame sampler benchmark: seek-based sampling against decode-everything on a long video.
 *
 * Generates (into a temp dir, removed afterwards) a synthetic video with libx264 (ultrafast, one
 * keyframe every --gop frames) or, without libx264, MPEG-4 part 2; then samples --frames frames
 * uniformly with the seek-based reader and with a decode-everything pass, prints both times and the
 * speedup, and checks that the frames are identical (exit status 1 if not).
 *
 *   sample_bench [--minutes 10] [--width 1280] [--height 720] [--fps 25] [--gop 50] [--frames 32]
 *                [--threads 0] [--video PATH]   (PATH: use an existing file instead of generating)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "bench_video.h"
#include "media/sampler.h"

typedef struct bench_opts {
    double minutes;
    int width, height, fps, gop, frames, threads;
    const char *video;
} bench_opts;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One timed sampling pass on a fresh handle; *open_s gets the open (index scan) time. */
static int sample(const char *path, const bench_opts *o, int sequential, lnx_frames **out, double *open_s,
                  double *read_s)
{
    lnx_media_opts mo = lnx_media_opts_default();
    mo.threads = o->threads;
    lnx_media *m = NULL;
    double t0 = now();
    if (lnx_media_open_path(&m, path, &mo)) {
        fprintf(stderr, "open: %s\n", lnx_last_error());
        return -1;
    }
    double t1 = now();
    int64_t *idx = malloc(sizeof *idx * (size_t)o->frames);
    lnx_status st = idx ? lnx_media_uniform_indices(m, o->frames, idx) : LNX_E_NOMEM;
    if (!st)
        st = sequential ? lnx_media_read_sequential(m, idx, o->frames, out) : lnx_media_read(m, idx, o->frames, out);
    double t2 = now();
    if (st)
        fprintf(stderr, "sampling: %s\n", lnx_last_error());
    else if (!sequential)
        printf("source: %s, %s, %lld frames, %.1f s, %dx%d\n", lnx_media_get_info(m)->container,
               lnx_media_get_info(m)->codec, (long long)lnx_media_get_info(m)->frame_count,
               lnx_media_get_info(m)->duration, lnx_media_get_info(m)->width, lnx_media_get_info(m)->height);
    free(idx);
    lnx_media_close(m);
    *open_s = t1 - t0;
    *read_s = t2 - t1;
    return st ? -1 : 0;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return 1;
        if (!v)
            return -1;
        if (!strcmp(a, "--minutes"))
            o->minutes = atof(v);
        else if (!strcmp(a, "--width"))
            o->width = atoi(v);
        else if (!strcmp(a, "--height"))
            o->height = atoi(v);
        else if (!strcmp(a, "--fps"))
            o->fps = atoi(v);
        else if (!strcmp(a, "--gop"))
            o->gop = atoi(v);
        else if (!strcmp(a, "--frames"))
            o->frames = atoi(v);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--video"))
            o->video = v;
        else
            return -1;
        i++;
    }
    if (o->minutes <= 0 || o->width < 16 || o->height < 16 || (o->width | o->height) & 1 || o->fps <= 0 ||
        o->gop <= 0 || o->frames <= 0 || o->threads < 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    bench_opts o = {.minutes = 10, .width = 1280, .height = 720, .fps = 25, .gop = 50, .frames = 32};
    int pr = parse_args(argc, argv, &o);
    if (pr) {
        fprintf(pr > 0 ? stdout : stderr,
                "usage: %s [--minutes M] [--width W] [--height H] [--fps F] [--gop G] [--frames N] "
                "[--threads T] [--video PATH]\n",
                argv[0]);
        return pr > 0 ? 0 : 2;
    }
    av_log_set_level(AV_LOG_ERROR);
    char dir[4096] = "", path[4200];
    if (o.video) {
        snprintf(path, sizeof path, "%s", o.video);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/lnx-sample-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(path, sizeof path, "%s/bench.mp4", dir);
        int64_t nframes = (int64_t)(o.minutes * 60 * o.fps + 0.5);
        if (nframes < o.frames)
            nframes = o.frames;
        double t0 = now();
        if (bench_video_generate(path, o.width, o.height, o.fps, o.gop, nframes)) {
            fprintf(stderr, "generating the video failed\n");
            unlink(path);
            rmdir(dir);
            return 1;
        }
        printf("generated in %.1f s\n", now() - t0);
    }

    lnx_frames *seek = NULL, *all = NULL;
    double seek_open, seek_read, all_open, all_read;
    int rc = 1;
    if (sample(path, &o, 0, &seek, &seek_open, &seek_read) || sample(path, &o, 1, &all, &all_open, &all_read))
        goto done;
    int same = seek->count == all->count && seek->width == all->width && seek->height == all->height &&
               !memcmp(seek->index, all->index, sizeof *seek->index * (size_t)seek->count) &&
               !memcmp(seek->data, all->data, (size_t)seek->count * (size_t)seek->width * (size_t)seek->height * 3);
    double seek_total = seek_open + seek_read, all_total = all_open + all_read;
    printf("sample %d frames uniformly (threads %d):\n", o.frames, o.threads);
    printf("  seek-based       : %8.3f s  (open + index %.3f s, decode %.3f s)\n", seek_total, seek_open, seek_read);
    printf("  decode-everything: %8.3f s  (open + index %.3f s, decode %.3f s)\n", all_total, all_open, all_read);
    printf("  speedup          : %8.1fx\n", all_total / seek_total);
    printf("  frames identical : %s\n", same ? "yes" : "NO");
    rc = same ? 0 : 1;
done:
    lnx_frames_free(seek);
    lnx_frames_free(all);
    if (!o.video) {
        unlink(path);
        rmdir(dir);
    }
    return rc;
}
