/* The slots: worker threads that each own a vision encoder and a pooler of the shared model,
 * take jobs from a bounded FIFO queue, and run the pipeline: embedding cache lookup or frame
 * sampler -> vision encoder -> pooler (-> cache), chat template, generator. A job whose client
 * went away is cancelled between and inside the stages (progress callbacks). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define STREAM_BATCH 8

typedef struct slot {
    pthread_t thread;
    llavanext_vision_encoder *enc;
    llavanext_pooler *pool;
    srv_job *job; /* the running one, for the progress callbacks */
} slot;

static struct {
    const srv_config *cfg;
    llavanext_model *model;
    llavanext_embedding_cache *cache;
    slot *slots;
    int n_slots;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_job *head, *tail;
    int queued, busy, busy_max, stopping;
} W = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

srv_job *job_new(void)
{
    srv_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancel, 0);
    atomic_init(&j->shutdown, 0);
    static atomic_ullong counter;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    j->created = (int64_t)t.tv_sec;
    snprintf(j->id, sizeof j->id, "chatcmpl-%llx%08llx", (unsigned long long)t.tv_nsec,
             (unsigned long long)atomic_fetch_add(&counter, 1));
    return j;
}

void job_release(srv_job *j)
{
    if (!j || atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    free(j->messages);
    for (int i = 0; i < j->n_media; i++)
        free(j->media[i].data);
    for (int i = 0; i < j->n_stops; i++)
        free(j->stops[i]);
    free(j->text);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

void job_fail(srv_job *j, int http_status, const char *type, const char *code, const char *fmt, ...)
{
    pthread_mutex_lock(&j->mu);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->err_message, sizeof j->err_message, fmt, ap);
    va_end(ap);
    j->http_status = http_status;
    j->err_type = type;
    j->err_code = code;
    j->finish = FINISH_ERROR;
    j->state = JOB_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* A library failure as the client should see it: what it sent (media, prompt) is a 400. */
static void fail_lib(srv_job *j, const char *what, llavanext_status st)
{
    int client = st == LLAVANEXT_E_MEDIA || st == LLAVANEXT_E_FORMAT || st == LLAVANEXT_E_UNSUPPORTED ||
                 st == LLAVANEXT_E_INVALID_ARGUMENT || st == LLAVANEXT_E_TEMPLATE || st == LLAVANEXT_E_LIMIT;
    if (st == LLAVANEXT_E_CONTEXT_FULL)
        job_fail(j, 400, "invalid_request_error", "context_length_exceeded", "%s: %s", what, llavanext_last_error());
    else if (client)
        job_fail(j, 400, "invalid_request_error", st == LLAVANEXT_E_MEDIA ? "invalid_media" : "invalid_request", "%s: %s",
                 what, llavanext_last_error());
    else
        job_fail(j, 500, "server_error", "internal_error", "%s: %s (%s)", what, llavanext_status_string(st),
                 llavanext_last_error());
}

/* Media the library could not open, decode or encode: the client's bytes, so a 400, unless the
 * server itself ran short. */
static void fail_media(srv_job *j, const srv_media *m, llavanext_status st)
{
    const char *what = m->is_video ? "the video" : "the image";
    if (st == LLAVANEXT_E_NO_MEMORY || st == LLAVANEXT_E_INTERNAL)
        fail_lib(j, what, st);
    else
        job_fail(j, 400, "invalid_request_error", "invalid_media", "%s: %s", what, llavanext_last_error());
}

static int32_t cancel_check(int32_t stage, int64_t done, int64_t total, void *user)
{
    slot *s = user;
    return s->job && atomic_load(&s->job->cancel);
}

static int32_t job_cancel_check(int32_t stage, int64_t done, int64_t total, void *user)
{
    return atomic_load(&((srv_job *)user)->cancel);
}

/* ---- media -> embeddings ---- */

static llavanext_status encode_video(slot *s, srv_media *m, llavanext_frame_sampler *fs, int32_t frames,
                                     llavanext_tensor **out, double *t_sample, double *t_encode)
{
    if (m->fps > 0) {
        llavanext_frames *f = NULL;
        double t0 = now();
        llavanext_status st = llavanext_frame_sampler_by_fps(&f, fs, m->fps, frames);
        *t_sample += now() - t0;
        t0 = now();
        llavanext_tensor *feat = NULL;
        if (st == LLAVANEXT_OK)
            st = llavanext_vision_encoder_encode_video(&feat, s->enc, f);
        if (st == LLAVANEXT_OK)
            st = llavanext_pooler_apply(out, s->pool, feat);
        *t_encode += now() - t0;
        llavanext_tensor_free(feat);
        llavanext_frames_free(f);
        return st;
    }
    /* uniform frames in batches, as llavanext-cli does: one batch of pixels alive at a time */
    llavanext_tensor *parts[SRV_DEFAULT_FRAMES * 1024 / STREAM_BATCH + 1];
    int32_t nparts = 0;
    llavanext_status st = llavanext_frame_sampler_begin_uniform(fs, frames);
    while (st == LLAVANEXT_OK && nparts < (int32_t)(sizeof parts / sizeof parts[0])) {
        llavanext_frames *f = NULL;
        double t0 = now();
        st = llavanext_frame_sampler_next(&f, fs, STREAM_BATCH);
        *t_sample += now() - t0;
        if (st != LLAVANEXT_OK)
            break;
        t0 = now();
        llavanext_tensor *feat = NULL, *pooled = NULL;
        st = llavanext_vision_encoder_encode_video(&feat, s->enc, f);
        if (st == LLAVANEXT_OK)
            st = llavanext_pooler_pool(&pooled, s->pool, feat);
        if (st == LLAVANEXT_OK)
            st = llavanext_pooler_project(&parts[nparts++], s->pool, pooled);
        *t_encode += now() - t0;
        llavanext_tensor_free(feat);
        llavanext_tensor_free(pooled);
        llavanext_frames_free(f);
        if (st == LLAVANEXT_OK && atomic_load(&s->job->cancel))
            st = LLAVANEXT_E_ABORTED;
    }
    if (st == LLAVANEXT_DONE)
        st = llavanext_tensor_concat(out, (const llavanext_tensor *const *)parts, nparts);
    for (int32_t k = 0; k < nparts; k++)
        llavanext_tensor_free(parts[k]);
    return st;
}

static int embed_media(slot *s, srv_job *j, srv_media *m, llavanext_tensor **out)
{
    const srv_config *cfg = W.cfg;
    llavanext_embedding_key key;
    llavanext_embedding_key_init(&key, sizeof key);
    if (W.cache) {
        llavanext_media_hash_memory(key.media_sha256, m->data, m->size);
        key.sampling = !m->is_video ? LLAVANEXT_CACHE_IMAGE : m->fps > 0 ? LLAVANEXT_CACHE_FPS : LLAVANEXT_CACHE_UNIFORM;
        key.frames = m->is_video ? m->frames : 0;
        key.fps = m->is_video ? m->fps : 0;
        if (llavanext_embedding_cache_get(out, W.cache, W.model, &key) == LLAVANEXT_OK && *out) {
            j->cache_hits++;
            return 0;
        }
    }
    llavanext_frame_sampler_params sp;
    llavanext_frame_sampler_params_init(&sp, sizeof sp);
    sp.max_frame_pixels = 4096 * 4096; /* a decoded batch of 8 such frames is 400 MB */
    llavanext_frame_sampler *fs = NULL;
    llavanext_status st = llavanext_frame_sampler_open_memory(&fs, m->data, m->size, &sp);
    if (st != LLAVANEXT_OK) {
        fail_media(j, m, st);
        return -1;
    }
    llavanext_media_info mi;
    mi.struct_size = sizeof mi;
    llavanext_frame_sampler_info(&mi, fs);
    double t_sample = 0, t_encode = 0;
    if (m->is_video) {
        int64_t want = m->frames > 0 ? m->frames : SRV_DEFAULT_FRAMES;
        if (m->fps > 0) {
            int64_t by_rate = (int64_t)floor(mi.duration * m->fps) + 1;
            want = m->frames > 0 && m->frames < by_rate ? m->frames : by_rate;
        }
        if (want > mi.frame_count)
            want = mi.frame_count;
        if (want > cfg->max_frames)
            want = cfg->max_frames;
        if (want < 1) {
            llavanext_frame_sampler_free(fs);
            job_fail(j, 400, "invalid_request_error", "invalid_media", "the video has no decodable frames");
            return -1;
        }
        st = encode_video(s, m, fs, (int32_t)want, out, &t_sample, &t_encode);
    } else {
        llavanext_frames *f = NULL;
        double t0 = now();
        st = llavanext_frame_sampler_uniform(&f, fs, 1);
        t_sample += now() - t0;
        t0 = now();
        llavanext_tensor *feat = NULL;
        if (st == LLAVANEXT_OK)
            st = llavanext_vision_encoder_encode_image(&feat, s->enc, f, 0);
        if (st == LLAVANEXT_OK)
            st = llavanext_pooler_apply(out, s->pool, feat);
        t_encode += now() - t0;
        llavanext_tensor_free(feat);
        llavanext_frames_free(f);
    }
    llavanext_frame_sampler_free(fs);
    j->t_sample += t_sample;
    j->t_encode += t_encode;
    metrics_add_seconds(0, t_sample);
    metrics_add_seconds(1, t_encode);
    if (st != LLAVANEXT_OK) {
        if (st == LLAVANEXT_E_ABORTED)
            return -1;
        fail_media(j, m, st);
        return -1;
    }
    atomic_fetch_add(&g_metrics.vision_encodes, 1);
    if (W.cache && llavanext_embedding_cache_put(W.cache, W.model, &key, *out) != LLAVANEXT_OK)
        fprintf(stderr, "llavanext-server: the embedding cache did not store an entry: %s\n", llavanext_last_error());
    return 0;
}

/* ---- generation ---- */

/* The prefix of text that can no longer turn into the start of a stop string, cut at a
 * character boundary; `stopped` set when a stop string occurs (text then ends before it). No stop
 * string can begin before the previous visible length (it would have been found whole), so the
 * search starts there. */
static size_t visible_length(const srv_job *j, int final, int *stopped)
{
    size_t cut = j->len;
    *stopped = 0;
    for (int i = 0; i < j->n_stops; i++) {
        const char *hit = j->text ? strstr(j->text + j->visible, j->stops[i]) : NULL;
        if (hit && (size_t)(hit - j->text) < cut) {
            cut = (size_t)(hit - j->text);
            *stopped = 1;
        }
    }
    if (*stopped || final)
        return cut;
    size_t hold = 0;
    for (int i = 0; i < j->n_stops; i++) {
        size_t n = strlen(j->stops[i]) - 1;
        hold = n > hold ? n : hold;
    }
    cut = cut > hold ? cut - hold : 0;
    while (cut > 0 && cut < j->len && ((unsigned char)j->text[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

static int append_text(srv_job *j, const char *piece, size_t len)
{
    if (j->len + len + 1 > j->cap) {
        size_t cap = (j->len + len + 1) * 2;
        char *t = realloc(j->text, cap);
        if (!t)
            return -1;
        j->text = t;
        j->cap = cap;
    }
    memcpy(j->text + j->len, piece, len);
    j->len += len;
    j->text[j->len] = '\0';
    return 0;
}

/* Maps the rendered prompt's placeholders, in order, to the request's media of that kind. */
static int order_media(srv_job *j, const char *prompt, llavanext_tensor **emb, const llavanext_tensor **ordered)
{
    int32_t *ids = NULL;
    size_t n = 0;
    llavanext_status st = llavanext_model_tokenize(&ids, &n, W.model, prompt, strlen(prompt), 1);
    if (st != LLAVANEXT_OK) {
        fail_lib(j, "tokenizing the prompt", st);
        return -1;
    }
    int32_t vid = llavanext_model_token_id(W.model, LLAVANEXT_TOKEN_VIDEO);
    int32_t img = llavanext_model_token_id(W.model, LLAVANEXT_TOKEN_IMAGE);
    int next[2] = { 0, 0 }, np = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != vid && ids[i] != img)
            continue;
        int want_video = ids[i] == vid;
        int *c = &next[want_video];
        while (*c < j->n_media && j->media[*c].is_video != want_video)
            (*c)++;
        if (*c >= j->n_media) {
            np = -1;
            break;
        }
        ordered[np++] = emb[(*c)++];
    }
    llavanext_free(ids);
    if (np != j->n_media) {
        job_fail(j, 400, "invalid_request_error", "invalid_request",
                 "the model's chat template placed %s media placeholders than the request has images and videos (%d); "
                 "a <video> or <image> written in the text counts as one",
                 np < 0 ? "more" : "fewer", j->n_media);
        return -1;
    }
    return 0;
}

static void generate(slot *s, srv_job *j, const char *prompt, const llavanext_tensor **media)
{
    const srv_config *cfg = W.cfg;
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.threads = cfg->threads;
    gp.max_new_tokens = j->max_tokens;
    gp.temperature = j->temperature;
    gp.top_p = j->top_p;
    if (j->has_seed)
        gp.seed = j->seed;
    else {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        gp.seed = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 30) ^ (uint64_t)(uintptr_t)j;
    }
    gp.progress = job_cancel_check;
    gp.progress_user_data = j;
    llavanext_generator *g = NULL;
    llavanext_status st = llavanext_generator_create(&g, W.model, &gp);
    for (int i = 0; st == LLAVANEXT_OK && i < j->n_stops; i++)
        st = llavanext_generator_add_stop_string(g, j->stops[i]);
    if (st == LLAVANEXT_OK)
        st = llavanext_generator_append_prompt(g, prompt, strlen(prompt), media, j->n_media);
    double t0 = now();
    if (st == LLAVANEXT_OK)
        st = llavanext_generator_prefill(g);
    double t_prefill = now() - t0;
    if (st != LLAVANEXT_OK) {
        if (st != LLAVANEXT_E_ABORTED)
            fail_lib(j, "the prompt", st);
        llavanext_generator_free(g);
        return;
    }
    pthread_mutex_lock(&j->mu);
    j->prompt_tokens = llavanext_generator_position(g);
    j->t_prefill = t_prefill;
    j->state = JOB_GENERATING;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    metrics_add_seconds(2, t_prefill);

    t0 = now();
    int stopped = 0;
    for (;;) {
        const char *piece;
        size_t len;
        int32_t tok;
        st = llavanext_generator_next(g, &piece, &len, &tok);
        if (st != LLAVANEXT_OK && st != LLAVANEXT_DONE)
            break;
        pthread_mutex_lock(&j->mu);
        if (tok >= 0)
            j->completion_tokens++;
        int bad = append_text(j, piece, len);
        j->visible = visible_length(j, st == LLAVANEXT_DONE, &stopped);
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        if (bad) {
            st = LLAVANEXT_E_NO_MEMORY;
            break;
        }
        if (st == LLAVANEXT_DONE || stopped)
            break;
    }
    double t_gen = now() - t0;
    metrics_add_seconds(3, t_gen);
    if (st == LLAVANEXT_E_ABORTED || atomic_load(&j->cancel)) {
        llavanext_generator_free(g);
        return;
    }
    if (st != LLAVANEXT_OK && st != LLAVANEXT_DONE && st != LLAVANEXT_E_CONTEXT_FULL) {
        fail_lib(j, "generation", st);
        llavanext_generator_free(g);
        return;
    }
    pthread_mutex_lock(&j->mu);
    j->visible = visible_length(j, 1, &stopped);
    j->finish = stopped ? FINISH_STOP
                : (st == LLAVANEXT_E_CONTEXT_FULL || j->completion_tokens >= j->max_tokens) ? FINISH_LENGTH
                                                                                         : FINISH_STOP;
    j->t_generate = t_gen;
    j->state = JOB_DONE;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    atomic_fetch_add(&g_metrics.completions, 1);
    atomic_fetch_add(&g_metrics.prompt_tokens, j->prompt_tokens);
    atomic_fetch_add(&g_metrics.completion_tokens, j->completion_tokens);
    atomic_fetch_add(&g_metrics.video_tokens, j->video_tokens);
    atomic_fetch_add(&g_metrics.image_tokens, j->image_tokens);
    llavanext_generator_free(g);
}

/* A job stopped before its end: its client went away, or the server is stopping (then a client
 * still waiting gets a 503). */
static void end_cancelled(srv_job *j)
{
    if (atomic_load(&j->shutdown)) {
        pthread_mutex_lock(&j->mu);
        int done = j->state == JOB_DONE && j->finish != FINISH_CANCELLED;
        pthread_mutex_unlock(&j->mu);
        if (!done)
            job_fail(j, 503, "server_error", "shutting_down", "the server is shutting down");
        return;
    }
    atomic_fetch_add(&g_metrics.cancelled, 1);
    pthread_mutex_lock(&j->mu);
    if (j->state != JOB_DONE) {
        j->finish = FINISH_CANCELLED;
        j->state = JOB_DONE;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void run_job(slot *s, srv_job *j)
{
    llavanext_tensor *emb[SRV_MAX_MEDIA] = { 0 };
    const llavanext_tensor *ordered[SRV_MAX_MEDIA];
    char *prompt = NULL;
    int ok = 1;
    for (int i = 0; ok && i < j->n_media; i++) {
        if (atomic_load(&j->cancel) || embed_media(s, j, &j->media[i], &emb[i]) != 0) {
            ok = 0;
            break;
        }
        int64_t rows = llavanext_tensor_numel(emb[i]) / llavanext_tensor_dim(emb[i], llavanext_tensor_ndim(emb[i]) - 1);
        if (j->media[i].is_video)
            j->video_tokens += rows;
        else
            j->image_tokens += rows;
    }
    if (ok) {
        llavanext_status st = llavanext_model_render_chat(&prompt, W.model, j->messages, 1);
        if (st != LLAVANEXT_OK) {
            fail_lib(j, "the chat template", st);
            ok = 0;
        }
    }
    if (ok && order_media(j, prompt, emb, ordered) != 0)
        ok = 0;
    if (ok && !atomic_load(&j->cancel))
        generate(s, j, prompt, ordered);
    llavanext_free(prompt);
    for (int i = 0; i < j->n_media; i++)
        llavanext_tensor_free(emb[i]);
    if (atomic_load(&j->cancel))
        end_cancelled(j);
}

static void *worker_main(void *arg)
{
    slot *s = arg;
    for (;;) {
        pthread_mutex_lock(&W.mu);
        while (!W.head && !W.stopping)
            pthread_cond_wait(&W.cv, &W.mu);
        if (!W.head) {
            pthread_mutex_unlock(&W.mu);
            return NULL;
        }
        srv_job *j = W.head;
        W.head = j->next;
        if (!W.head)
            W.tail = NULL;
        W.queued--;
        W.busy++;
        if (W.busy > W.busy_max)
            W.busy_max = W.busy;
        s->job = j;
        pthread_mutex_unlock(&W.mu);

        pthread_mutex_lock(&j->mu);
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&j->mu);
        run_job(s, j);
        /* a job that ended without a result or an error was cancelled before it started */
        pthread_mutex_lock(&j->mu);
        int unfinished = j->state != JOB_DONE;
        pthread_mutex_unlock(&j->mu);
        if (unfinished)
            end_cancelled(j);
        pthread_mutex_lock(&j->mu);
        if (j->finish == FINISH_ERROR)
            fprintf(stderr, "llavanext-server: %s: %d %s\n", j->id, j->http_status, j->err_message);
        else if (j->finish == FINISH_CANCELLED)
            fprintf(stderr, "llavanext-server: %s: cancelled (the client went away)\n", j->id);
        else
            fprintf(stderr,
                    "llavanext-server: %s: %lld prompt (%lld video, %lld image) + %lld completion tokens, %d cached "
                    "media; sample %.2fs, encode %.2fs, prefill %.2fs, generate %.2fs\n",
                    j->id, (long long)j->prompt_tokens, (long long)j->video_tokens, (long long)j->image_tokens,
                    (long long)j->completion_tokens, j->cache_hits, j->t_sample, j->t_encode, j->t_prefill,
                    j->t_generate);
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);

        pthread_mutex_lock(&W.mu);
        s->job = NULL;
        W.busy--;
        pthread_mutex_unlock(&W.mu);
        job_release(j);
    }
}

int workers_start(const srv_config *cfg, llavanext_model *model, llavanext_embedding_cache *cache)
{
    W.cfg = cfg;
    W.model = model;
    W.cache = cache;
    W.slots = calloc((size_t)cfg->slots, sizeof *W.slots);
    if (!W.slots)
        return -1;
    for (int i = 0; i < cfg->slots; i++) {
        slot *s = &W.slots[i];
        llavanext_vision_encoder_params ep;
        llavanext_vision_encoder_params_init(&ep, sizeof ep);
        ep.threads = cfg->threads;
        ep.progress = cancel_check;
        ep.progress_user_data = s;
        llavanext_pooler_params pp;
        llavanext_pooler_params_init(&pp, sizeof pp);
        pp.threads = cfg->threads;
        llavanext_status st = llavanext_vision_encoder_create(&s->enc, model, &ep);
        if (st == LLAVANEXT_OK)
            st = llavanext_pooler_create(&s->pool, model, &pp);
        if (st != LLAVANEXT_OK) {
            fprintf(stderr, "llavanext-server: creating slot %d: %s: %s\n", i, llavanext_status_string(st),
                    llavanext_last_error());
            return -1;
        }
        if (pthread_create(&s->thread, NULL, worker_main, s) != 0)
            return -1;
        W.n_slots++;
    }
    return 0;
}

int workers_submit(srv_job *j)
{
    pthread_mutex_lock(&W.mu);
    /* queued jobs first fill the idle slots; beyond them at most max_queue wait */
    if (W.stopping || W.queued >= W.n_slots - W.busy + W.cfg->max_queue) {
        pthread_mutex_unlock(&W.mu);
        return -1;
    }
    atomic_fetch_add(&j->refs, 1);
    j->next = NULL;
    if (W.tail)
        W.tail->next = j;
    else
        W.head = j;
    W.tail = j;
    W.queued++;
    pthread_cond_signal(&W.cv);
    pthread_mutex_unlock(&W.mu);
    return 0;
}

void workers_load(int *busy, int *busy_max, int *queued)
{
    pthread_mutex_lock(&W.mu);
    *busy = W.busy;
    *busy_max = W.busy_max;
    *queued = W.queued;
    pthread_mutex_unlock(&W.mu);
}

void workers_stop(void)
{
    pthread_mutex_lock(&W.mu);
    W.stopping = 1;
    for (srv_job *j = W.head; j; j = j->next) {
        atomic_store(&j->shutdown, 1);
        atomic_store(&j->cancel, 1);
    }
    for (int i = 0; i < W.n_slots; i++)
        if (W.slots[i].job) {
            atomic_store(&W.slots[i].job->shutdown, 1);
            atomic_store(&W.slots[i].job->cancel, 1);
        }
    pthread_cond_broadcast(&W.cv);
    pthread_mutex_unlock(&W.mu);
    for (int i = 0; i < W.n_slots; i++) {
        pthread_join(W.slots[i].thread, NULL);
        llavanext_vision_encoder_free(W.slots[i].enc);
        llavanext_pooler_free(W.slots[i].pool);
    }
    free(W.slots);
    W.slots = NULL;
    W.n_slots = 0;
}
