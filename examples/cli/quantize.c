/* llavanext-cli quantize: writes a checkpoint directory with its weights converted (q8, q4 or
 * bf16), in the Hugging Face layout (config, tokenizer, templates copied), the converted tensors
 * in one model.safetensors that llavanext_model_load maps with no further work. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "io/quantize.h"
#include "io/safetensors.h"

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    int ok = in && out;
    char buf[1 << 16];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in);
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "llavanext-cli: copying %s to %s: %s\n", from, to, strerror(errno));
    return ok;
}

/* Every regular file of the checkpoint but its weights (config, tokenizer, templates, ...). */
static int copy_side_files(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    if (!d) {
        fprintf(stderr, "llavanext-cli: %s: %s\n", src, strerror(errno));
        return 0;
    }
    int ok = 1;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", src, e->d_name);
        if (!is_file(from) || ends_with(e->d_name, ".safetensors") || strcmp(e->d_name, "model.safetensors.index.json") == 0)
            continue;
        snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
        ok = copy_file(from, to);
    }
    closedir(d);
    return ok;
}

static int on_progress(int64_t done, int64_t total, void *user_data)
{
    (void)user_data;
    cli_progress(LLAVANEXT_STAGE_LOAD, done, total, NULL);
    return 0;
}

int cli_parse_weights(const char *v, int32_t *out)
{
    static const struct {
        const char *name;
        int32_t value;
    } names[] = { { "stored", LLAVANEXT_WEIGHTS_STORED }, { "bf16", LLAVANEXT_WEIGHTS_BF16 },
                  { "q8", LLAVANEXT_WEIGHTS_Q8 }, { "q4", LLAVANEXT_WEIGHTS_Q4 } };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(v, names[i].name) == 0) {
            *out = names[i].value;
            return 1;
        }
    return 0;
}

int cli_cmd_quantize(int argc, char **argv)
{
    const char *model = NULL, *out = NULL;
    int32_t weights = -1, threads = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--model") == 0 || strcmp(a, "--out") == 0 || strcmp(a, "--weights") == 0 ||
            strcmp(a, "--threads") == 0) {
            if (!v)
                return cli_usage_error("%s needs a value", a);
            i++;
            if (strcmp(a, "--model") == 0)
                model = v;
            else if (strcmp(a, "--out") == 0)
                out = v;
            else if (strcmp(a, "--weights") == 0) {
                if (!cli_parse_weights(v, &weights) || weights == LLAVANEXT_WEIGHTS_STORED)
                    return cli_usage_error("--weights: '%s' is not q8, q4 or bf16", v);
            } else {
                char *end;
                long n = strtol(v, &end, 10);
                if (*end || n < 1 || n > 1024)
                    return cli_usage_error("--threads: '%s' must be 1 to 1024", v);
                threads = (int32_t)n;
            }
        } else {
            return cli_usage_error("quantize: unknown option '%s'", a);
        }
    }
    if (!model || !out || weights < 0)
        return cli_usage_error("quantize needs --model DIR --out DIR --weights q8|q4|bf16");
    char path[4096], dst[4096];
    snprintf(dst, sizeof dst, "%s/model.safetensors", out);
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "llavanext-cli: %s: %s\n", out, strerror(errno));
        return CLI_FAIL;
    }
    char rin[4096], rout[4096];
    if (realpath(model, rin) && realpath(out, rout) && strcmp(rin, rout) == 0)
        return cli_usage_error("--out must not be the --model directory");
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    char idx[4096];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", out);
    if (is_file(path) || is_file(idx)) {
        fprintf(stderr, "llavanext-cli: %s already holds a checkpoint; choose an empty directory\n", out);
        return CLI_FAIL;
    }
    lnx_st *st = NULL;
    lnx_status rc;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", model);
    if (is_file(path)) {
        rc = lnx_st_open_index(&st, path, LNX_ST_MMAP);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", model);
        rc = lnx_st_open(&st, path, LNX_ST_MMAP);
    }
    if (rc != LNX_OK)
        return cli_lib_error("reading the checkpoint", rc);
    lnx_pool *pool = NULL;
    if ((rc = lnx_pool_create(&pool, threads)) != LNX_OK) {
        lnx_st_close(st);
        return cli_lib_error("starting threads", rc);
    }
    double t0 = cli_now();
    rc = lnx_quantize_checkpoint(st, weights, dst, pool, on_progress, NULL);
    cli_progress_done();
    lnx_pool_free(pool);
    uint64_t in_bytes = lnx_st_data_bytes(st);
    lnx_st_close(st);
    if (rc != LNX_OK)
        return cli_lib_error("writing the quantized checkpoint", rc);
    if (!copy_side_files(model, out))
        return CLI_FAIL;
    /* check that it loads as written */
    llavanext_model *m = cli_load_model(out, LLAVANEXT_LOAD_MMAP);
    if (!m)
        return CLI_FAIL;
    llavanext_model_free(m);
    struct stat sb;
    stat(dst, &sb);
    fprintf(stderr, "wrote %s (%s): %.2f GB of weights from %.2f GB in %.1f s\n", out, lnx_weights_name(weights),
            (double)sb.st_size / 1e9, (double)in_bytes / 1e9, cli_now() - t0);
    return CLI_OK;
}
