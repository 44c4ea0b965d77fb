/* A batch of decoded RGB24 frames of one size: the value the frame sampler produces and the
 * vision encoder consumes. */
#ifndef LNX_MEDIA_FRAMES_H
#define LNX_MEDIA_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "../base/status.h"

typedef struct lnx_frames {
    int32_t count;
    int32_t width;
    int32_t height;
    uint8_t *data;   /* count * height * width * 3 bytes, packed rows, no padding */
    int64_t *index;  /* per frame: 0-based index in decode order in the source, -1 if unknown */
    double *time;    /* per frame: presentation time in seconds, NAN if unknown */
} lnx_frames;

/* Allocates `count` frames of width x height (data uninitialised, index -1, time NAN).
 * Refuses sizes whose byte count overflows or exceeds `max_bytes` (0 = no limit) with LNX_E_LIMIT. */
lnx_status lnx_frames_alloc(lnx_frames **out, int32_t count, int32_t width, int32_t height, uint64_t max_bytes);
void lnx_frames_free(lnx_frames *f);

/* Pointer to frame i's first byte. */
static inline uint8_t *lnx_frame_ptr(const lnx_frames *f, int32_t i)
{
    return f->data + (size_t)i * (size_t)f->height * (size_t)f->width * 3u;
}

#endif
