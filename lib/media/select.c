/* Choosing frame indices: the reference's uniform spread, a frame rate, host timestamps. */
#include <math.h>

#include "media_internal.h"

lnx_status lnx_media_uniform_indices(const lnx_media *m, int32_t n, int64_t *out)
{
    if (!m || !out)
        return lnx_error(LNX_E_INVALID, "lnx_media_uniform_indices: NULL argument");
    int64_t total = m->nframes;
    if (n <= 0 || n > total)
        return lnx_error(LNX_E_INVALID, "%s: cannot sample %d frames uniformly from %lld frames", m->origin, (int)n,
                         (long long)total);
    /* np.arange(0, T, T / N).astype(int): k * step in double, truncated */
    double step = (double)total / (double)n;
    for (int32_t k = 0; k < n; k++)
        out[k] = (int64_t)floor((double)k * step);
    return LNX_OK;
}

/* Last frame whose time is <= t (0 when t precedes every frame). */
static int64_t frame_at(const lnx_media *m, double t)
{
    const double eps = 1e-9;
    int64_t lo = 0, hi = m->nframes; /* first frame with time > t */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (lnx_media_frame_time(m, mid) <= t + eps)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 ? lo - 1 : 0;
}

static lnx_status need_times(const lnx_media *m)
{
    if (isnan(lnx_media_frame_time(m, 0)))
        return lnx_error(LNX_E_UNSUPPORTED, "%s: the source has no frame timestamps or frame rate", m->origin);
    return LNX_OK;
}

lnx_status lnx_media_fps_indices(const lnx_media *m, double fps, int32_t max, int64_t *out, int32_t *count)
{
    if (!m || !out || !count)
        return lnx_error(LNX_E_INVALID, "lnx_media_fps_indices: NULL argument");
    *count = 0;
    if (!(fps > 0) || isinf(fps) || max <= 0)
        return lnx_error(LNX_E_INVALID, "%s: bad sampling rate %g fps or count %d", m->origin, fps, (int)max);
    lnx_status st = need_times(m);
    if (st)
        return st;
    double last = lnx_media_frame_time(m, m->nframes - 1);
    int64_t prev = -1;
    int32_t c = 0;
    /* j jumps to the first tick that can reach the next frame, so the loop runs at most about
     * twice per frame whatever the rate. */
    for (double j = 0; c < max;) {
        double t = j / fps;
        if (t > last + 1e-9)
            break;
        int64_t i = frame_at(m, t);
        if (i != prev)
            out[c++] = prev = i;
        if (i + 1 >= m->nframes)
            break;
        double jn = ceil(lnx_media_frame_time(m, i + 1) * fps - 1e-6);
        j = jn > j + 1 ? jn : j + 1;
    }
    *count = c;
    return LNX_OK;
}

lnx_status lnx_media_time_indices(const lnx_media *m, const double *times, int32_t n, int64_t *out)
{
    if (!m || !out || (!times && n > 0))
        return lnx_error(LNX_E_INVALID, "lnx_media_time_indices: NULL argument");
    if (n <= 0)
        return lnx_error(LNX_E_INVALID, "%s: %d timestamps", m->origin, (int)n);
    lnx_status st = need_times(m);
    if (st)
        return st;
    for (int32_t i = 0; i < n; i++) {
        if (isnan(times[i]))
            return lnx_error(LNX_E_INVALID, "%s: timestamp %d is NaN", m->origin, (int)i);
        out[i] = frame_at(m, times[i]);
    }
    return LNX_OK;
}
