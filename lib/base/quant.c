#include "quant.h"

#include <math.h>
#include <string.h>

#include "half.h"

int lnx_quant_fits(lnx_dtype dt, int64_t cols)
{
    if (!lnx_dtype_is_quant(dt))
        return 1;
    return cols > 0 && cols % LNX_QBLOCK == 0;
}

lnx_dtype lnx_quant_choose(lnx_dtype want, int64_t cols, lnx_dtype fallback)
{
    if (want == LNX_DT_Q4 && !lnx_quant_fits(LNX_DT_Q4, cols))
        want = LNX_DT_Q8;
    if (want == LNX_DT_Q8 && !lnx_quant_fits(LNX_DT_Q8, cols))
        want = fallback;
    return want;
}

static void put_half(uint8_t *p, float v)
{
    uint16_t h = lnx_f32_to_f16(v);
    memcpy(p, &h, 2);
}

int lnx_q4_head(const uint8_t *p, int64_t nb_left, float scale[8], float min[8])
{
    int nsub = nb_left < LNX_Q4_SUB ? (int)nb_left : LNX_Q4_SUB;
    float d = lnx_q_half(p), dmin = lnx_q_half(p + 2);
    uint8_t sc[8], mn[8];
    lnx_q4_unpack_scales(p, 0, sc);
    lnx_q4_unpack_scales(p, 1, mn);
    for (int j = 0; j < nsub; j++) {
        scale[j] = d * (float)sc[j];
        min[j] = dmin * (float)mn[j];
    }
    return nsub;
}

float lnx_q_half(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return lnx_f16_to_f32(h);
}

/* ---- Q8 ---- */

static void q8_block(const float *x, uint8_t *out)
{
    float amax = 0.0f;
    for (int i = 0; i < LNX_QBLOCK; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    /* the scale as stored (half), so that q is computed with the value dequantizing uses */
    float d = lnx_f16_to_f32(lnx_f32_to_f16(amax / 127.0f));
    put_half(out, d);
    float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < LNX_QBLOCK; i++) {
        /* to nearest, halves away from zero (no library call: this loop vectorizes) */
        float v = x[i] * id;
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        out[2 + i] = (uint8_t)(int8_t)(int)(v + (v < 0.0f ? -0.5f : 0.5f));
    }
}

/* ---- Q4 ---- */

static void put6(uint8_t *p, const uint8_t v[8])
{
    uint64_t bits = 0;
    for (int j = 0; j < 8; j++)
        bits |= (uint64_t)(v[j] & 63) << (6 * j);
    for (int i = 0; i < 6; i++)
        p[i] = (uint8_t)(bits >> (8 * i));
}

void lnx_q4_unpack_scales(const uint8_t *super, int which, uint8_t out[8])
{
    const uint8_t *p = super + 4 + 6 * which;
    uint64_t bits = 0;
    for (int i = 0; i < 6; i++)
        bits |= (uint64_t)p[i] << (8 * i);
    for (int j = 0; j < 8; j++)
        out[j] = (uint8_t)((bits >> (6 * j)) & 63);
}

/* The level of x for scale s (is = 1 / s) and minimum m: to nearest, halves up, in 0..15. */
static int q4_level(float x, float is, float m)
{
    float v = (x + m) * is;
    return v <= 0.0f ? 0 : v >= 15.0f ? 15 : (int)(v + 0.5f);
}

static float sub_sse(const float *x, float s, float m)
{
    float e = 0.0f, is = s > 0.0f ? 1.0f / s : 0.0f;
    for (int i = 0; i < LNX_QBLOCK; i++) {
        float d = s * (float)q4_level(x[i], is, m) - m - x[i];
        e += d * d;
    }
    return e;
}

/* Scale s and minimum m >= 0 of one sub-block, x ~ s q - m with q in 0..15: the range first,
 * then a few least-squares refits of (s, m) to the levels they give, keeping the best. */
static void q4_fit(const float *x, float *s_out, float *m_out)
{
    float lo = 0.0f, hi = 0.0f;
    for (int i = 0; i < LNX_QBLOCK; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    float s = (hi - lo) / 15.0f, m = -lo;
    float best = sub_sse(x, s, m);
    float bs = s, bm = m;
    for (int it = 0; it < 2 && s > 0.0f; it++) {
        double sq = 0, sqq = 0, sx = 0, sxq = 0;
        const float is = 1.0f / s;
        for (int i = 0; i < LNX_QBLOCK; i++) {
            int q = q4_level(x[i], is, m);
            sq += q;
            sqq += (double)q * q;
            sx += x[i];
            sxq += (double)x[i] * q;
        }
        double n = LNX_QBLOCK, det = n * sqq - sq * sq;
        if (det <= 0)
            break;
        /* x = s q - m: least squares in (s, -m) */
        double ns = (n * sxq - sq * sx) / det, nb = (sqq * sx - sq * sxq) / det;
        float cs = (float)ns, cm = (float)-nb;
        if (cm < 0.0f) {
            cm = 0.0f;
            cs = sqq > 0 ? (float)(sxq / sqq) : 0.0f;
        }
        if (cs <= 0.0f)
            break;
        float e = sub_sse(x, cs, cm);
        if (e >= best)
            break;
        best = e;
        bs = s = cs;
        bm = m = cm;
    }
    *s_out = bs;
    *m_out = bm;
}

/* nsub (1..8) sub-blocks of x into one (possibly short) super-block at out. */
static void q4_super(const float *x, int nsub, uint8_t *out)
{
    float s[8] = { 0 }, m[8] = { 0 }, smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < nsub; j++) {
        q4_fit(x + j * LNX_QBLOCK, &s[j], &m[j]);
        smax = fmaxf(smax, s[j]);
        mmax = fmaxf(mmax, m[j]);
    }
    float d = lnx_f16_to_f32(lnx_f32_to_f16(smax / 63.0f));
    float dmin = lnx_f16_to_f32(lnx_f32_to_f16(mmax / 63.0f));
    /* the 6-bit codes: the nearest ones and their neighbours, whichever pair fits the sub-block
     * best once quantized (the minimum's rounding, up to dmin / 2, is large next to the step of a
     * sub-block much narrower than the widest) */
    uint8_t sc[8] = { 0 }, mn[8] = { 0 };
    for (int j = 0; j < nsub; j++) {
        int a = d > 0.0f ? (int)nearbyintf(s[j] / d) : 0, b = dmin > 0.0f ? (int)nearbyintf(m[j] / dmin) : 0;
        float best = -1;
        for (int da = -1; da <= 1; da++)
            for (int db = -1; db <= 1; db++) {
                int ca = a + da, cb = b + db;
                if (ca < 0 || ca > 63 || cb < 0 || cb > 63 || (da && db))
                    continue;
                float e = sub_sse(x + j * LNX_QBLOCK, d * (float)ca, dmin * (float)cb);
                if (best < 0 || e < best) {
                    best = e;
                    sc[j] = (uint8_t)ca;
                    mn[j] = (uint8_t)cb;
                }
            }
    }
    put_half(out, d);
    put_half(out + 2, dmin);
    put6(out + 4, sc);
    put6(out + 10, mn);
    for (int j = 0; j < nsub; j++) {
        const float *xj = x + j * LNX_QBLOCK;
        float es = d * sc[j], em = dmin * mn[j], ies = es > 0.0f ? 1.0f / es : 0.0f;
        uint8_t *q = out + LNX_Q4_HEAD + 16 * j;
        for (int i = 0; i < 16; i++)
            q[i] = (uint8_t)(q4_level(xj[i], ies, em) | q4_level(xj[i + 16], ies, em) << 4);
    }
}

void lnx_quantize_row(lnx_dtype dt, const float *x, int64_t cols, void *out)
{
    uint8_t *o = out;
    int64_t nb = cols / LNX_QBLOCK;
    if (dt == LNX_DT_Q8) {
        for (int64_t b = 0; b < nb; b++)
            q8_block(x + b * LNX_QBLOCK, o + b * LNX_Q8_BYTES);
        return;
    }
    for (int64_t b = 0; b < nb; b += LNX_Q4_SUB) {
        int nsub = nb - b < LNX_Q4_SUB ? (int)(nb - b) : LNX_Q4_SUB;
        q4_super(x + b * LNX_QBLOCK, nsub, o);
        o += LNX_Q4_HEAD + 16 * nsub;
    }
}

void lnx_dequantize_row(lnx_dtype dt, const void *row, int64_t cols, float *out)
{
    const uint8_t *p = row;
    int64_t nb = cols / LNX_QBLOCK;
    if (!lnx_dtype_is_quant(dt)) {
        lnx_widen(dt, row, out, (size_t)cols);
        return;
    }
    if (dt == LNX_DT_Q8) {
        for (int64_t b = 0; b < nb; b++, p += LNX_Q8_BYTES) {
            float d = lnx_q_half(p);
            for (int i = 0; i < LNX_QBLOCK; i++)
                out[b * LNX_QBLOCK + i] = d * (float)(int8_t)p[2 + i];
        }
        return;
    }
    for (int64_t b = 0; b < nb; b += LNX_Q4_SUB) {
        float scale[8], min[8];
        int nsub = lnx_q4_head(p, nb - b, scale, min);
        for (int j = 0; j < nsub; j++) {
            const uint8_t *q = p + LNX_Q4_HEAD + 16 * j;
            float *o = out + (b + j) * LNX_QBLOCK, es = scale[j], em = min[j];
            for (int i = 0; i < 16; i++) {
                o[i] = es * (float)(q[i] & 15) - em;
                o[i + 16] = es * (float)(q[i] >> 4) - em;
            }
        }
        p += LNX_Q4_HEAD + 16 * nsub;
    }
}
