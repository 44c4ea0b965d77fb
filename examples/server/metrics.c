/* Counters and the Prometheus text exposition of GET /metrics. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

srv_metrics g_metrics;

void metrics_add_seconds(int stage, double seconds)
{
    atomic_fetch_add(&g_metrics.stage_us[stage], (long long)(seconds * 1e6));
}

typedef struct buf {
    char *s;
    size_t len, cap;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *t = realloc(b->s, cap);
        if (!t)
            return;
        b->s = t;
        b->cap = cap;
    }
}

static void metric(buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *metrics_render(llavanext_embedding_cache *cache, int slots)
{
    buf b = { 0 };
    metric(&b, "llavanext_http_requests_total", "counter", "HTTP responses by status code.");
    for (int code = 100; code < 600; code++) {
        long long n = atomic_load(&g_metrics.http[code]);
        if (n)
            put(&b, "llavanext_http_requests_total{code=\"%d\"} %lld\n", code, n);
    }
    metric(&b, "llavanext_chat_completions_total", "counter", "Chat completions answered in full.");
    put(&b, "llavanext_chat_completions_total %lld\n", (long long)atomic_load(&g_metrics.completions));
    metric(&b, "llavanext_requests_cancelled_total", "counter", "Requests cancelled because their client went away.");
    put(&b, "llavanext_requests_cancelled_total %lld\n", (long long)atomic_load(&g_metrics.cancelled));
    metric(&b, "llavanext_tokens_total", "counter", "Tokens processed, by kind.");
    put(&b, "llavanext_tokens_total{kind=\"prompt\"} %lld\n", (long long)atomic_load(&g_metrics.prompt_tokens));
    put(&b, "llavanext_tokens_total{kind=\"completion\"} %lld\n", (long long)atomic_load(&g_metrics.completion_tokens));
    put(&b, "llavanext_tokens_total{kind=\"video\"} %lld\n", (long long)atomic_load(&g_metrics.video_tokens));
    put(&b, "llavanext_tokens_total{kind=\"image\"} %lld\n", (long long)atomic_load(&g_metrics.image_tokens));
    metric(&b, "llavanext_stage_seconds_total", "counter", "Time spent in each pipeline stage.");
    static const char *stages[4] = { "sample", "encode", "prefill", "generate" };
    for (int i = 0; i < 4; i++)
        put(&b, "llavanext_stage_seconds_total{stage=\"%s\"} %.6f\n", stages[i],
            (double)atomic_load(&g_metrics.stage_us[i]) * 1e-6);
    metric(&b, "llavanext_vision_encodes_total", "counter", "Images and videos run through the vision tower.");
    put(&b, "llavanext_vision_encodes_total %lld\n", (long long)atomic_load(&g_metrics.vision_encodes));
    int busy, busy_max, queued;
    workers_load(&busy, &busy_max, &queued);
    metric(&b, "llavanext_queue_depth", "gauge", "Requests waiting for a slot.");
    put(&b, "llavanext_queue_depth %d\n", queued);
    metric(&b, "llavanext_slots_busy", "gauge", "Slots running a request.");
    put(&b, "llavanext_slots_busy %d\n", busy);
    metric(&b, "llavanext_slots_busy_max", "gauge", "Most slots that ran requests at the same time.");
    put(&b, "llavanext_slots_busy_max %d\n", busy_max);
    metric(&b, "llavanext_slots", "gauge", "Slots (concurrent generators).");
    put(&b, "llavanext_slots %d\n", slots);
    if (cache) {
        llavanext_embedding_cache_stats s;
        s.struct_size = sizeof s;
        if (llavanext_embedding_cache_stats_get(&s, cache) == LLAVANEXT_OK) {
            metric(&b, "llavanext_cache_hits_total", "counter", "Embedding cache lookups that found an entry.");
            put(&b, "llavanext_cache_hits_total %lld\n", (long long)s.hits);
            metric(&b, "llavanext_cache_misses_total", "counter", "Embedding cache lookups that found none.");
            put(&b, "llavanext_cache_misses_total %lld\n", (long long)s.misses);
            metric(&b, "llavanext_cache_corrupt_total", "counter", "Damaged cache entries deleted.");
            put(&b, "llavanext_cache_corrupt_total %lld\n", (long long)s.corrupt);
            metric(&b, "llavanext_cache_evictions_total", "counter", "Cache entries deleted for the size cap.");
            put(&b, "llavanext_cache_evictions_total %lld\n", (long long)s.evictions);
            metric(&b, "llavanext_cache_entries", "gauge", "Entries in the cache directory.");
            put(&b, "llavanext_cache_entries %lld\n", (long long)s.entries);
            metric(&b, "llavanext_cache_bytes", "gauge", "Bytes in the cache directory.");
            put(&b, "llavanext_cache_bytes %lld\n", (long long)s.bytes);
        }
    }
    return b.s;
}
