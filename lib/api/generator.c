/* llavanext_generator: prompt assembly with embedding splicing, chunked prefill, decoding with
 * sampling and stop conditions, scoring. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#include "../base/alloc.h"
#include "../llm/sampling.h"

#define MAX_STOPS 16
#define STOP_WINDOW 512

struct llavanext_generator {
    lnx_err_slot err;
    llavanext_model *model;
    llavanext_generator_params p;
    lnx_logger log;
    lnx_pool *pool;
    lnx_rope rope;
    lnx_kv kv;
    lnx_llama_scratch scratch;
    lnx_sample_scratch ss;
    lnx_sampler_cfg sampling;
    lnx_rng rng;
    int32_t max_new;
    int64_t capacity;
    atomic_int cancel;

    int32_t *tokens;      /* [capacity] */
    int64_t n_tokens;     /* appended */
    int64_t n_eval;       /* evaluated (in the KV cache) */
    float *pending;       /* [capacity - n_eval rows used, hidden]: inputs not yet evaluated */
    int64_t pending_cap;  /* rows */

    float *logits;        /* [vocab] of the last evaluated position */
    float *work;          /* [vocab] sampling copy */
    int has_logits;

    /* the current answer */
    int32_t n_new;
    int done;
    lnx_detok detok;
    char piece[256];
    char *stops[MAX_STOPS];
    int32_t n_stops;
    char recent[STOP_WINDOW + 256];
    size_t n_recent;
};

LLAVANEXT_API void llavanext_generator_params_init(llavanext_generator_params *p, size_t size)
{
    llavanext_generator_params d;
    memset(&d, 0, sizeof d);
    d.temperature = -1.0f;
    d.top_k = -1;
    d.top_p = -1.0f;
    d.min_p = -1.0f;
    d.repetition_penalty = -1.0f;
    d.seed = 0x5eed;
    lnx_params_init(p, size, &d, sizeof d);
}

static void resolve_sampling(llavanext_generator *g)
{
    const lnx_generation_cfg *gc = &g->model->cfg.gen;
    const llavanext_generator_params *p = &g->p;
    lnx_sampler_cfg *s = &g->sampling;
    if (p->temperature >= 0.0f)
        s->temperature = p->temperature;
    else
        s->temperature = gc->do_sample ? gc->temperature : 0.0f;
    s->top_k = p->top_k >= 0 ? p->top_k : (gc->do_sample ? gc->top_k : 0);
    s->top_p = p->top_p >= 0.0f ? p->top_p : (gc->do_sample ? gc->top_p : 1.0f);
    s->min_p = p->min_p >= 0.0f ? p->min_p : (gc->do_sample ? gc->min_p : 0.0f);
    s->repetition_penalty = p->repetition_penalty > 0.0f ? p->repetition_penalty : gc->repetition_penalty;
    g->max_new = p->max_new_tokens > 0 ? p->max_new_tokens : gc->max_new_tokens;
}

static lnx_status validate(const llavanext_generator_params *p)
{
    API_CHECK(p->threads >= 0 && p->threads <= 1024, "llavanext_generator_params: threads = %d", (int)p->threads);
    API_CHECK(p->context_length >= 0 && p->context_length <= (1 << 24),
              "llavanext_generator_params: context_length %lld", (long long)p->context_length);
    API_CHECK(p->rope_scale == 0 || (p->rope_scale >= 1.0 && p->rope_scale <= 1024.0),
              "llavanext_generator_params: rope_scale %g must be 0 (config) or in [1, 1024]", p->rope_scale);
    API_CHECK(p->max_new_tokens >= 0, "llavanext_generator_params: max_new_tokens %d", (int)p->max_new_tokens);
    API_CHECK(isfinite(p->temperature) && isfinite(p->top_p) && isfinite(p->min_p) && isfinite(p->repetition_penalty),
              "llavanext_generator_params: sampling parameters must be finite");
    API_CHECK(p->top_p <= 1.0f && p->min_p <= 1.0f, "llavanext_generator_params: top_p and min_p must be <= 1");
    API_CHECK(p->prefill_chunk >= 0 && p->prefill_chunk <= 65536, "llavanext_generator_params: prefill_chunk %d",
              (int)p->prefill_chunk);
    API_CHECK(p->max_request_bytes >= 0, "llavanext_generator_params: max_request_bytes = %lld",
              (long long)p->max_request_bytes);
    API_CHECK(p->kv_cache >= LLAVANEXT_KV_CACHE_AUTO && p->kv_cache <= LLAVANEXT_KV_CACHE_Q8,
              "llavanext_generator_params: kv_cache = %d (0 auto, 1 f32, 2 f16, 3 q8)", (int)p->kv_cache);
    return LNX_OK;
}

/* The cache type of a kv_cache setting (validated) for this model. */
static lnx_dtype kv_cache_dtype(const lnx_llama *m, int32_t kv_cache)
{
    switch (kv_cache) {
    case LLAVANEXT_KV_CACHE_F32:
        return LNX_DT_F32;
    case LLAVANEXT_KV_CACHE_F16:
        return LNX_DT_F16;
    case LLAVANEXT_KV_CACHE_Q8:
        return lnx_llama_kv_fit(m, LNX_DT_Q8);
    default:
        return lnx_llama_kv_dtype(m);
    }
}

/* Refuses, before anything is allocated, a generator whose buffers would exceed max_request_bytes
 * (0: no cap): the KV cache, the pending input rows of a prompt filling the context, the
 * activations of one prefill block (as lnx_llama_scratch_reserve sizes them), the logits and
 * the rows llavanext_generator_score allocates. */
static lnx_status check_memory(const llavanext_generator_params *p, const lnx_text_cfg *c, int64_t cap,
                                lnx_dtype kv_dt)
{
    if (p->max_request_bytes == 0)
        return LNX_OK;
    const double fl = sizeof(float), kvd = (double)c->kv_heads * c->head_dim, qd = (double)c->heads * c->head_dim;
    const double rows = (double)(p->prefill_chunk < cap ? p->prefill_chunk : cap);
    double kv = 2.0 * c->layers * (double)cap * (double)lnx_row_bytes(kv_dt, c->kv_heads * c->head_dim);
    double pending = (double)cap * c->hidden * fl;
    double act = rows * (2.0 * c->hidden + 2.0 * qd + 2.0 * kvd + 2.0 * c->intermediate) * fl;
    double logits = 2.0 * c->vocab * fl;
    double score = (rows < 64 ? rows : 64) * ((c->vocab > c->hidden ? c->vocab : c->hidden) + c->hidden) * fl;
    double total = kv + pending + act + logits + score;
    if (total <= (double)p->max_request_bytes)
        return LNX_OK;
    const double MiB = 1024.0 * 1024.0;
    return lnx_error(LNX_E_LIMIT,
                     "llavanext_generator_create: a context of %lld positions needs about %.1f MiB (KV cache %.1f, "
                     "prompt rows %.1f, activations %.1f MiB), more than max_request_bytes = %lld; lower "
                     "context_length or raise the limit",
                     (long long)cap, total / MiB, kv / MiB, pending / MiB, (act + logits + score) / MiB,
                     (long long)p->max_request_bytes);
}

LLAVANEXT_API llavanext_status llavanext_generator_create(llavanext_generator **out, llavanext_model *model,
                                                          const llavanext_generator_params *params)
{
    API_CHECK(out, "llavanext_generator_create: out is NULL");
    *out = NULL;
    API_CHECK(model, "llavanext_generator_create: model is NULL");
    if (!model->st)
        return lnx_error(LNX_E_STATE, "llavanext_generator_create: the model was loaded without weights");
    llavanext_generator_params p;
    llavanext_generator_params_init(&p, sizeof p);
    LNX_TRY(lnx_params_copy(&p, sizeof p, params, "llavanext_generator_params"));
    LNX_TRY(validate(&p));
    if (p.prefill_chunk == 0)
        p.prefill_chunk = 2048;
    const lnx_text_cfg *tc = &model->cfg.text;
    double factor = p.rope_scale > 0 ? p.rope_scale : tc->rope_factor;
    int64_t allowed = (int64_t)((double)tc->max_pos * factor);
    int64_t cap = p.context_length > 0 ? p.context_length : allowed;
    if (cap > allowed)
        return lnx_error(LNX_E_INVALID,
                         "llavanext_generator_params: context_length %lld exceeds the %lld positions that RoPE scaling "
                         "factor %g allows (max_position_embeddings %d); raise rope_scale",
                         (long long)cap, (long long)allowed, factor, (int)tc->max_pos);
    lnx_dtype kv_dt = kv_cache_dtype(&model->llama, p.kv_cache);
    LNX_TRY(check_memory(&p, tc, cap, kv_dt));
    llavanext_generator *g = calloc(1, sizeof *g);
    if (!g)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    g->model = model;
    lnx_model_retain(model);
    g->p = p;
    g->log.fn = p.log;
    g->log.user_data = p.log_user_data;
    g->capacity = cap;
    atomic_init(&g->cancel, 0);
    resolve_sampling(g);
    lnx_rng_seed(&g->rng, p.seed);
    lnx_status st = lnx_api_pool(&g->pool, p.threads, p.threadpool);
    if (st == LNX_OK)
        st = lnx_rope_init(&g->rope, tc->head_dim, tc->rope_theta, factor);
    if (st == LNX_OK)
        st = lnx_kv_init_dtype(&g->kv, tc->layers, tc->kv_heads * tc->head_dim, cap, kv_dt);
    if (st == LNX_OK)
        st = lnx_sample_scratch_init(&g->ss, tc->vocab);
    if (st == LNX_OK) {
        g->tokens = malloc(sizeof *g->tokens * (size_t)cap);
        g->logits = lnx_amalloc(sizeof(float) * (size_t)tc->vocab);
        g->work = lnx_amalloc(sizeof(float) * (size_t)tc->vocab);
        if (!g->tokens || !g->logits || !g->work)
            st = lnx_error(LNX_E_NOMEM, "out of memory for a generator of %lld positions", (long long)cap);
    }
    if (st != LNX_OK) {
        llavanext_generator_free(g);
        return st;
    }
    lnx_detok_init(&g->detok, model->tok);
    *out = g;
    return LNX_OK;
}

LLAVANEXT_API void llavanext_generator_free(llavanext_generator *g)
{
    if (!g)
        return;
    for (int32_t i = 0; i < g->n_stops; i++)
        free(g->stops[i]);
    lnx_pool_free(g->pool);
    lnx_rope_free(&g->rope);
    lnx_kv_free(&g->kv);
    lnx_llama_scratch_free(&g->scratch);
    lnx_sample_scratch_free(&g->ss);
    free(g->tokens);
    lnx_afree(g->pending);
    lnx_afree(g->logits);
    lnx_afree(g->work);
    lnx_model_release(g->model);
    free(g);
}

LLAVANEXT_API void llavanext_generator_cancel(llavanext_generator *g)
{
    if (g)
        atomic_store(&g->cancel, 1);
}

static void start_answer(llavanext_generator *g)
{
    g->n_new = 0;
    g->done = 0;
    g->n_recent = 0;
    lnx_detok_init(&g->detok, g->model->tok);
}

static lnx_status reserve_pending(llavanext_generator *g, int64_t rows)
{
    if (rows <= g->pending_cap)
        return LNX_OK;
    int64_t cap = g->pending_cap ? g->pending_cap : 64;
    while (cap < rows)
        cap *= 2;
    int64_t D = g->model->cfg.text.hidden;
    float *p = lnx_amalloc(sizeof(float) * (size_t)cap * (size_t)D);
    if (!p)
        return lnx_error(LNX_E_NOMEM, "out of memory for %lld prompt positions", (long long)cap);
    int64_t used = g->n_tokens - g->n_eval;
    if (used > 0)
        memcpy(p, g->pending, sizeof(float) * (size_t)used * (size_t)D);
    lnx_afree(g->pending);
    g->pending = p;
    g->pending_cap = cap;
    return LNX_OK;
}

static lnx_status check_room(const llavanext_generator *g, int64_t add)
{
    if (g->n_tokens + add > g->capacity)
        return lnx_error(LNX_E_CONTEXT_FULL,
                         "the context is full: %lld positions used, %lld more requested, capacity %lld",
                         (long long)g->n_tokens, (long long)add, (long long)g->capacity);
    return LNX_OK;
}

/* Appends ids whose input rows are their embeddings. */
static lnx_status push_tokens(llavanext_generator *g, const int32_t *ids, int64_t n)
{
    LNX_TRY(check_room(g, n));
    LNX_TRY(reserve_pending(g, g->n_tokens - g->n_eval + n));
    int64_t D = g->model->cfg.text.hidden;
    lnx_llama_embed(&g->model->llama, ids, n, g->pending + (g->n_tokens - g->n_eval) * D);
    memcpy(g->tokens + g->n_tokens, ids, sizeof *ids * (size_t)n);
    g->n_tokens += n;
    return LNX_OK;
}

static int64_t media_rows(const llavanext_tensor *t, int64_t D)
{
    if (t->ndim < 1 || t->dims[t->ndim - 1] != D)
        return -1;
    return t->numel / D;
}

/* LLaVA-OneVision follows a video's frames with one image_newline embedding: 1 when the
 * generator adds it after this tensor (pooler output of such a model), else 0. */
static int64_t video_newline(const llavanext_model *m, const llavanext_tensor *t)
{
    return m->cfg.family == LNX_FAMILY_ONEVISION && t->kind == LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS && m->proj.newline;
}

static llavanext_status api_generator_append_prompt(llavanext_generator *g, const char *text,
                                                                 size_t text_len, const llavanext_tensor *const *media,
                                                                 int32_t media_count);

LLAVANEXT_API llavanext_status llavanext_generator_append_prompt(llavanext_generator *g, const char *text,
                                                                 size_t text_len, const llavanext_tensor *const *media,
                                                                 int32_t media_count)
{
    return lnx_err_record(g ? &g->err : NULL, api_generator_append_prompt(g, text, text_len, media, media_count));
}

static llavanext_status api_generator_append_prompt(llavanext_generator *g, const char *text,
                                                                 size_t text_len, const llavanext_tensor *const *media,
                                                                 int32_t media_count)
{
    API_CHECK(g && (text || text_len == 0), "llavanext_generator_append_prompt: NULL argument");
    API_CHECK(media_count >= 0 && (media || media_count == 0), "llavanext_generator_append_prompt: media is NULL");
    const llavanext_model *m = g->model;
    const int64_t D = m->cfg.text.hidden;
    int32_t *ids = NULL;
    size_t n = 0;
    LNX_TRY(lnx_tokenizer_encode(m->tok, text ? text : "", text_len, g->n_tokens == 0, &ids, &n));
    /* match placeholders with media, in order */
    int32_t found = 0;
    int64_t total = 0;
    lnx_status st = LNX_OK;
    for (size_t i = 0; i < n && st == LNX_OK; i++) {
        int video = ids[i] == m->cfg.video_token, image = ids[i] == m->cfg.image_token;
        if (!video && !image) {
            total++;
            continue;
        }
        if (found >= media_count) {
            found++;
            continue;
        }
        const llavanext_tensor *t = media[found];
        if (!t) {
            st = lnx_error(LNX_E_INVALID, "llavanext_generator_append_prompt: media[%d] is NULL", (int)found);
            break;
        }
        int want = video ? LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS : LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS;
        if (t->kind != want && t->kind != LLAVANEXT_TENSOR_OTHER) {
            st = lnx_error(LNX_E_INVALID,
                           "llavanext_generator_append_prompt: placeholder %d is %s but media[%d] has tensor kind %d "
                           "(expected %s embeddings from the pooler)",
                           (int)found + 1, video ? "<video>" : "<image>", (int)found, (int)t->kind,
                           video ? "video" : "image");
            break;
        }
        int64_t rows = media_rows(t, D);
        if (rows <= 0) {
            st = lnx_error(LNX_E_INVALID, "llavanext_generator_append_prompt: media[%d]'s last dimension must be the "
                           "model's hidden size %lld", (int)found, (long long)D);
            break;
        }
        total += rows + video_newline(m, t);
        found++;
    }
    if (st == LNX_OK && found != media_count)
        st = lnx_error(LNX_E_INVALID,
                       "llavanext_generator_append_prompt: the prompt has %d <video>/<image> placeholders but %d media "
                       "tensors were given",
                       (int)found, (int)media_count);
    if (st == LNX_OK)
        st = check_room(g, total);
    if (st == LNX_OK)
        st = reserve_pending(g, g->n_tokens - g->n_eval + total);
    if (st != LNX_OK) {
        free(ids);
        return st;
    }
    int32_t mi = 0;
    size_t run = 0;
    for (size_t i = 0; i <= n; i++) {
        int ph = i < n && (ids[i] == m->cfg.video_token || ids[i] == m->cfg.image_token);
        if (i < n && !ph)
            continue;
        if (i > run)
            push_tokens(g, ids + run, (int64_t)(i - run)); /* room was checked above */
        run = i + 1;
        if (!ph)
            break;
        const llavanext_tensor *t = media[mi++];
        int64_t rows = media_rows(t, D);
        memcpy(g->pending + (g->n_tokens - g->n_eval) * D, t->data, sizeof(float) * (size_t)(rows * D));
        if (video_newline(m, t)) {
            memcpy(g->pending + (g->n_tokens - g->n_eval + rows) * D, m->proj.newline, sizeof(float) * (size_t)D);
            rows++;
        }
        for (int64_t r = 0; r < rows; r++)
            g->tokens[g->n_tokens + r] = ids[i];
        g->n_tokens += rows;
    }
    free(ids);
    start_answer(g);
    return LNX_OK;
}

static llavanext_status api_generator_append_tokens(llavanext_generator *g, const int32_t *ids,
                                                                 size_t count);

LLAVANEXT_API llavanext_status llavanext_generator_append_tokens(llavanext_generator *g, const int32_t *ids,
                                                                 size_t count)
{
    return lnx_err_record(g ? &g->err : NULL, api_generator_append_tokens(g, ids, count));
}

static llavanext_status api_generator_append_tokens(llavanext_generator *g, const int32_t *ids,
                                                                 size_t count)
{
    API_CHECK(g && (ids || count == 0), "llavanext_generator_append_tokens: NULL argument");
    for (size_t i = 0; i < count; i++)
        API_CHECK(ids[i] >= 0 && ids[i] < g->model->cfg.text.vocab,
                  "llavanext_generator_append_tokens: id %d at %zu is outside the vocabulary", (int)ids[i], i);
    LNX_TRY(push_tokens(g, ids, (int64_t)count));
    start_answer(g);
    return LNX_OK;
}

/* Evaluates pending rows in chunks; the last chunk yields the logits of the last position. */
static lnx_status evaluate_chunks(llavanext_generator *g, int report)
{
    const int64_t D = g->model->cfg.text.hidden;
    int64_t total = g->n_tokens - g->n_eval, done = 0;
    while (g->n_eval < g->n_tokens) {
        if (atomic_exchange(&g->cancel, 0))
            return lnx_error(LNX_E_ABORTED, "prefill cancelled after %lld of %lld positions", (long long)done,
                             (long long)total);
        int64_t left = g->n_tokens - g->n_eval;
        int64_t T = left < g->p.prefill_chunk ? left : g->p.prefill_chunk;
        int last = T == left;
        lnx_llama_pass pass = { g->pending + done * D, T, g->n_eval, T - 1, last ? 1 : 0, g->logits, NULL };
        LNX_TRY(lnx_llama_forward(&g->model->llama, &g->rope, &g->kv, &g->scratch, g->pool, &pass));
        g->n_eval += T;
        done += T;
        if (last)
            g->has_logits = 1;
        if (report && g->p.progress &&
            g->p.progress(LLAVANEXT_STAGE_PREFILL, done, total, g->p.progress_user_data))
            return lnx_error(LNX_E_ABORTED, "prefill aborted by the progress callback after %lld of %lld positions",
                             (long long)done, (long long)total);
    }
    return LNX_OK;
}

/* Evaluates everything appended and not yet evaluated. On failure the positions that were not
 * evaluated are dropped, so that the conversation (and the pending rows, which start at n_eval)
 * stays consistent and usable. */
static lnx_status evaluate_pending(llavanext_generator *g, int report)
{
    lnx_status st = evaluate_chunks(g, report);
    if (st != LNX_OK) {
        g->n_tokens = g->n_eval;
        g->has_logits = 0;
    }
    return st;
}

/* A pending cancel (llavanext_generator_cancel's rule) fails the operation now starting. */
static lnx_status take_cancel(llavanext_generator *g, const char *what)
{
    if (atomic_exchange(&g->cancel, 0))
        return lnx_error(LNX_E_ABORTED, "%s: cancelled before it started (llavanext_generator_cancel)", what);
    return LNX_OK;
}

static llavanext_status api_generator_prefill(llavanext_generator *g);

LLAVANEXT_API llavanext_status llavanext_generator_prefill(llavanext_generator *g)
{
    return lnx_err_record(g ? &g->err : NULL, api_generator_prefill(g));
}

static llavanext_status api_generator_prefill(llavanext_generator *g)
{
    API_CHECK(g, "llavanext_generator_prefill: generator is NULL");
    LNX_TRY(take_cancel(g, "llavanext_generator_prefill"));
    return evaluate_pending(g, 1);
}

static int is_eos(const llavanext_generator *g, int32_t id)
{
    const lnx_generation_cfg *gc = &g->model->cfg.gen;
    for (int32_t i = 0; i < gc->n_eos; i++)
        if (gc->eos_ids[i] == id)
            return 1;
    return id == lnx_tokenizer_eos_id(g->model->tok);
}

static int hit_stop(llavanext_generator *g, const char *piece, size_t len)
{
    if (g->n_stops == 0)
        return 0;
    if (len > sizeof g->recent - 1)
        len = sizeof g->recent - 1;
    if (g->n_recent + len > sizeof g->recent - 1) {
        size_t keep = STOP_WINDOW < g->n_recent ? STOP_WINDOW : g->n_recent;
        memmove(g->recent, g->recent + g->n_recent - keep, keep);
        g->n_recent = keep;
        if (g->n_recent + len > sizeof g->recent - 1)
            g->n_recent = 0;
    }
    memcpy(g->recent + g->n_recent, piece, len);
    g->n_recent += len;
    g->recent[g->n_recent] = '\0';
    for (int32_t i = 0; i < g->n_stops; i++)
        if (strstr(g->recent, g->stops[i]))
            return 1;
    return 0;
}

static llavanext_status finish(llavanext_generator *g, const char **out_piece, size_t *out_len, int32_t *out_token)
{
    size_t len = 0;
    if (!g->done)
        lnx_detok_flush(&g->detok, g->piece, sizeof g->piece, &len);
    g->done = 1;
    g->piece[len] = '\0';
    if (out_piece)
        *out_piece = g->piece;
    if (out_len)
        *out_len = len;
    if (out_token)
        *out_token = -1;
    return LLAVANEXT_DONE;
}

static llavanext_status api_generator_next(llavanext_generator *g, const char **out_piece,
                                                        size_t *out_len, int32_t *out_token);

LLAVANEXT_API llavanext_status llavanext_generator_next(llavanext_generator *g, const char **out_piece,
                                                        size_t *out_len, int32_t *out_token)
{
    return lnx_err_record(g ? &g->err : NULL, api_generator_next(g, out_piece, out_len, out_token));
}

static llavanext_status api_generator_next(llavanext_generator *g, const char **out_piece,
                                                        size_t *out_len, int32_t *out_token)
{
    if (out_piece)
        *out_piece = "";
    if (out_len)
        *out_len = 0;
    if (out_token)
        *out_token = -1;
    API_CHECK(g, "llavanext_generator_next: generator is NULL");
    if (g->done)
        return finish(g, out_piece, out_len, out_token);
    LNX_TRY(take_cancel(g, "llavanext_generator_next"));
    LNX_TRY(evaluate_pending(g, g->n_tokens - g->n_eval > 1));
    if (!g->has_logits)
        return lnx_error(LNX_E_STATE, "llavanext_generator_next: nothing to continue from; append a prompt first");
    if (g->n_new >= g->max_new)
        return finish(g, out_piece, out_len, out_token);
    if (g->n_tokens >= g->capacity)
        return lnx_error(LNX_E_CONTEXT_FULL, "the context is full: all %lld positions are used (%d tokens generated)",
                         (long long)g->capacity, (int)g->n_new);
    const int32_t V = g->model->cfg.text.vocab;
    memcpy(g->work, g->logits, sizeof(float) * (size_t)V);
    int32_t tok = lnx_sample(&g->sampling, &g->rng, g->work, V, g->tokens, g->n_tokens, &g->ss);
    LNX_TRY(push_tokens(g, &tok, 1));
    g->n_new++;
    if (g->p.progress && g->p.progress(LLAVANEXT_STAGE_GENERATE, g->n_new, g->max_new, g->p.progress_user_data)) {
        g->done = 1;
        return lnx_error(LNX_E_ABORTED, "generation aborted by the progress callback");
    }
    if (is_eos(g, tok))
        return finish(g, out_piece, out_len, out_token);
    size_t len = 0;
    /* ids of the padded embedding rows beyond the tokenizer's vocabulary have no text (the
     * Hugging Face decoder skips them too) */
    if (tok < lnx_tokenizer_vocab_size(g->model->tok))
        LNX_TRY(lnx_detok_push(&g->detok, tok, g->piece, sizeof g->piece - 1, &len));
    g->piece[len] = '\0';
    if (out_piece)
        *out_piece = g->piece;
    if (out_len)
        *out_len = len;
    if (out_token)
        *out_token = tok;
    if (hit_stop(g, g->piece, len))
        g->done = 1;
    return LNX_OK;
}

static llavanext_status api_generator_generate(llavanext_generator *g, llavanext_token_callback callback,
                                                            void *user_data);

LLAVANEXT_API llavanext_status llavanext_generator_generate(llavanext_generator *g, llavanext_token_callback callback,
                                                            void *user_data)
{
    return lnx_err_record(g ? &g->err : NULL, api_generator_generate(g, callback, user_data));
}

static llavanext_status api_generator_generate(llavanext_generator *g, llavanext_token_callback callback,
                                                            void *user_data)
{
    API_CHECK(g, "llavanext_generator_generate: generator is NULL");
    for (;;) {
        const char *piece;
        size_t len;
        int32_t tok;
        lnx_status st = llavanext_generator_next(g, &piece, &len, &tok);
        if (st == LLAVANEXT_DONE) {
            if (len && callback)
                callback(piece, len, -1, user_data);
            return LNX_OK;
        }
        if (st != LNX_OK)
            return st;
        if (callback && callback(piece, len, tok, user_data)) {
            g->done = 1;
            return LNX_OK;
        }
    }
}

static llavanext_status api_generator_add_stop_string(llavanext_generator *g, const char *stop);

LLAVANEXT_API llavanext_status llavanext_generator_add_stop_string(llavanext_generator *g, const char *stop)
{
    return lnx_err_record(g ? &g->err : NULL, api_generator_add_stop_string(g, stop));
}

static llavanext_status api_generator_add_stop_string(llavanext_generator *g, const char *stop)
{
    API_CHECK(g && stop, "llavanext_generator_add_stop_string: NULL argument");
    API_CHECK(*stop && strlen(stop) <= STOP_WINDOW, "llavanext_generator_add_stop_string: stop strings must be 1 to %d bytes",
              STOP_WINDOW);
    if (g->n_stops >= MAX_STOPS)
        return lnx_error(LNX_E_LIMIT, "llavanext_generator_add_stop_string: at most %d stop strings", MAX_STOPS);
    g->stops[g->n_stops] = lnx_strdup(stop);
    if (!g->stops[g->n_stops])
        return lnx_error(LNX_E_NOMEM, "out of memory");
    g->n_stops++;
    return LNX_OK;
}

static llavanext_status api_generator_score(double *out, int32_t *out_tokens, llavanext_generator *g,
                                                         const char *text, size_t len);

LLAVANEXT_API llavanext_status llavanext_generator_score(double *out, int32_t *out_tokens, llavanext_generator *g,
                                                         const char *text, size_t len)
{
    return lnx_err_record(g ? &g->err : NULL, api_generator_score(out, out_tokens, g, text, len));
}

static llavanext_status api_generator_score(double *out, int32_t *out_tokens, llavanext_generator *g,
                                                         const char *text, size_t len)
{
    API_CHECK(out, "llavanext_generator_score: out is NULL");
    *out = 0.0;
    if (out_tokens)
        *out_tokens = 0;
    API_CHECK(g && (text || len == 0), "llavanext_generator_score: NULL argument");
    LNX_TRY(take_cancel(g, "llavanext_generator_score"));
    LNX_TRY(evaluate_pending(g, 1));
    if (!g->has_logits)
        return lnx_error(LNX_E_STATE, "llavanext_generator_score: no context to score against; append a prompt first");
    int32_t *ids = NULL;
    size_t n = 0;
    LNX_TRY(lnx_tokenizer_encode(g->model->tok, text ? text : "", len, 0, &ids, &n));
    if (n == 0) {
        free(ids);
        return LNX_OK;
    }
    if (g->n_eval + (int64_t)n > g->capacity) {
        free(ids);
        return lnx_error(LNX_E_CONTEXT_FULL, "llavanext_generator_score: %zu continuation tokens do not fit after %lld "
                         "positions (capacity %lld)", n, (long long)g->n_eval, (long long)g->capacity);
    }
    const int32_t V = g->model->cfg.text.vocab;
    const int64_t D = g->model->cfg.text.hidden;
    int64_t chunk = g->p.prefill_chunk < 64 ? g->p.prefill_chunk : 64;
    float *rows = lnx_amalloc(sizeof(float) * (size_t)chunk * (size_t)(V > D ? V : D));
    float *emb = lnx_amalloc(sizeof(float) * (size_t)chunk * (size_t)D);
    if (!rows || !emb) {
        lnx_afree(rows);
        lnx_afree(emb);
        free(ids);
        return lnx_error(LNX_E_NOMEM, "out of memory scoring");
    }
    /* the first token is predicted by the current logits; token i by row i-1 of the pass */
    memcpy(g->work, g->logits, sizeof(float) * (size_t)V);
    double total = lnx_softmax(g->work, V); /* logsumexp */
    double sum = (double)g->logits[ids[0]] - total;
    int64_t pos = g->n_eval;
    lnx_status st = LNX_OK;
    for (size_t i0 = 0; i0 + 1 < n && st == LNX_OK; i0 += (size_t)chunk) {
        int64_t T = (int64_t)(n - 1 - i0) < chunk ? (int64_t)(n - 1 - i0) : chunk;
        lnx_llama_embed(&g->model->llama, ids + i0, T, emb);
        lnx_llama_pass pass = { emb, T, pos, 0, T, rows, NULL };
        st = lnx_llama_forward(&g->model->llama, &g->rope, &g->kv, &g->scratch, g->pool, &pass);
        for (int64_t r = 0; st == LNX_OK && r < T; r++) {
            float *row = rows + r * V;
            float target = row[ids[i0 + (size_t)r + 1]];
            double lse = lnx_softmax(row, V);
            sum += (double)target - lse;
        }
        pos += T;
    }
    /* the cache beyond n_eval is scratch: the conversation is unchanged */
    lnx_afree(rows);
    lnx_afree(emb);
    free(ids);
    if (st != LNX_OK)
        return st;
    *out = sum;
    if (out_tokens)
        *out_tokens = (int32_t)n;
    return LNX_OK;
}

LLAVANEXT_API void llavanext_generator_reset(llavanext_generator *g)
{
    if (!g)
        return;
    g->n_tokens = g->n_eval = 0;
    g->has_logits = 0;
    atomic_store(&g->cancel, 0); /* a cancel meant for the conversation just dropped */
    for (int32_t i = 0; i < g->n_stops; i++)
        free(g->stops[i]);
    g->n_stops = 0;
    start_answer(g);
    lnx_rng_seed(&g->rng, g->p.seed);
}

static llavanext_status api_generator_logits(const float **out, int32_t *out_count, llavanext_generator *g);

LLAVANEXT_API llavanext_status llavanext_generator_logits(const float **out, int32_t *out_count, llavanext_generator *g)
{
    return lnx_err_record(g ? &g->err : NULL, api_generator_logits(out, out_count, g));
}

static llavanext_status api_generator_logits(const float **out, int32_t *out_count, llavanext_generator *g)
{
    API_CHECK(out, "llavanext_generator_logits: out is NULL");
    *out = NULL;
    if (out_count)
        *out_count = 0;
    API_CHECK(g, "llavanext_generator_logits: generator is NULL");
    if (!g->has_logits)
        return lnx_error(LNX_E_STATE, "llavanext_generator_logits: nothing has been evaluated yet");
    *out = g->logits;
    if (out_count)
        *out_count = g->model->cfg.text.vocab;
    return LNX_OK;
}

LLAVANEXT_API int64_t llavanext_generator_position(const llavanext_generator *g)
{
    return g ? g->n_tokens : 0;
}

LLAVANEXT_API int64_t llavanext_generator_context_length(const llavanext_generator *g)
{
    return g ? g->capacity : 0;
}

LLAVANEXT_API const int32_t *llavanext_generator_tokens(const llavanext_generator *g)
{
    return g ? g->tokens : NULL;
}

LLAVANEXT_API size_t llavanext_generator_last_error(const llavanext_generator *handle, char *buf, size_t size)
{
    return lnx_err_copy(handle ? &handle->err : NULL, buf, size);
}
