/* Picture size from the header of a still image (PNG, BMP, WebP, JPEG), read without decoding,
 * so that a forged size is refused with LNX_E_LIMIT even when libav's probe refused to decode it. */
#include <string.h>

#include "media_internal.h"

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le24(const uint8_t *p)
{
    return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int jpeg_size(const uint8_t *d, size_t n, uint64_t *w, uint64_t *h)
{
    size_t i = 2;
    while (i + 9 < n) {
        if (d[i] != 0xff) {
            i++;
            continue;
        }
        uint8_t mk = d[i + 1];
        if (mk == 0xff || mk == 0x01 || (mk >= 0xd0 && mk <= 0xd8)) {
            i += mk == 0xff ? 1 : 2;
            continue;
        }
        if (mk >= 0xc0 && mk <= 0xcf && mk != 0xc4 && mk != 0xc8 && mk != 0xcc) {
            *h = be16(d + i + 5);
            *w = be16(d + i + 7);
            return 1;
        }
        i += 2 + be16(d + i + 2);
    }
    return 0;
}

int lnx_image_header_size(const uint8_t *d, size_t n, uint64_t *w, uint64_t *h)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 24 && !memcmp(d, png_sig, 8) && !memcmp(d + 12, "IHDR", 4)) {
        *w = be32(d + 16);
        *h = be32(d + 20);
        return 1;
    }
    if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
        uint32_t hs = le32(d + 14);
        if (hs == 12) {
            *w = le16(d + 18);
            *h = le16(d + 20);
        } else {
            int32_t sw = (int32_t)le32(d + 18), sh = (int32_t)le32(d + 22);
            *w = sw < 0 ? (uint64_t)(-(int64_t)sw) : (uint64_t)sw;
            *h = sh < 0 ? (uint64_t)(-(int64_t)sh) : (uint64_t)sh;
        }
        return 1;
    }
    if (n >= 30 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) {
        if (!memcmp(d + 12, "VP8X", 4)) {
            *w = (uint64_t)le24(d + 24) + 1;
            *h = (uint64_t)le24(d + 27) + 1;
            return 1;
        }
        if (!memcmp(d + 12, "VP8L", 4) && d[20] == 0x2f) {
            uint32_t b = le32(d + 21);
            *w = (b & 0x3fff) + 1;
            *h = ((b >> 14) & 0x3fff) + 1;
            return 1;
        }
        if (!memcmp(d + 12, "VP8 ", 4)) {
            *w = le16(d + 26) & 0x3fff;
            *h = le16(d + 28) & 0x3fff;
            return 1;
        }
        return 0;
    }
    if (n >= 4 && d[0] == 0xff && d[1] == 0xd8)
        return jpeg_size(d, n, w, h);
    return 0;
}
