/* llavanext-server: options, model and cache, slots, HTTP, and a clean stop on SIGINT/SIGTERM. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "server.h"

static const char usage[] =
    "usage: llavanext-server --model DIR [options]\n"
    "\n"
    "An OpenAI-compatible chat-completions server (POST /v1/chat/completions, GET /v1/models,\n"
    "GET /health, GET /metrics) for LLaVA-NeXT-Video checkpoints. See docs/server.md.\n"
    "\n"
    "  --model DIR            Hugging Face checkpoint directory (required)\n"
    "  --host ADDR            numeric address to listen on (default 127.0.0.1; only the local\n"
    "                         machine can connect unless you change it)\n"
    "  --port N               TCP port (default 8080; 0 = any free port, printed at start)\n"
    "  --slots N              requests run at once, each with its own generator (default 1)\n"
    "  --threads N            compute threads per slot (default: CPUs / slots)\n"
    "  --max-queue N          requests that may wait for a slot; more get 503 (default 16)\n"
    "  --media-root DIR       allow file:// URLs and paths under DIR (may repeat; default none)\n"
    "  --cache-dir DIR        keep video and image embeddings in DIR (embedding cache)\n"
    "  --cache-max-bytes N    size cap of the cache directory (default 4 GiB)\n"
    "  --api-key KEY          require 'Authorization: Bearer KEY' (also read from\n"
    "                         LLAVANEXT_API_KEY); /health stays open\n"
    "  --max-body-bytes N     largest request body (default 64 MiB)\n"
    "  --max-media-bytes N    largest image or video, decoded (default 48 MiB)\n"
    "  --max-frames N         most frames sampled from one video (default 64)\n"
    "  --max-tokens N         largest max_tokens a request may ask for (default 4096)\n"
    "  --load read|mmap       how to load the weights (default mmap)\n"
    "  --help\n";

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "llavanext-server: %s%s%s\n(see llavanext-server --help)\n", msg, arg ? ": " : "", arg ? arg : "");
    return 2;
}

static int parse_i64(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

static int parse_args(srv_config *c, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8080;
    c->slots = 1;
    c->max_queue = 16;
    c->max_body_bytes = 64ll << 20;
    c->max_media_bytes = 48ll << 20;
    c->max_frames = 64;
    c->max_tokens = 4096;
    c->api_key = getenv("LLAVANEXT_API_KEY");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (!v)
            return usage_error("option needs a value (or is unknown)", a);
        i++;
        if (strcmp(a, "--model") == 0)
            c->model_dir = v;
        else if (strcmp(a, "--host") == 0)
            c->host = v;
        else if (strcmp(a, "--port") == 0 && parse_i64(v, 0, 65535, &n))
            c->port = (int)n;
        else if (strcmp(a, "--slots") == 0 && parse_i64(v, 1, 256, &n))
            c->slots = (int)n;
        else if (strcmp(a, "--threads") == 0 && parse_i64(v, 1, 1024, &n))
            c->threads = (int)n;
        else if (strcmp(a, "--max-queue") == 0 && parse_i64(v, 0, 100000, &n))
            c->max_queue = (int)n;
        else if (strcmp(a, "--media-root") == 0) {
            if (c->n_roots == SRV_MAX_ROOTS)
                return usage_error("too many --media-root options", v);
            char *real = realpath(v, NULL);
            if (!real)
                return usage_error("--media-root does not exist", v);
            c->roots[c->n_roots++] = real;
        } else if (strcmp(a, "--cache-dir") == 0)
            c->cache_dir = v;
        else if (strcmp(a, "--cache-max-bytes") == 0 && parse_i64(v, 1, LLONG_MAX, &n))
            c->cache_max_bytes = n;
        else if (strcmp(a, "--api-key") == 0 && *v)
            c->api_key = v;
        else if (strcmp(a, "--max-body-bytes") == 0 && parse_i64(v, 1024, 1ll << 40, &n))
            c->max_body_bytes = n;
        else if (strcmp(a, "--max-media-bytes") == 0 && parse_i64(v, 1, 1ll << 40, &n))
            c->max_media_bytes = n;
        else if (strcmp(a, "--max-frames") == 0 && parse_i64(v, 1, 8192, &n))
            c->max_frames = (int)n;
        else if (strcmp(a, "--max-tokens") == 0 && parse_i64(v, 1, 1 << 24, &n))
            c->max_tokens = (int)n;
        else if (strcmp(a, "--load") == 0 && (strcmp(v, "read") == 0 || strcmp(v, "mmap") == 0))
            c->load_read = strcmp(v, "read") == 0;
        else
            return usage_error("unknown option or bad value", a);
    }
    if (!c->model_dir)
        return usage_error("--model DIR is required", NULL);
    if (c->api_key && !*c->api_key)
        c->api_key = NULL;
    if (c->threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = cpus > c->slots ? (int)(cpus / c->slots) : 1;
    }
    /* the model's id: the checkpoint directory's name */
    char real[PATH_MAX];
    const char *dir = realpath(c->model_dir, real) ? real : c->model_dir;
    const char *base = strrchr(dir, '/');
    snprintf(c->model_id, sizeof c->model_id, "%s", base && base[1] ? base + 1 : dir);
    return 0;
}

int main(int argc, char **argv)
{
    srv_config cfg;
    int rc = parse_args(&cfg, argc, argv);
    if (rc)
        return rc;
    av_log_set_level(AV_LOG_QUIET); /* undecodable uploads are answered with 400, not logged by FFmpeg */
    /* every thread started from here on inherits the blocked signals; main waits for them */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.load_mode = cfg.load_read ? LLAVANEXT_LOAD_READ : LLAVANEXT_LOAD_MMAP;
    llavanext_model *model = NULL;
    llavanext_status st = llavanext_model_load(&model, cfg.model_dir, &mp);
    if (st != LLAVANEXT_OK) {
        fprintf(stderr, "llavanext-server: %s: %s: %s\n", cfg.model_dir, llavanext_status_string(st), llavanext_last_error());
        return 1;
    }
    llavanext_embedding_cache *cache = NULL;
    if (cfg.cache_dir) {
        llavanext_embedding_cache_params cp;
        llavanext_embedding_cache_params_init(&cp, sizeof cp);
        cp.max_bytes = cfg.cache_max_bytes;
        st = llavanext_embedding_cache_open(&cache, cfg.cache_dir, &cp);
        if (st != LLAVANEXT_OK) {
            fprintf(stderr, "llavanext-server: --cache-dir: %s\n", llavanext_last_error());
            llavanext_model_free(model);
            return 1;
        }
    }
    int port = 0;
    if (workers_start(&cfg, model, cache) != 0 || http_start(&cfg, cache, &port) != 0) {
        workers_stop();
        llavanext_embedding_cache_free(cache);
        llavanext_model_free(model);
        return 1;
    }
    fprintf(stderr, "llavanext-server: model %s, %d slot(s) x %d thread(s), listening on http://%s%s%s:%d\n", cfg.model_id,
            cfg.slots, cfg.threads, strchr(cfg.host, ':') ? "[" : "", cfg.host, strchr(cfg.host, ':') ? "]" : "", port);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "llavanext-server: stopping (signal %d)\n", sig);
    workers_stop(); /* cancels what runs and waits; connections waiting on a job then see it done */
    http_stop();
    llavanext_embedding_cache_free(cache);
    llavanext_model_free(model);
    for (int i = 0; i < cfg.n_roots; i++)
        free((void *)cfg.roots[i]);
    return 0;
}
