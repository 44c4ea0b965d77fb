/* SHA-256 (FIPS 180-4): content hashes for the embedding cache's keys and integrity checks. */
#ifndef LNX_BASE_SHA256_H
#define LNX_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct lnx_sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[64];
    size_t fill;    /* bytes waiting in block */
} lnx_sha256;

void lnx_sha256_init(lnx_sha256 *s);
void lnx_sha256_update(lnx_sha256 *s, const void *data, size_t len);
void lnx_sha256_final(lnx_sha256 *s, uint8_t out[32]);

/* One-shot digest of a buffer. */
void lnx_sha256_buffer(const void *data, size_t len, uint8_t out[32]);

/* The compression function over `n` 64-byte blocks: the scalar oracle, and the x86 SHA
 * extensions' version (NULL where the build or the CPU has none: lnx_sha256_blocks_shani_fn()).
 * lnx_sha256_update picks the fast one at run time. */
typedef void (*lnx_sha256_blocks_fn)(uint32_t h[8], const uint8_t *p, size_t n);
void lnx_sha256_blocks_scalar(uint32_t h[8], const uint8_t *p, size_t n);
lnx_sha256_blocks_fn lnx_sha256_blocks_shani_fn(void);

/* Lower-case hex of `n` bytes into out (2n + 1 bytes with the NUL). */
void lnx_hex(const uint8_t *bytes, size_t n, char *out);

#endif
