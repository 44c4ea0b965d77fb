/* cache_bench: what an embedding-cache hit costs next to the encode it saves. Prints SHA-256
 * throughput (the scalar oracle and the SHA-extensions kernel, where the CPU has them) and the
 * best-of-N time to store and to read back + verify one entry of the size a 7B model's 32-frame
 * video gives (32 x 144 tokens x 4096 floats = 75.5 MB; the entry is shaped for the given model's
 * width, so any checkpoint, e.g. tests/data/tiny-a, will do).
 *   cache_bench --model DIR [--mb MEGABYTES] [--runs N] [--dir CACHE_DIR] */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/sha256.h"
#include "llavanext/llavanext.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double hash_rate(lnx_sha256_blocks_fn fn, const uint8_t *data, size_t blocks, int runs)
{
    double best = 1e30;
    for (int r = 0; r < runs; r++) {
        uint32_t h[8] = { 0 };
        double t0 = now();
        fn(h, data, blocks);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    return (double)blocks * 64 / best / 1e6;
}

int main(int argc, char **argv)
{
    const char *model_dir = NULL, *dir = NULL;
    double mb = 32.0 * 144 * 4096 * 4 / 1e6;
    int runs = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--model") == 0)
            model_dir = argv[i + 1];
        else if (strcmp(argv[i], "--mb") == 0)
            mb = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
    }
    if (!model_dir || mb <= 0 || runs < 1) {
        fprintf(stderr, "usage: cache_bench --model DIR [--mb MEGABYTES] [--runs N] [--dir CACHE_DIR]\n");
        return 2;
    }
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    llavanext_model *model = NULL;
    if (llavanext_model_load(&model, model_dir, &mp) != LLAVANEXT_OK) {
        fprintf(stderr, "cache_bench: %s\n", llavanext_last_error());
        return 1;
    }
    /* the model's text width: one frame's embeddings of the default pooling */
    int64_t width = 0;
    char *desc = NULL;
    if (llavanext_model_describe(&desc, model) == LLAVANEXT_OK) {
        json_t *d = json_loads(desc, 0, NULL);
        width = json_integer_value(json_object_get(json_object_get(d, "text"), "hidden_size"));
        json_decref(d);
    }
    llavanext_free(desc);
    int64_t tpf = llavanext_model_tokens_per_frame(model, 0);
    if (width <= 0 || tpf <= 0) {
        fprintf(stderr, "cache_bench: cannot read the model's width from its description\n");
        llavanext_model_free(model);
        return 1;
    }
    int64_t frames = (int64_t)(mb * 1e6 / 4 / (double)(tpf * width));
    frames = frames > 0 ? frames : 1;
    int64_t dims[3] = { frames, tpf, width };
    size_t n = (size_t)(frames * tpf * width);
    float *values = malloc(n * sizeof *values);
    if (!values)
        return 1;
    for (size_t i = 0; i < n; i++)
        values[i] = (float)((i * 2654435761u) % 1000) / 1000.0f;

    size_t blocks = n * sizeof *values / 64;
    printf("sha256 scalar: %.0f MB/s\n", hash_rate(lnx_sha256_blocks_scalar, (const uint8_t *)values, blocks, runs));
    if (lnx_sha256_blocks_shani_fn())
        printf("sha256 SHA extensions: %.0f MB/s\n",
               hash_rate(lnx_sha256_blocks_shani_fn(), (const uint8_t *)values, blocks, runs));
    else
        printf("sha256 SHA extensions: not available on this CPU\n");

    char tmpl[] = "/tmp/cache_bench.XXXXXX";
    if (!dir && !(dir = mkdtemp(tmpl)))
        return 1;
    llavanext_tensor *t = NULL;
    llavanext_embedding_cache *cache = NULL;
    int rc = 1;
    if (llavanext_tensor_create(&t, LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS, 3, dims, values, 0, 0) == LLAVANEXT_OK &&
        llavanext_embedding_cache_open(&cache, dir, NULL) == LLAVANEXT_OK) {
        llavanext_embedding_key key;
        llavanext_embedding_key_init(&key, sizeof key);
        key.frames = (int32_t)frames;
        double best_put = 1e30, best_get = 1e30;
        rc = 0;
        for (int r = 0; r < runs && rc == 0; r++) {
            double t0 = now();
            if (llavanext_embedding_cache_put(cache, model, &key, t) != LLAVANEXT_OK)
                rc = 1;
            double t1 = now();
            llavanext_tensor *back = NULL;
            if (llavanext_embedding_cache_get(&back, cache, model, &key) != LLAVANEXT_OK || !back)
                rc = 1;
            double t2 = now();
            llavanext_tensor_free(back);
            best_put = t1 - t0 < best_put ? t1 - t0 : best_put;
            best_get = t2 - t1 < best_get ? t2 - t1 : best_get;
        }
        if (rc == 0)
            printf("entry of %.1f MB (%lld x %lld x %lld floats): put %.1f ms, get (read + verify) %.1f ms, best of %d\n",
                   (double)(n * sizeof *values) / 1e6, (long long)frames, (long long)tpf, (long long)width,
                   best_put * 1e3, best_get * 1e3, runs);
    }
    if (rc)
        fprintf(stderr, "cache_bench: %s\n", llavanext_last_error());
    if (dir == tmpl) { /* our scratch directory: its entries, then itself */
        DIR *d = opendir(tmpl);
        struct dirent *de;
        char path[512];
        while (d && (de = readdir(d)))
            if (de->d_name[0] != '.' || strncmp(de->d_name, ".tmp-", 5) == 0) {
                snprintf(path, sizeof path, "%s/%s", tmpl, de->d_name);
                unlink(path);
            }
        if (d)
            closedir(d);
        rmdir(tmpl);
    }
    llavanext_embedding_cache_free(cache);
    llavanext_tensor_free(t);
    llavanext_model_free(model);
    free(values);
    return rc;
}
