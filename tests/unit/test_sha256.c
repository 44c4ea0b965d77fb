/* SHA-256: the SHA-extensions kernel against the scalar oracle, and streaming in pieces against
 * the one-shot digest (the known-answer vectors are in test_embedding_cache). */
#include "../common/testutil.h"

#include <stdlib.h>

#include "base/sha256.h"

static void shani_matches_the_scalar_oracle(void **state)
{
    (void)state;
    lnx_sha256_blocks_fn fast = lnx_sha256_blocks_shani_fn();
    if (!fast)
        skip(); /* the CPU (or the build) has no SHA extensions */
    enum { MAX_BLOCKS = 37 };
    uint8_t *data = malloc(64 * MAX_BLOCKS + 1);
    assert_non_null(data);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < 64 * MAX_BLOCKS + 1; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    for (size_t n = 0; n <= MAX_BLOCKS; n++) {
        for (int misalign = 0; misalign < 2; misalign++) {
            uint32_t a[8], b[8];
            for (int k = 0; k < 8; k++)
                a[k] = b[k] = (uint32_t)(x >> (k * 4)) ^ (uint32_t)(n * 2654435761u + (unsigned)k);
            lnx_sha256_blocks_scalar(a, data + misalign, n);
            fast(b, data + misalign, n);
            assert_memory_equal(a, b, sizeof a);
        }
    }
    free(data);
}

static void pieces_hash_like_the_whole(void **state)
{
    (void)state;
    uint8_t buf[1000], whole[32], parts[32];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof buf; len += 37) {
        lnx_sha256_buffer(buf, len, whole);
        for (size_t step = 1; step < 130; step += 21) {
            lnx_sha256 s;
            lnx_sha256_init(&s);
            for (size_t off = 0; off < len; off += step)
                lnx_sha256_update(&s, buf + off, len - off < step ? len - off : step);
            lnx_sha256_final(&s, parts);
            assert_memory_equal(whole, parts, 32);
        }
    }
    char hex[65];
    lnx_hex(whole, 32, hex);
    assert_int_equal(strlen(hex), 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shani_matches_the_scalar_oracle),
        cmocka_unit_test(pieces_hash_like_the_whole),
    };
    return cmocka_run_group_tests_name("sha256", tests, NULL, NULL);
}
