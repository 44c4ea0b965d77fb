/* The frame sampler: one opened media source (video file, still image, memory buffer or host
 * I/O callbacks) that describes itself and returns RGB24 frames by policy.
 *
 * Frame numbering. Frame i is the i-th frame a decoder produces when the whole video stream is
 * decoded from the start (presentation order), which is what the reference implementation counts.
 * At open time the source is demuxed once without decoding: every video packet's timestamps,
 * byte position and keyframe flag go into an index. The frame count is the number of video packets
 * (minus packets the container marks as discarded, e.g. before an MP4 edit list), which equals
 * the number of decoded frames for every codec whose packets carry exactly one frame (H.264,
 * HEVC, VP8/VP9 superframes, AV1 temporal units, MPEG-4 part 2 without packed B-frames, MJPEG,
 * FFV1, images). Frame i is the packet with the i-th smallest presentation timestamp; decoded
 * frames are identified by their timestamp, so seek-based reads and a decode-everything pass
 * give the same frame for the same index. When packet timestamps are missing or repeated, the
 * sampler numbers frames by decoder output order instead and always decodes from the start.
 *
 * Pixels. Frames are converted to packed RGB24 with swscale (SWS_BILINEAR, default colour
 * details: BT.601 matrix, limited range unless the decoder reports a full-range JPEG format) into a
 * 16-byte aligned buffer, byte-identical to PyAV's frame.to_ndarray(format='rgb24'). A decoded
 * frame whose size differs from the stream's declared size is scaled to the declared size. JPEG
 * still images are decoded with libjpeg (islow DCT, fancy upsampling), as Pillow does, so that
 * they match PIL.Image.open(...).convert('RGB') byte for byte.
 *
 * Threads: a handle is used by one thread at a time and may move between threads.
 *
 * Logging: libav's messages about a source go to its opts.log (avlog.h), never to stderr; the
 * one piece of libav global state the library sets is that router, installed once.
 */
#ifndef LNX_MEDIA_SAMPLER_H
#define LNX_MEDIA_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "../base/log.h"
#include "../base/status.h"
#include "frames.h"

/* Largest accepted width or height of a source, in pixels. */
#define LNX_MEDIA_MAX_SIDE 16384

typedef struct lnx_media lnx_media;

/* What an opened source is. Borrowed from the handle (lnx_media_get_info). */
typedef struct lnx_media_info {
    char container[64];        /* libavformat demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" */
    char codec[64];            /* decoder name, e.g. "h264" */
    double duration;           /* seconds from the first frame's start to the last frame's end */
    int64_t frame_count;       /* frames the sampler can return (see the numbering note above) */
    int32_t frame_count_exact; /* 1: the index scan reached a clean end of the stream; 0: it stopped
                                * at a read error (truncated file), so later frames may be missing */
    double fps;                /* average frame rate (container's, else frames / duration), 0 if unknown */
    int32_t width, height;     /* size of the frames this handle returns (after rotation, if applied) */
    int32_t coded_width, coded_height; /* size as stored in the stream */
    int32_t rotation;          /* display rotation, clockwise degrees: 0, 90, 180 or 270 */
    int32_t is_image;          /* 1 for a still image source (one frame) */
} lnx_media_info;

typedef struct lnx_media_opts {
    int32_t threads;           /* decoder threads (frame + slice threading); 0 = libav's automatic
                                * choice, 1 = single-threaded. Default 0. Unless 1 (or 0 on one CPU),
                                * seek-based reads of 4+ frames from a path or memory source also
                                * run on a second demuxer + decoder, on a thread of their own, each
                                * decoding half of the targets. */
    int32_t apply_rotation;    /* 1 (default): rotate frames as the display matrix says;
                                * 0: raw decoded orientation, as the reference does */
    int32_t skip_corrupt;      /* 0 (default): a requested frame that cannot be decoded fails the read
                                * with LNX_E_MEDIA naming its index; 1: it is left out of the result */
    uint64_t max_frame_pixels; /* largest width * height accepted (LNX_E_LIMIT beyond); 0 = default
                                * (8192 * 8192). Each side is also capped at LNX_MEDIA_MAX_SIDE. */
    int64_t max_frames;        /* largest frame count accepted (LNX_E_LIMIT beyond); bounds the
                                * index scan of endless host streams. 0 = default (1 << 22). */
    lnx_logger log;            /* where libav's messages about this source go (avlog.h); fn NULL =
                                * the process default logger */
} lnx_media_opts;

/* Defaults as documented on each field. */
lnx_media_opts lnx_media_opts_default(void);

/* Opens a file by path (read through the "file" protocol only; no network, no pattern expansion).
 * opts NULL = defaults. *out is NULL on failure. Errors: LNX_E_IO (missing or unreadable file),
 * LNX_E_FORMAT (not a recognised media format, empty file), LNX_E_MEDIA (no video stream, zero
 * frames, undecodable), LNX_E_UNSUPPORTED (no decoder for the codec), LNX_E_LIMIT (dimensions or
 * frame count beyond the limits), LNX_E_NOMEM. */
lnx_status lnx_media_open_path(lnx_media **out, const char *path, const lnx_media_opts *opts);

/* Same, from bytes in memory; the bytes are copied, the caller may free them on return. */
lnx_status lnx_media_open_memory(lnx_media **out, const void *data, size_t size, const lnx_media_opts *opts);

/* Host I/O. read: fill up to size bytes, return the count, 0 at end of stream, < 0 on error.
 * seek: whence is SEEK_SET, SEEK_CUR or SEEK_END, or LNX_MEDIA_SEEK_SIZE (return the total size,
 * or -1 if unknown); return the new position or < 0 on error. Both run on the calling thread during
 * lnx_media_* calls, and user_data must stay valid until lnx_media_close. seek is required: the
 * sampler reads the index first and then seeks back to decode. The open call reads the whole stream
 * once (demuxing only), so an endless stream ends in LNX_E_LIMIT at opts.max_frames video frames;
 * a read callback that blocks blocks the call. */
enum { LNX_MEDIA_SEEK_SIZE = 0x10000 };
typedef int32_t (*lnx_media_read_fn)(void *user_data, uint8_t *buf, int32_t size);
typedef int64_t (*lnx_media_seek_fn)(void *user_data, int64_t offset, int32_t whence);
lnx_status lnx_media_open_callbacks(lnx_media **out, lnx_media_read_fn read_fn, lnx_media_seek_fn seek_fn,
                                    const lnx_media_opts *opts, void *user_data);

/* NULL-safe. */
void lnx_media_close(lnx_media *m);

/* Borrowed; valid until lnx_media_close. */
const lnx_media_info *lnx_media_get_info(const lnx_media *m);

/* Presentation time of frame `index` in seconds from the first frame (NAN when the source has no
 * usable timestamps or the index is out of range). */
double lnx_media_frame_time(const lnx_media *m, int64_t index);

/* --- choosing frames ------------------------------------------------------------------------ */

/* The reference's uniform choice: out[k] = floor(k * (T / n)) in double, k = 0..n-1, T = frame
 * count. out has n entries. LNX_E_INVALID when n <= 0 or n > T (the message gives both). */
lnx_status lnx_media_uniform_indices(const lnx_media *m, int32_t n, int64_t *out);

/* Frames at t = 0, 1/fps, 2/fps, ... up to the last frame's time, each mapped to the last frame
 * whose time is <= t; a frame is listed once (when fps exceeds the source's rate, consecutive
 * times that map to the same frame are merged). At most `max` entries go to out (which has room
 * for max); *count receives how many. LNX_E_INVALID for fps <= 0 or max <= 0; LNX_E_UNSUPPORTED
 * when the source has no timestamps. */
lnx_status lnx_media_fps_indices(const lnx_media *m, double fps, int32_t max, int64_t *out, int32_t *count);

/* For each host time (seconds from the first frame) the last frame whose time is <= it (times before
 * the first frame give frame 0, times after the last give the last). Order is kept; out has n
 * entries. LNX_E_INVALID for a NaN time; LNX_E_UNSUPPORTED without timestamps. */
lnx_status lnx_media_time_indices(const lnx_media *m, const double *times, int32_t n, int64_t *out);

/* --- reading frames -------------------------------------------------------------------------- */

/* Decodes the frames with the given indices (any order, repeats allowed; ascending is fastest) and
 * returns them in that order, seeking to the keyframe before each target and decoding forward,
 * reusing the decoder when the next target lies ahead in the same run. Frames are bit-identical to
 * lnx_media_read_sequential. *out is owned by the caller (lnx_frames_free); each frame carries its
 * index and time. With skip_corrupt, undecodable frames are left out (out->count < n).
 * LNX_E_INVALID for n <= 0 or an index outside [0, frame_count). */
lnx_status lnx_media_read(lnx_media *m, const int64_t *indices, int32_t n, lnx_frames **out);

/* Same result by decoding every frame from the start up to the last target (the reference's way;
 * for tests and benchmarks). */
lnx_status lnx_media_read_sequential(lnx_media *m, const int64_t *indices, int32_t n, lnx_frames **out);

/* Every frame, decoded from the start (tests; this holds the whole video in memory). */
lnx_status lnx_media_read_all(lnx_media *m, lnx_frames **out);

/* Pull API: lnx_media_begin stores a plan (the indices are copied and validated as for
 * lnx_media_read); each lnx_media_next returns the next up to max_batch frames of the plan in
 * order, so a host never holds more than one batch. Returns LNX_DONE with *out NULL when the plan
 * is exhausted. A new begin replaces the plan; any other read call in between ends it. */
lnx_status lnx_media_begin(lnx_media *m, const int64_t *indices, int32_t n);
lnx_status lnx_media_next(lnx_media *m, int32_t max_batch, lnx_frames **out);

/* --- host frames ----------------------------------------------------------------------------- */

enum { LNX_PIX_RGB24 = 0, LNX_PIX_YUV420P = 1, LNX_PIX_NV12 = 2 };

/* One frame from host pixels, copied (RGB24) or converted to RGB24 through swscale with the same
 * settings as decoded video (BT.601, limited range). planes/strides: RGB24 uses plane 0; YUV420P
 * planes 0-2 (Y, U, V); NV12 planes 0-1 (Y, interleaved UV). Strides are bytes per row, at least
 * the row size. YUV formats need even width and height. Index and time are left unknown. */
lnx_status lnx_frames_from_host(lnx_frames **out, int32_t pix_fmt, const uint8_t *const planes[3],
                                const int32_t strides[3], int32_t width, int32_t height);

#endif
