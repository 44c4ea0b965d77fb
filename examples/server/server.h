/* llavanext-server: an OpenAI-compatible chat-completions server over the public API.
 *
 * Threads: libmicrohttpd runs one thread per connection (http.c); those threads parse and check
 * a request (chat.c, media.c), put a job on the bounded queue and wait for it; --slots worker
 * threads (worker.c) each own a vision encoder and pooler of the one shared model and run jobs
 * through frame sampler, embedding cache, encoder, pooler and a generator. */
#ifndef LNX_SERVER_H
#define LNX_SERVER_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "llavanext/llavanext.h"

#define SRV_MAX_ROOTS 16
#define SRV_MAX_MEDIA 8  /* media items per request */
#define SRV_MAX_STOPS 4  /* as OpenAI */
#define SRV_DEFAULT_MAX_TOKENS 256
#define SRV_DEFAULT_FRAMES 8

typedef struct srv_config {
    const char *model_dir;
    char model_id[256];
    const char *host;
    int port;
    int slots;
    int threads;       /* per slot; 0 = CPUs / slots */
    int max_queue;     /* requests waiting beyond the busy slots */
    const char *roots[SRV_MAX_ROOTS]; /* --media-root, resolved with realpath */
    int n_roots;
    const char *cache_dir;
    int64_t cache_max_bytes;
    const char *api_key;
    int64_t max_body_bytes;
    int64_t max_media_bytes;
    int max_frames;    /* per video */
    int max_tokens;    /* cap on a request's max_tokens */
    int load_read;     /* LLAVANEXT_LOAD_READ instead of mmap */
} srv_config;

/* One piece of media of a request: its bytes and how to sample it. */
typedef struct srv_media {
    int is_video;
    uint8_t *data;
    size_t size;
    int32_t frames; /* video: uniform count, or the max count with fps (0 = none) */
    double fps;     /* video: > 0 samples by rate */
} srv_media;

enum srv_job_state { JOB_QUEUED, JOB_RUNNING, JOB_GENERATING, JOB_DONE };
enum srv_finish { FINISH_STOP, FINISH_LENGTH, FINISH_CANCELLED, FINISH_ERROR };

/* A chat completion: the parsed request, then its progress and result. Shared by the connection
 * thread and a worker; freed when both let go. */
typedef struct srv_job {
    /* the request (immutable once queued) */
    char *messages;  /* Hugging Face messages JSON for the chat template */
    srv_media media[SRV_MAX_MEDIA];
    int n_media;
    int32_t max_tokens;
    float temperature, top_p; /* < 0: generation_config.json's */
    uint64_t seed;
    int has_seed;
    char *stops[SRV_MAX_STOPS];
    int n_stops;
    int stream, include_usage;
    char id[48];
    int64_t created;

    /* progress, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
    int finish;
    int http_status;      /* for FINISH_ERROR */
    char err_message[512];
    const char *err_type, *err_code;
    char *text;           /* generated text, stop strings included */
    size_t len, cap;
    size_t visible;       /* bytes of text that are final (no stop string can still begin there) */
    int64_t prompt_tokens, video_tokens, image_tokens, completion_tokens;
    double t_sample, t_encode, t_prefill, t_generate;
    int cache_hits;

    atomic_int cancel;    /* set by the connection thread: the client went away (or shutdown) */
    atomic_int shutdown;  /* set with cancel when the server stops */
    atomic_int refs;
    struct srv_job *next; /* queue link */
} srv_job;

/* ---- jobs and the queue (worker.c) ---- */
srv_job *job_new(void);
void job_release(srv_job *job);
/* Sets the job's error (state DONE, FINISH_ERROR) under its lock and wakes the waiter. */
void job_fail(srv_job *job, int http_status, const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

int workers_start(const srv_config *cfg, llavanext_model *model, llavanext_embedding_cache *cache);
/* 0 when queued (the queue takes a reference), -1 when the queue is full. */
int workers_submit(srv_job *job);
void workers_stop(void);
void workers_load(int *busy, int *busy_max, int *queued);

/* ---- request parsing (chat.c) ---- */
/* Fills `job` from a chat-completions request body; on failure the job holds the 4xx error. */
int chat_parse(srv_job *job, const srv_config *cfg, const char *body, size_t len);
/* The non-streaming response body. Free with free(). */
char *chat_response(const srv_job *job, const srv_config *cfg);
/* One SSE event ("data: {...}\n\n") of a streaming response; delta may be NULL. Free with free(). */
char *chat_chunk(const srv_job *job, const srv_config *cfg, const char *content, size_t len, int first,
                 const char *finish_reason);
char *chat_usage_chunk(const srv_job *job, const srv_config *cfg);
const char *chat_finish_name(int finish);
json_t *chat_usage(const srv_job *job);
/* OpenAI's error object. Free with free(). */
char *error_body(const char *message, const char *type, const char *code);

/* ---- media (media.c) ---- */
/* Loads a content part's URL (data:, file://, or a path under a media root) into `m`.
 * On failure fills job's error and returns -1. */
int media_load(srv_media *m, srv_job *job, const srv_config *cfg, const char *url);
/* Decodes base64 (standard alphabet, padding optional, whitespace skipped) into a malloc'ed buffer. */
int media_base64(uint8_t **out, size_t *out_len, const char *s, size_t len, size_t max_out);

/* ---- metrics (metrics.c) ---- */
typedef struct srv_metrics {
    atomic_llong http[600];  /* responses by status code */
    atomic_llong cancelled, completions;
    atomic_llong prompt_tokens, completion_tokens, video_tokens, image_tokens;
    atomic_llong vision_encodes; /* media items run through the vision tower */
    atomic_llong stage_us[4];    /* sample, encode, prefill, generate */
} srv_metrics;
extern srv_metrics g_metrics;
void metrics_add_seconds(int stage, double seconds);
char *metrics_render(llavanext_embedding_cache *cache, int slots);

/* ---- HTTP (http.c) ---- */
/* Listens (in its own threads) and stores the port bound (useful with --port 0). */
int http_start(const srv_config *cfg, llavanext_embedding_cache *cache, int *out_port);
void http_stop(void);

#endif
