/* A synthetic video for the benchmarks: a moving gradient with a bouncing box, coded with libx264
 * (ultrafast, a keyframe every `gop` frames) or, without libx264, MPEG-4 part 2, into an MP4. */
#ifndef LNX_BENCH_VIDEO_H
#define LNX_BENCH_VIDEO_H

#include <stdint.h>

/* Writes `nframes` frames of width x height at `fps` to `path` (prints one line on stderr).
 * Returns 0 on success. */
int bench_video_generate(const char *path, int width, int height, int fps, int gop, int64_t nframes);

#endif
