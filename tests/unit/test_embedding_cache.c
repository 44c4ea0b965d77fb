/* The persistent embedding cache, through the public API: keys, round trips, damaged entries,
 * LRU eviction under the size cap, and concurrent writers. */
#include "../common/testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "llavanext/llavanext.h"

static llavanext_model *model;
static llavanext_tensor *emb2, *emb3; /* real video embeddings of 2 and 3 frames */
static uint8_t media_hash[32];

static llavanext_tensor *encode(const char *video, int32_t frames)
{
    llavanext_frame_sampler *s = NULL;
    llavanext_vision_encoder *e = NULL;
    llavanext_pooler *p = NULL;
    llavanext_frames *f = NULL;
    llavanext_tensor *feat = NULL, *out = NULL;
    assert_int_equal(llavanext_frame_sampler_open(&s, video, NULL), LLAVANEXT_OK);
    assert_int_equal(llavanext_frame_sampler_uniform(&f, s, frames), LLAVANEXT_OK);
    assert_int_equal(llavanext_vision_encoder_create(&e, model, NULL), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_create(&p, model, NULL), LLAVANEXT_OK);
    assert_int_equal(llavanext_vision_encoder_encode_video(&feat, e, f), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_apply(&out, p, feat), LLAVANEXT_OK);
    llavanext_tensor_free(feat);
    llavanext_frames_free(f);
    llavanext_pooler_free(p);
    llavanext_vision_encoder_free(e);
    llavanext_frame_sampler_free(s);
    return out;
}

static int setup(void **state)
{
    (void)state;
    if (llavanext_model_load(&model, tu_data("tiny-a"), NULL) != LLAVANEXT_OK)
        return -1;
    const char *video = tu_data("media/clip_h264_160x120_97f.mp4");
    emb2 = encode(video, 2);
    emb3 = encode(video, 3);
    return llavanext_media_hash_file(media_hash, video) == LLAVANEXT_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    llavanext_tensor_free(emb2);
    llavanext_tensor_free(emb3);
    llavanext_model_free(model);
    return 0;
}

static llavanext_embedding_key uniform_key(int32_t frames)
{
    llavanext_embedding_key k;
    llavanext_embedding_key_init(&k, sizeof k);
    memcpy(k.media_sha256, media_hash, 32);
    k.sampling = LLAVANEXT_CACHE_UNIFORM;
    k.frames = frames;
    return k;
}

static llavanext_embedding_cache *open_cache(const char *dir, int64_t max_bytes)
{
    llavanext_embedding_cache_params p;
    llavanext_embedding_cache_params_init(&p, sizeof p);
    p.max_bytes = max_bytes;
    llavanext_embedding_cache *c = NULL;
    assert_int_equal(llavanext_embedding_cache_open(&c, dir, &p), LLAVANEXT_OK);
    return c;
}

static void assert_same_tensor(const llavanext_tensor *a, const llavanext_tensor *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(llavanext_tensor_kind(a), llavanext_tensor_kind(b));
    assert_int_equal(llavanext_tensor_ndim(a), llavanext_tensor_ndim(b));
    for (int32_t d = 0; d < llavanext_tensor_ndim(a); d++)
        assert_int_equal(llavanext_tensor_dim(a, d), llavanext_tensor_dim(b, d));
    assert_memory_equal(llavanext_tensor_data(a), llavanext_tensor_data(b),
                        sizeof(float) * (size_t)llavanext_tensor_numel(a));
}

static llavanext_embedding_cache_stats stats_of(llavanext_embedding_cache *c)
{
    llavanext_embedding_cache_stats s;
    s.struct_size = sizeof s;
    assert_int_equal(llavanext_embedding_cache_stats_get(&s, c), LLAVANEXT_OK);
    return s;
}

/* The one entry file of a directory holding exactly one. */
static void only_entry(const char *dir, char *path, size_t size)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".safetensors")) {
            snprintf(path, size, "%s/%s", dir, de->d_name);
            n++;
        }
    closedir(d);
    assert_int_equal(n, 1);
}

static void sha256_matches_known_digests(void **state)
{
    (void)state;
    static const uint8_t abc[32] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                     0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                     0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };
    static const uint8_t empty[32] = { 0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
                                       0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
                                       0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55 };
    /* two blocks: the 448-bit message of FIPS 180-2's second example */
    static const uint8_t two[32] = { 0x24, 0x8d, 0x6a, 0x61, 0xd2, 0x06, 0x38, 0xb8, 0xe5, 0xc0, 0x26,
                                     0x93, 0x0c, 0x3e, 0x60, 0x39, 0xa3, 0x3c, 0xe4, 0x59, 0x64, 0xff,
                                     0x21, 0x67, 0xf6, 0xec, 0xed, 0xd4, 0x19, 0xdb, 0x06, 0xc1 };
    uint8_t out[32];
    assert_int_equal(llavanext_media_hash_memory(out, "abc", 3), LLAVANEXT_OK);
    assert_memory_equal(out, abc, 32);
    assert_int_equal(llavanext_media_hash_memory(out, "", 0), LLAVANEXT_OK);
    assert_memory_equal(out, empty, 32);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(llavanext_media_hash_memory(out, m, strlen(m)), LLAVANEXT_OK);
    assert_memory_equal(out, two, 32);
    /* the file hash reads in blocks: equal to the one-shot hash of the bytes */
    size_t len;
    char *bytes = tu_read_file(tu_data("media/clip_vp9_128x96_60f.webm"), &len);
    assert_non_null(bytes);
    uint8_t a[32], b[32];
    assert_int_equal(llavanext_media_hash_memory(a, bytes, len), LLAVANEXT_OK);
    assert_int_equal(llavanext_media_hash_file(b, tu_data("media/clip_vp9_128x96_60f.webm")), LLAVANEXT_OK);
    assert_memory_equal(a, b, 32);
    free(bytes);
    assert_int_equal(llavanext_media_hash_file(b, "/nonexistent/video.mp4"), LLAVANEXT_E_IO);
}

static void put_then_get_returns_the_same_embeddings(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    llavanext_embedding_cache *c = open_cache(dir, 0);
    llavanext_embedding_key k = uniform_key(2);
    llavanext_tensor *t = (llavanext_tensor *)1;
    assert_int_equal(llavanext_embedding_cache_get(&t, c, model, &k), LLAVANEXT_OK);
    assert_null(t);
    assert_int_equal(llavanext_embedding_cache_put(c, model, &k, emb2), LLAVANEXT_OK);
    assert_int_equal(llavanext_embedding_cache_get(&t, c, model, &k), LLAVANEXT_OK);
    assert_same_tensor(t, emb2);
    llavanext_tensor_free(t);
    /* a second handle on the directory (another process) sees it too */
    llavanext_embedding_cache *c2 = open_cache(dir, 0);
    assert_int_equal(llavanext_embedding_cache_get(&t, c2, model, &k), LLAVANEXT_OK);
    assert_same_tensor(t, emb2);
    llavanext_tensor_free(t);
    llavanext_embedding_cache_stats s = stats_of(c);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.writes, 1);
    assert_int_equal(s.corrupt, 0);
    assert_int_equal(s.entries, 1);
    assert_true(s.bytes > (int64_t)(sizeof(float) * (size_t)llavanext_tensor_numel(emb2)));
    llavanext_embedding_cache_free(c2);
    llavanext_embedding_cache_free(c);
    tu_rmtree(dir);
    free(dir);
}

static int is_hit(llavanext_embedding_cache *c, const llavanext_model *m, const llavanext_embedding_key *k)
{
    llavanext_tensor *t = NULL;
    assert_int_equal(llavanext_embedding_cache_get(&t, c, m, k), LLAVANEXT_OK);
    int hit = t != NULL;
    llavanext_tensor_free(t);
    return hit;
}

static void every_key_field_and_the_model_select_the_entry(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    llavanext_embedding_cache *c = open_cache(dir, 0);
    llavanext_embedding_key k = uniform_key(2);
    assert_int_equal(llavanext_embedding_cache_put(c, model, &k, emb2), LLAVANEXT_OK);
    assert_true(is_hit(c, model, &k));
    /* the config's stride (2) and mode (average) written out resolve to the same entry */
    llavanext_embedding_key same = k;
    same.pool_stride = 2;
    same.pool_mode = LLAVANEXT_POOL_AVERAGE;
    assert_true(is_hit(c, model, &same));
    llavanext_embedding_key other = k;
    other.frames = 3;
    assert_false(is_hit(c, model, &other));
    other = k;
    other.media_sha256[31] ^= 1;
    assert_false(is_hit(c, model, &other));
    other = k;
    other.pool_stride = 1;
    assert_false(is_hit(c, model, &other));
    other = k;
    other.pool_mode = LLAVANEXT_POOL_MAX;
    assert_false(is_hit(c, model, &other));
    other = k;
    other.raw_orientation = 1;
    assert_false(is_hit(c, model, &other));
    other = k;
    other.sampling = LLAVANEXT_CACHE_FPS;
    other.fps = 1.0;
    assert_false(is_hit(c, model, &other));
    /* another checkpoint (different weights and sizes) never sees tiny-a's entry */
    llavanext_model *b = NULL;
    assert_int_equal(llavanext_model_load(&b, tu_data("tiny-b"), NULL), LLAVANEXT_OK);
    assert_false(is_hit(c, b, &k));
    llavanext_model_free(b);
    /* the same checkpoint loaded again (read instead of mmap) does */
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.load_mode = LLAVANEXT_LOAD_READ;
    llavanext_model *again = NULL;
    assert_int_equal(llavanext_model_load(&again, tu_data("tiny-a"), &mp), LLAVANEXT_OK);
    assert_true(is_hit(c, again, &k));
    llavanext_model_free(again);
    llavanext_embedding_cache_free(c);
    tu_rmtree(dir);
    free(dir);
}

static void damaged_entries_are_deleted_and_never_returned(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    llavanext_embedding_cache *c = open_cache(dir, 0);
    llavanext_embedding_key k = uniform_key(2);
    char path[4096];
    size_t len;
    for (int damage = 0; damage < 5; damage++) {
        assert_int_equal(llavanext_embedding_cache_put(c, model, &k, emb2), LLAVANEXT_OK);
        only_entry(dir, path, sizeof path);
        char *bytes = tu_read_file(path, &len);
        assert_non_null(bytes);
        switch (damage) {
        case 0: bytes[len - 5] ^= 0x40; break;              /* one value changed */
        case 1: len -= 4; break;                            /* truncated */
        case 2: bytes[12] = '!'; break;                     /* header JSON broken */
        case 3: memset(bytes, 0xff, 8); break;              /* header length absurd */
        case 4: len = 3; break;                             /* shorter than the length field */
        }
        assert_int_equal(tu_write_file(path, bytes, len), 0);
        free(bytes);
        assert_false(is_hit(c, model, &k));
        assert_int_equal(access(path, F_OK), -1); /* removed */
    }
    /* a valid entry of another key copied into this key's place is refused too */
    llavanext_embedding_key k3 = uniform_key(3);
    assert_int_equal(llavanext_embedding_cache_put(c, model, &k3, emb3), LLAVANEXT_OK);
    char p3[4096];
    only_entry(dir, p3, sizeof p3);
    char *bytes3 = tu_read_file(p3, &len);
    assert_non_null(bytes3);
    unlink(p3);
    assert_int_equal(llavanext_embedding_cache_put(c, model, &k, emb2), LLAVANEXT_OK);
    only_entry(dir, path, sizeof path);
    assert_int_equal(tu_write_file(path, bytes3, len), 0);
    free(bytes3);
    assert_false(is_hit(c, model, &k));
    llavanext_embedding_cache_stats s = stats_of(c);
    assert_int_equal(s.corrupt, 6);
    /* recomputed and stored again, it is a hit */
    assert_int_equal(llavanext_embedding_cache_put(c, model, &k, emb2), LLAVANEXT_OK);
    assert_true(is_hit(c, model, &k));
    llavanext_embedding_cache_free(c);
    tu_rmtree(dir);
    free(dir);
}

static void least_recently_used_entries_go_first(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    /* measure one entry, then cap the cache at two and a half of them */
    llavanext_embedding_cache *probe = open_cache(dir, 0);
    llavanext_embedding_key k1 = uniform_key(2), k2 = uniform_key(2), k3 = uniform_key(2);
    k2.media_sha256[0] ^= 1;
    k3.media_sha256[0] ^= 2;
    assert_int_equal(llavanext_embedding_cache_put(probe, model, &k1, emb2), LLAVANEXT_OK);
    int64_t one = stats_of(probe).bytes;
    llavanext_embedding_cache_free(probe);
    llavanext_embedding_cache *c = open_cache(dir, one * 5 / 2);
    const struct timespec pause = { 0, 20 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    assert_int_equal(llavanext_embedding_cache_put(c, model, &k2, emb2), LLAVANEXT_OK);
    nanosleep(&pause, NULL);
    assert_true(is_hit(c, model, &k1)); /* k1 is now more recent than k2 */
    nanosleep(&pause, NULL);
    assert_int_equal(llavanext_embedding_cache_put(c, model, &k3, emb2), LLAVANEXT_OK);
    llavanext_embedding_cache_stats s = stats_of(c);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.evictions, 1);
    assert_true(s.bytes <= one * 5 / 2);
    assert_true(is_hit(c, model, &k1));
    assert_false(is_hit(c, model, &k2));
    assert_true(is_hit(c, model, &k3));
    /* an entry larger than the whole cap is refused */
    llavanext_embedding_cache *tiny = open_cache(dir, 64);
    assert_int_equal(llavanext_embedding_cache_put(tiny, model, &k1, emb2), LLAVANEXT_E_LIMIT);
    llavanext_embedding_cache_free(tiny);
    llavanext_embedding_cache_free(c);
    tu_rmtree(dir);
    free(dir);
}

typedef struct writer_arg {
    llavanext_embedding_cache *c;
    int id;
    int bad; /* a get returned something that is not what was put */
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    for (int i = 0; i < 12; i++) {
        llavanext_embedding_key k = uniform_key(2);
        k.media_sha256[0] = (uint8_t)(i % 3); /* three keys shared by every thread */
        if (llavanext_embedding_cache_put(a->c, model, &k, emb2) != LLAVANEXT_OK)
            a->bad++;
        llavanext_tensor *t = NULL;
        if (llavanext_embedding_cache_get(&t, a->c, model, &k) != LLAVANEXT_OK)
            a->bad++;
        if (t && memcmp(llavanext_tensor_data(t), llavanext_tensor_data(emb2),
                        sizeof(float) * (size_t)llavanext_tensor_numel(emb2)) != 0)
            a->bad++;
        llavanext_tensor_free(t);
    }
    return NULL;
}

static void concurrent_writers_never_expose_a_partial_entry(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    enum { N = 4 };
    llavanext_embedding_cache *caches[2] = { open_cache(dir, 0), open_cache(dir, 0) };
    pthread_t th[N];
    writer_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (writer_arg){ caches[i % 2], i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
    }
    for (int i = 0; i < 2; i++) {
        llavanext_embedding_cache_stats s = stats_of(caches[i]);
        assert_int_equal(s.corrupt, 0);
        assert_int_equal(s.entries, 3);
        llavanext_embedding_cache_free(caches[i]);
    }
    /* no temporary file is left behind */
    DIR *d = opendir(dir);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d)))
        files += de->d_name[0] != '.' || strncmp(de->d_name, ".tmp-", 5) == 0;
    closedir(d);
    assert_int_equal(files, 3);
    tu_rmtree(dir);
    free(dir);
}

static void bad_arguments_are_errors(void **state)
{
    (void)state;
    char *dir = tu_tempdir();
    llavanext_embedding_cache *c = open_cache(dir, 0);
    llavanext_embedding_key k = uniform_key(2);
    llavanext_tensor *t = NULL;
    assert_int_equal(llavanext_embedding_cache_get(&t, NULL, model, &k), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_int_equal(llavanext_embedding_cache_get(&t, c, NULL, &k), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_int_equal(llavanext_embedding_cache_get(&t, c, model, NULL), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_int_equal(llavanext_embedding_cache_put(c, model, &k, NULL), LLAVANEXT_E_INVALID_ARGUMENT);
    llavanext_embedding_key bad = k;
    bad.frames = 0;
    assert_int_equal(llavanext_embedding_cache_get(&t, c, model, &bad), LLAVANEXT_E_INVALID_ARGUMENT);
    bad = k;
    bad.sampling = 7;
    assert_int_equal(llavanext_embedding_cache_get(&t, c, model, &bad), LLAVANEXT_E_INVALID_ARGUMENT);
    bad = k;
    bad.sampling = LLAVANEXT_CACHE_FPS;
    bad.fps = -1;
    assert_int_equal(llavanext_embedding_cache_get(&t, c, model, &bad), LLAVANEXT_E_INVALID_ARGUMENT);
    /* a video key with image embeddings (wrong kind) */
    bad = k;
    bad.sampling = LLAVANEXT_CACHE_IMAGE;
    bad.frames = 0;
    assert_int_equal(llavanext_embedding_cache_put(c, model, &bad, emb2), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_string_contains(llavanext_last_error(), "IMAGE_EMBEDDINGS");
    /* the handle keeps the message of its last failed call too */
    char msg[256];
    assert_true(llavanext_embedding_cache_last_error(c, msg, sizeof msg) > 0);
    assert_string_contains(msg, "IMAGE_EMBEDDINGS");
    assert_int_equal(llavanext_embedding_cache_last_error(NULL, msg, sizeof msg), 0);
    /* a model without weights cannot be fingerprinted */
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.load_mode = LLAVANEXT_LOAD_NO_WEIGHTS;
    llavanext_model *nw = NULL;
    assert_int_equal(llavanext_model_load(&nw, tu_data("tiny-a"), &mp), LLAVANEXT_OK);
    assert_int_equal(llavanext_embedding_cache_get(&t, c, nw, &k), LLAVANEXT_E_STATE);
    llavanext_model_free(nw);
    /* parameters and the directory */
    llavanext_embedding_cache_params p;
    llavanext_embedding_cache_params_init(&p, sizeof p);
    p.max_bytes = -1;
    llavanext_embedding_cache *c2 = NULL;
    assert_int_equal(llavanext_embedding_cache_open(&c2, dir, &p), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(c2);
    assert_int_equal(llavanext_embedding_cache_open(&c2, "/nonexistent/parent/cache", NULL), LLAVANEXT_E_IO);
    char file[4200];
    snprintf(file, sizeof file, "%s/plain-file", dir);
    assert_int_equal(tu_write_file(file, "x", 1), 0);
    assert_int_equal(llavanext_embedding_cache_open(&c2, file, NULL), LLAVANEXT_E_IO);
    assert_null(c2);
    llavanext_embedding_cache_free(NULL);
    llavanext_embedding_cache_free(c);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_matches_known_digests),
        cmocka_unit_test(put_then_get_returns_the_same_embeddings),
        cmocka_unit_test(every_key_field_and_the_model_select_the_entry),
        cmocka_unit_test(damaged_entries_are_deleted_and_never_returned),
        cmocka_unit_test(least_recently_used_entries_go_first),
        cmocka_unit_test(concurrent_writers_never_expose_a_partial_entry),
        cmocka_unit_test(bad_arguments_are_errors),
    };
    return cmocka_run_group_tests_name("embedding_cache", tests, setup, teardown);
}
