/* run and chat: the whole pipeline, wired through the five handles. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dump.h"

typedef struct encoded {
    llavanext_tensor *emb;   /* what fills the placeholder */
    int32_t frames;
} encoded;

typedef struct timings {
    double load, sample, encode, prefill, generate;
} timings;

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi))
        return 0;
    *out = v;
    return 1;
}

static int parse_args(cli_run_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->max_tokens = 0;
    o->temperature = -1.0f;
    o->top_k = -1;
    o->top_p = -1.0f;
    o->min_p = -1.0f;
    o->repetition_penalty = -1.0f;
    o->seed = 0x5eed;
    o->pool_mode = LLAVANEXT_POOL_DEFAULT;
    o->precision = LLAVANEXT_PRECISION_F32;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        double d;
#define NEED()                                                   \
    do {                                                         \
        if (!v)                                                  \
            return cli_usage_error("%s needs a value", a);       \
        i++;                                                     \
    } while (0)
        if (strcmp(a, "--model") == 0) {
            NEED();
            o->model = v;
        } else if (strcmp(a, "--video") == 0 || strcmp(a, "--image") == 0) {
            NEED();
            if (o->n_media == CLI_MAX_MEDIA)
                return cli_usage_error("at most %d media files", CLI_MAX_MEDIA);
            cli_media *m = &o->media[o->n_media++];
            m->is_video = a[2] == 'v';
            m->path = v;
        } else if (strcmp(a, "--frames") == 0 || strcmp(a, "--fps") == 0) {
            NEED();
            if (o->n_media == 0 || !o->media[o->n_media - 1].is_video)
                return cli_usage_error("%s must follow the --video it applies to", a);
            cli_media *m = &o->media[o->n_media - 1];
            if (a[2] == 'f' && a[3] == 'r') {
                if (!parse_int(v, 1, 100000, &n))
                    return cli_usage_error("--frames: '%s' is not a frame count (1 or more)", v);
                m->frames = (int32_t)n;
            } else {
                if (!parse_num(v, 1e-6, 1000, &d))
                    return cli_usage_error("--fps: '%s' is not a positive rate", v);
                m->fps = d;
            }
        } else if (strcmp(a, "--prompt") == 0) {
            NEED();
            o->prompt = v;
        } else if (strcmp(a, "--max-tokens") == 0) {
            NEED();
            if (!parse_int(v, 1, 1 << 24, &n))
                return cli_usage_error("--max-tokens: '%s' is not a positive count", v);
            o->max_tokens = (int32_t)n;
        } else if (strcmp(a, "--temperature") == 0) {
            NEED();
            if (!parse_num(v, 0, 100, &d))
                return cli_usage_error("--temperature: '%s' must be a number from 0 to 100", v);
            o->temperature = (float)d;
        } else if (strcmp(a, "--top-k") == 0) {
            NEED();
            if (!parse_int(v, 0, 1 << 24, &n))
                return cli_usage_error("--top-k: '%s' is not a count", v);
            o->top_k = (int32_t)n;
        } else if (strcmp(a, "--top-p") == 0 || strcmp(a, "--min-p") == 0) {
            NEED();
            if (!parse_num(v, 0, 1, &d))
                return cli_usage_error("%s: '%s' must be between 0 and 1", a, v);
            if (a[2] == 't')
                o->top_p = (float)d;
            else
                o->min_p = (float)d;
        } else if (strcmp(a, "--repetition-penalty") == 0) {
            NEED();
            if (!parse_num(v, 1e-3, 100, &d))
                return cli_usage_error("--repetition-penalty: '%s' must be positive", v);
            o->repetition_penalty = (float)d;
        } else if (strcmp(a, "--seed") == 0) {
            NEED();
            if (!parse_int(v, 0, INT64_MAX, &n))
                return cli_usage_error("--seed: '%s' is not a non-negative integer", v);
            o->seed = (uint64_t)n;
        } else if (strcmp(a, "--threads") == 0) {
            NEED();
            if (!parse_int(v, 1, 1024, &n))
                return cli_usage_error("--threads: '%s' must be 1 to 1024", v);
            o->threads = (int32_t)n;
        } else if (strcmp(a, "--pool-stride") == 0) {
            NEED();
            if (!parse_int(v, 1, 1024, &n))
                return cli_usage_error("--pool-stride: '%s' must be a positive integer", v);
            o->pool_stride = (int32_t)n;
        } else if (strcmp(a, "--pool-mode") == 0) {
            NEED();
            if (strcmp(v, "average") == 0)
                o->pool_mode = LLAVANEXT_POOL_AVERAGE;
            else if (strcmp(v, "max") == 0)
                o->pool_mode = LLAVANEXT_POOL_MAX;
            else
                return cli_usage_error("--pool-mode: '%s' is neither average nor max", v);
        } else if (strcmp(a, "--rope-scale") == 0) {
            NEED();
            if (strcmp(v, "auto") == 0)
                o->rope_scale = -1;
            else if (!parse_num(v, 1, 1024, &o->rope_scale))
                return cli_usage_error("--rope-scale: '%s' must be a factor >= 1 or 'auto'", v);
        } else if (strcmp(a, "--context") == 0) {
            NEED();
            if (!parse_int(v, 1, 1 << 24, &n))
                return cli_usage_error("--context: '%s' is not a positive token count", v);
            o->context = n;
        } else if (strcmp(a, "--load") == 0) {
            NEED();
            if (strcmp(v, "read") == 0)
                o->load_read = 1;
            else if (strcmp(v, "mmap") != 0)
                return cli_usage_error("--load: '%s' is neither read nor mmap", v);
        } else if (strcmp(a, "--precision") == 0) {
            NEED();
            if (strcmp(v, "f32") == 0)
                o->precision = LLAVANEXT_PRECISION_F32;
            else if (strcmp(v, "bf16") == 0)
                o->precision = LLAVANEXT_PRECISION_BF16;
            else if (strcmp(v, "auto") == 0)
                o->precision = LLAVANEXT_PRECISION_AUTO;
            else
                return cli_usage_error("--precision: '%s' is not f32, bf16 or auto", v);
        } else if (strcmp(a, "--weights") == 0) {
            NEED();
            if (!cli_parse_weights(v, &o->weights))
                return cli_usage_error("--weights: '%s' is not stored, q8, q4 or bf16", v);
        } else if (strcmp(a, "--kv-cache") == 0) {
            NEED();
            static const char *const kv_names[] = { "auto", "f32", "f16", "q8" };
            o->kv_cache = -1;
            for (int32_t k = 0; k < 4; k++)
                if (strcmp(v, kv_names[k]) == 0)
                    o->kv_cache = k; /* llavanext_kv_cache numbering */
            if (o->kv_cache < 0)
                return cli_usage_error("--kv-cache: '%s' is not auto, f32, f16 or q8", v);
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--fit") == 0) {
            o->fit = 1;
        } else if (strcmp(a, "--cache-dir") == 0) {
            NEED();
            o->cache_dir = v;
        } else if (strcmp(a, "--dump") == 0) {
            NEED();
            o->dump = v;
        } else {
            return cli_usage_error("unknown option '%s'", a);
        }
#undef NEED
    }
    if (!o->model)
        return cli_usage_error("--model DIR is required");
    if (!o->prompt)
        return cli_usage_error("--prompt TEXT is required");
    for (int i = 0; i < o->n_media; i++)
        if (o->media[i].is_video && o->media[i].frames == 0 && o->media[i].fps == 0)
            o->media[i].frames = 8;
    return CLI_OK;
}

/* The user turn: media in the order given, then the prompt text. */
static char *conversation_json(const cli_run_opts *o, const char *text)
{
    json_t *content = json_array();
    for (int i = 0; i < o->n_media; i++)
        json_array_append_new(content, json_pack("{s:s}", "type", o->media[i].is_video ? "video" : "image"));
    json_array_append_new(content, json_pack("{s:s, s:s}", "type", "text", "text", text));
    json_t *msgs = json_pack("[{s:s, s:o}]", "role", "user", "content", content);
    char *s = json_dumps(msgs, 0);
    json_decref(msgs);
    return s;
}

typedef struct request {
    cli_run_opts *o;
    llavanext_model *model;
    llavanext_frame_sampler *samplers[CLI_MAX_MEDIA];
    int32_t frames[CLI_MAX_MEDIA]; /* planned frame count per video */
    int64_t image_tokens;
    int32_t total_frames;
    char *prompt;                  /* rendered */
    int64_t text_tokens;
    int32_t order[CLI_MAX_MEDIA];  /* media index of each placeholder, in prompt order */
    encoded enc[CLI_MAX_MEDIA];
    double rope_scale;
    int32_t pool_stride;
    timings t;
    cli_dump *dump;
    int mute_encoder; /* streaming reports frames itself instead of the encoder's layers */
    llavanext_embedding_cache *cache;
    int cache_hits;
} request;

static int open_media(request *r)
{
    llavanext_frame_sampler_params sp;
    llavanext_frame_sampler_params_init(&sp, sizeof sp);
    for (int i = 0; i < r->o->n_media; i++) {
        cli_media *m = &r->o->media[i];
        llavanext_status st = llavanext_frame_sampler_open(&r->samplers[i], m->path, &sp);
        if (st != LLAVANEXT_OK)
            return cli_lib_error(m->path, st);
        llavanext_media_info mi;
        mi.struct_size = sizeof mi;
        llavanext_frame_sampler_info(&mi, r->samplers[i]);
        if (!m->is_video) {
            r->image_tokens += llavanext_model_image_tokens(r->model, mi.height, mi.width);
            continue;
        }
        int64_t want = m->frames;
        if (m->fps > 0) {
            int64_t by_rate = (int64_t)floor(mi.duration * m->fps) + 1;
            want = m->frames > 0 && m->frames < by_rate ? m->frames : by_rate;
        }
        if (want > mi.frame_count)
            want = mi.frame_count;
        r->frames[i] = (int32_t)want;
        r->total_frames += (int32_t)want;
    }
    return CLI_OK;
}

/* Placeholder order in the rendered prompt and the text token count. */
static int scan_prompt(request *r)
{
    int32_t *ids;
    size_t n;
    llavanext_status st = llavanext_model_tokenize(&ids, &n, r->model, r->prompt, strlen(r->prompt), 1);
    if (st != LLAVANEXT_OK)
        return cli_lib_error("tokenizing the prompt", st);
    int32_t vid = llavanext_model_token_id(r->model, LLAVANEXT_TOKEN_VIDEO);
    int32_t img = llavanext_model_token_id(r->model, LLAVANEXT_TOKEN_IMAGE);
    int next_video = 0, next_image = 0, np = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != vid && ids[i] != img) {
            r->text_tokens++;
            continue;
        }
        int want_video = ids[i] == vid;
        int *cursor = want_video ? &next_video : &next_image;
        while (*cursor < r->o->n_media && r->o->media[*cursor].is_video != want_video)
            (*cursor)++;
        if (*cursor >= r->o->n_media || np >= CLI_MAX_MEDIA) {
            llavanext_free(ids);
            fprintf(stderr, "llavanext-cli: the chat template produced more %s placeholders than --%s files\n",
                    want_video ? "<video>" : "<image>", want_video ? "video" : "image");
            return CLI_FAIL;
        }
        r->order[np++] = (*cursor)++;
    }
    llavanext_free(ids);
    if (np != r->o->n_media) {
        fprintf(stderr,
                "llavanext-cli: the model's chat template rendered %d media placeholders for %d media files "
                "(templates converted from the original checkpoints render no <video>: use one that does)\n",
                np, r->o->n_media);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int check_budget(request *r)
{
    cli_run_opts *o = r->o;
    int32_t max_new = o->max_tokens > 0 ? o->max_tokens : 0;
    llavanext_budget b;
    b.struct_size = sizeof b;
    llavanext_status st = llavanext_model_plan_budget(&b, r->model, r->total_frames, o->pool_stride, r->image_tokens,
                                                      r->text_tokens, max_new, o->rope_scale, o->context);
    if (st != LLAVANEXT_OK)
        return cli_lib_error("planning the token budget", st);
    r->rope_scale = b.rope_scale;
    r->pool_stride = o->pool_stride;
    int64_t ctx = b.context_length;
    if (b.total_tokens <= ctx)
        return CLI_OK;
    if (!o->fit) {
        fprintf(stderr,
                "llavanext-cli: the request needs %lld tokens (%d frames x %d tokens + %lld image + %lld text + %d new) "
                "but the context holds %lld.\n  suggestion: --frames %d%s",
                (long long)b.total_tokens, (int)r->total_frames, (int)b.tokens_per_frame, (long long)r->image_tokens,
                (long long)r->text_tokens, (int)max_new, (long long)ctx, (int)b.suggested_frames,
                b.suggested_pool_stride ? "" : "\n");
        if (b.suggested_pool_stride)
            fprintf(stderr, ", or --pool-stride %d, or --rope-scale auto\n", (int)b.suggested_pool_stride);
        fprintf(stderr, "  (or pass --fit to apply the frame count)\n");
        return CLI_FAIL;
    }
    if (b.suggested_frames >= r->o->n_media && b.suggested_frames > 0) {
        /* scale every video's frame count down proportionally */
        int32_t total = 0;
        for (int i = 0; i < o->n_media; i++) {
            if (!o->media[i].is_video)
                continue;
            int32_t f = (int32_t)((int64_t)r->frames[i] * b.suggested_frames / r->total_frames);
            r->frames[i] = f > 0 ? f : 1;
            total += r->frames[i];
        }
        r->total_frames = total;
        fprintf(stderr, "llavanext-cli: --fit: using %d frames in total to fit %lld tokens of context\n", (int)total,
                (long long)ctx);
    } else if (b.suggested_pool_stride) {
        r->pool_stride = b.suggested_pool_stride;
        fprintf(stderr, "llavanext-cli: --fit: using pool stride %d to fit the context\n", (int)r->pool_stride);
    } else {
        fprintf(stderr, "llavanext-cli: --fit: no frame count or pooling stride fits %lld tokens of context\n",
                (long long)ctx);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Frame batches pulled from the sampler, encoded and pooled one after another: only one batch
 * of decoded frames and pixels is alive at a time. */
#define STREAM_BATCH 8

static llavanext_status stream_video(request *r, int i, llavanext_vision_encoder *enc, llavanext_pooler *pool,
                                     llavanext_tensor **out)
{
    llavanext_tensor *parts[100000 / STREAM_BATCH + 1];
    int32_t nparts = 0;
    llavanext_status st = llavanext_frame_sampler_begin_uniform(r->samplers[i], r->frames[i]);
    int32_t done = 0;
    while (st == LLAVANEXT_OK) {
        llavanext_frames *f = NULL;
        double t0 = cli_now();
        st = llavanext_frame_sampler_next(&f, r->samplers[i], STREAM_BATCH);
        r->t.sample += cli_now() - t0;
        if (st != LLAVANEXT_OK)
            break;
        t0 = cli_now();
        llavanext_tensor *feat = NULL, *pooled = NULL;
        st = llavanext_vision_encoder_encode_video(&feat, enc, f);
        /* pool + project, in the model family's order (LLaVA-OneVision projects first) */
        if (st == LLAVANEXT_OK)
            st = llavanext_pooler_apply(&parts[nparts++], pool, feat);
        r->t.encode += cli_now() - t0;
        done += llavanext_frames_count(f);
        cli_progress(LLAVANEXT_STAGE_ENCODE, done, r->frames[i], NULL);
        llavanext_tensor_free(feat);
        llavanext_tensor_free(pooled);
        llavanext_frames_free(f);
    }
    if (st == LLAVANEXT_DONE)
        st = llavanext_tensor_concat(out, (const llavanext_tensor *const *)parts, nparts);
    for (int32_t k = 0; k < nparts; k++)
        llavanext_tensor_free(parts[k]);
    return st;
}

/* Samples, encodes and pools media i into r->enc[i]. */
static int encode_one(request *r, int i, llavanext_vision_encoder *enc, llavanext_pooler *pool)
{
    cli_media *m = &r->o->media[i];
    if (m->is_video && m->fps == 0 && !r->dump) {
        r->mute_encoder = 1;
        llavanext_status st = stream_video(r, i, enc, pool, &r->enc[i].emb);
        r->mute_encoder = 0;
        if (st != LLAVANEXT_OK)
            return cli_lib_error(m->path, st);
        r->enc[i].frames = r->frames[i];
        return CLI_OK;
    }
    llavanext_frames *f = NULL;
    double t0 = cli_now();
    llavanext_status st = m->is_video && m->fps > 0 ? llavanext_frame_sampler_by_fps(&f, r->samplers[i], m->fps, r->frames[i])
                          : llavanext_frame_sampler_uniform(&f, r->samplers[i], m->is_video ? r->frames[i] : 1);
    cli_progress(LLAVANEXT_STAGE_SAMPLE, 1, 1, NULL);
    r->t.sample += cli_now() - t0;
    if (st != LLAVANEXT_OK)
        return cli_lib_error(m->path, st);
    t0 = cli_now();
    llavanext_tensor *px = NULL, *feat = NULL, *mid = NULL, *emb = NULL;
    if (m->is_video) {
        st = llavanext_vision_encoder_preprocess_video(&px, enc, f);
        if (st == LLAVANEXT_OK)
            st = llavanext_vision_encoder_encode_pixels(&feat, enc, px);
        if (st == LLAVANEXT_OK)
            st = llavanext_pooler_pool(&mid, pool, feat);
        if (st == LLAVANEXT_E_INVALID_ARGUMENT) /* a family that projects before pooling (LLaVA-OneVision) */
            st = llavanext_pooler_project(&mid, pool, feat);
    } else {
        st = llavanext_vision_encoder_preprocess_image(&px, enc, f, 0);
        if (st == LLAVANEXT_OK)
            st = llavanext_vision_encoder_encode_pixels(&feat, enc, px);
        if (st == LLAVANEXT_OK)
            st = llavanext_pooler_project(&mid, pool, feat);
    }
    if (st == LLAVANEXT_OK)
        st = !m->is_video ? llavanext_pooler_pack_image(&emb, pool, mid)
             : llavanext_tensor_kind(mid) == LLAVANEXT_TENSOR_VIDEO_PROJECTED ? llavanext_pooler_pool(&emb, pool, mid)
                                                                              : llavanext_pooler_project(&emb, pool, mid);
    r->t.encode += cli_now() - t0;
    if (st == LLAVANEXT_OK && r->dump)
        cli_dump_media(r->dump, m->is_video, f, px, feat, mid, emb);
    llavanext_frames_free(f);
    llavanext_tensor_free(px);
    llavanext_tensor_free(feat);
    llavanext_tensor_free(mid);
    if (st != LLAVANEXT_OK) {
        llavanext_tensor_free(emb);
        return cli_lib_error(m->path, st);
    }
    r->enc[i].emb = emb;
    r->enc[i].frames = m->is_video ? r->frames[i] : 1;
    return CLI_OK;
}

/* The cache key of media i: its bytes, and the sampling as asked for (the frame count --fit chose
 * when it changed it). For uniform sampling that is llavanext-server's key of the same request, so
 * the two share entries; by fps the server keys the cap on the count instead, a different entry. */
static int cache_key(request *r, int i, llavanext_embedding_key *key)
{
    cli_media *m = &r->o->media[i];
    llavanext_embedding_key_init(key, sizeof *key);
    llavanext_status st = llavanext_media_hash_file(key->media_sha256, m->path);
    if (st != LLAVANEXT_OK)
        return cli_lib_error(m->path, st);
    if (!m->is_video) {
        key->sampling = LLAVANEXT_CACHE_IMAGE;
        return CLI_OK;
    }
    llavanext_media_info mi;
    mi.struct_size = sizeof mi;
    llavanext_frame_sampler_info(&mi, r->samplers[i]);
    int64_t asked = m->frames < mi.frame_count ? m->frames : mi.frame_count;
    key->sampling = m->fps > 0 ? LLAVANEXT_CACHE_FPS : LLAVANEXT_CACHE_UNIFORM;
    key->fps = m->fps;
    key->frames = m->fps > 0 ? r->frames[i] : r->frames[i] == asked ? m->frames : r->frames[i];
    key->pool_stride = r->pool_stride;
    key->pool_mode = r->o->pool_mode;
    return CLI_OK;
}

static int encode_media(request *r, llavanext_vision_encoder *enc, llavanext_pooler *pool)
{
    for (int i = 0; i < r->o->n_media; i++) {
        cli_media *m = &r->o->media[i];
        llavanext_embedding_key key;
        if (r->cache) {
            if (cache_key(r, i, &key) != CLI_OK)
                return CLI_FAIL;
            llavanext_status st = llavanext_embedding_cache_get(&r->enc[i].emb, r->cache, r->model, &key);
            if (st != LLAVANEXT_OK)
                return cli_lib_error("the embedding cache", st);
            if (r->enc[i].emb) {
                r->enc[i].frames = m->is_video ? r->frames[i] : 1;
                r->cache_hits++;
                continue;
            }
        }
        int rc = encode_one(r, i, enc, pool);
        if (rc != CLI_OK)
            return rc;
        if (r->cache) {
            llavanext_status st = llavanext_embedding_cache_put(r->cache, r->model, &key, r->enc[i].emb);
            if (st != LLAVANEXT_OK)
                fprintf(stderr, "llavanext-cli: warning: not cached: %s\n", llavanext_last_error());
        }
    }
    cli_progress_done();
    return CLI_OK;
}

typedef struct stream_state {
    int print;
    json_t *ids;
    char *text;
    size_t len, cap;
} stream_state;

static int32_t on_piece(const char *piece, size_t len, int32_t token, void *user)
{
    stream_state *s = user;
    if (token >= 0)
        json_array_append_new(s->ids, json_integer(token));
    if (s->len + len + 1 > s->cap) {
        size_t cap = (s->cap + len + 1) * 2;
        char *t = realloc(s->text, cap);
        if (!t)
            return 1;
        s->text = t;
        s->cap = cap;
    }
    memcpy(s->text + s->len, piece, len);
    s->len += len;
    s->text[s->len] = '\0';
    if (s->print) {
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
    }
    return 0;
}

static llavanext_generator *make_generator(request *r)
{
    cli_run_opts *o = r->o;
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.threads = o->threads;
    gp.context_length = o->context;
    gp.rope_scale = r->rope_scale;
    gp.max_new_tokens = o->max_tokens;
    gp.temperature = o->temperature;
    gp.top_k = o->top_k;
    gp.top_p = o->top_p;
    gp.min_p = o->min_p;
    gp.repetition_penalty = o->repetition_penalty;
    gp.seed = o->seed;
    gp.kv_cache = o->kv_cache;
    gp.progress = cli_progress;
    if (gp.context_length > llavanext_model_context_length(r->model, r->rope_scale))
        gp.context_length = 0;
    llavanext_generator *g = NULL;
    llavanext_status st = llavanext_generator_create(&g, r->model, &gp);
    if (st != LLAVANEXT_OK) {
        cli_lib_error("creating the generator", st);
        return NULL;
    }
    return g;
}

static int answer(request *r, llavanext_generator *g, const char *text, int with_media, stream_state *ss)
{
    const llavanext_tensor *media[CLI_MAX_MEDIA];
    int32_t n = 0;
    if (with_media)
        for (int i = 0; i < r->o->n_media; i++)
            media[n++] = r->enc[r->order[i]].emb;
    llavanext_status st = llavanext_generator_append_prompt(g, text, strlen(text), media, n);
    if (st != LLAVANEXT_OK)
        return cli_lib_error("the prompt", st);
    double t0 = cli_now();
    st = llavanext_generator_prefill(g);
    cli_progress_done();
    r->t.prefill += cli_now() - t0;
    if (st != LLAVANEXT_OK)
        return cli_lib_error("prefill", st);
    if (r->dump) {
        const float *logits;
        int32_t V;
        if (llavanext_generator_logits(&logits, &V, g) == LLAVANEXT_OK)
            cli_dump_prompt(r->dump, llavanext_generator_tokens(g), llavanext_generator_position(g), logits, V);
    }
    t0 = cli_now();
    st = llavanext_generator_generate(g, on_piece, ss);
    r->t.generate += cli_now() - t0;
    if (ss->print) {
        fputc('\n', stdout);
        fflush(stdout);
    }
    if (st != LLAVANEXT_OK)
        return cli_lib_error("generation", st);
    return CLI_OK;
}

static void print_json(request *r, llavanext_generator *g, stream_state *ss, int64_t prompt_tokens)
{
    json_t *o = json_pack("{s:I, s:O, s:s, s:i, s:{s:f, s:f, s:f, s:f, s:f}, s:f, s:i, s:i}", "prompt_tokens",
                          (json_int_t)prompt_tokens, "generated_ids", ss->ids, "text", ss->text ? ss->text : "",
                          "frames", (int)r->total_frames, "timings", "load", r->t.load, "sample", r->t.sample, "encode",
                          r->t.encode, "prefill", r->t.prefill, "generate", r->t.generate, "rope_scale", r->rope_scale,
                          "context_length", (int)llavanext_generator_context_length(g), "cache_hits", r->cache_hits);
    char *s = json_dumps(o, JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

static int chat_loop(request *r, llavanext_generator *g, stream_state *ss, const char *first_render)
{
    char *first = conversation_json(r->o, r->o->prompt);
    json_t *conv = json_loads(first, 0, NULL);
    free(first);
    char *prev = strdup(first_render);
    char line[8192];
    int rc = CLI_OK;
    for (;;) {
        json_array_append_new(conv, json_pack("{s:s, s:[{s:s, s:s}]}", "role", "assistant", "content", "type", "text",
                                              "text", ss->text ? ss->text : ""));
        fprintf(stderr, "> ");
        fflush(stderr);
        if (!fgets(line, sizeof line, stdin))
            break;
        line[strcspn(line, "\n")] = '\0';
        if (!line[0])
            continue;
        json_array_append_new(conv, json_pack("{s:s, s:[{s:s, s:s}]}", "role", "user", "content", "type", "text", "text",
                                              line));
        char *msgs = json_dumps(conv, 0), *full;
        llavanext_status st = llavanext_model_render_chat(&full, r->model, msgs, 1);
        free(msgs);
        if (st != LLAVANEXT_OK) {
            rc = cli_lib_error("rendering the conversation", st);
            break;
        }
        /* feed only what is new: the rendering of the turns the cache already holds is a prefix */
        size_t pl = strlen(prev), al = ss->len;
        const char *delta = NULL;
        if (strncmp(full, prev, pl) == 0) {
            const char *rest = full + pl;
            while (*rest == ' ' && al && ss->text[0] != ' ')
                rest++;
            if (strncmp(rest, ss->text ? ss->text : "", al) == 0)
                delta = rest + al;
        }
        ss->len = 0;
        if (ss->text)
            ss->text[0] = '\0';
        if (delta) {
            rc = answer(r, g, delta, 0, ss);
        } else {
            llavanext_generator_reset(g);
            rc = answer(r, g, full, 1, ss);
        }
        free(prev);
        prev = full;
        if (rc != CLI_OK)
            break;
    }
    free(prev);
    json_decref(conv);
    return rc;
}

int cli_cmd_run(int argc, char **argv, int chat)
{
    cli_run_opts o;
    int rc = parse_args(&o, argc, argv);
    if (rc != CLI_OK)
        return rc;
    if (chat && (o.n_media != 1 || !o.media[0].is_video))
        return cli_usage_error("chat takes exactly one --video");
    if (chat && (o.json || o.dump))
        return cli_usage_error("chat does not take --json or --dump");
    if (o.dump && o.cache_dir)
        return cli_usage_error("--dump writes the intermediate tensors a cached answer skips: drop --cache-dir");
    request r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    double t0 = cli_now();
    r.model = cli_load_model_weights(o.model, o.load_read ? LLAVANEXT_LOAD_READ : LLAVANEXT_LOAD_MMAP, o.precision,
                                     o.weights, o.threads);
    r.t.load = cli_now() - t0;
    if (!r.model)
        return CLI_FAIL;
    llavanext_vision_encoder *enc = NULL;
    llavanext_pooler *pool = NULL;
    llavanext_generator *g = NULL;
    stream_state ss = { !o.json, json_array(), NULL, 0, 0 };
    char *msgs = conversation_json(&o, o.prompt);
    llavanext_status st = llavanext_model_render_chat(&r.prompt, r.model, msgs, 1);
    free(msgs);
    if (st != LLAVANEXT_OK)
        rc = cli_lib_error("rendering the chat template", st);
    if (rc == CLI_OK)
        rc = open_media(&r);
    if (rc == CLI_OK)
        rc = scan_prompt(&r);
    if (rc == CLI_OK)
        rc = check_budget(&r);
    if (rc == CLI_OK && o.dump && !(r.dump = cli_dump_create()))
        rc = CLI_FAIL;
    if (rc == CLI_OK && o.cache_dir && (st = llavanext_embedding_cache_open(&r.cache, o.cache_dir, NULL)) != LLAVANEXT_OK)
        rc = cli_lib_error("--cache-dir", st);
    if (rc == CLI_OK && o.n_media > 0) {
        llavanext_vision_encoder_params ep;
        llavanext_vision_encoder_params_init(&ep, sizeof ep);
        ep.threads = o.threads;
        ep.progress = cli_progress;
        ep.progress_user_data = &r.mute_encoder;
        llavanext_pooler_params pp;
        llavanext_pooler_params_init(&pp, sizeof pp);
        pp.threads = o.threads;
        pp.pool_stride = r.pool_stride;
        pp.pool_mode = o.pool_mode;
        if ((st = llavanext_vision_encoder_create(&enc, r.model, &ep)) != LLAVANEXT_OK ||
            (st = llavanext_pooler_create(&pool, r.model, &pp)) != LLAVANEXT_OK)
            rc = cli_lib_error("creating the vision encoder", st);
        if (rc == CLI_OK)
            rc = encode_media(&r, enc, pool);
    }
    if (rc == CLI_OK && !(g = make_generator(&r)))
        rc = CLI_FAIL;
    if (rc == CLI_OK)
        rc = answer(&r, g, r.prompt, 1, &ss);
    int64_t prompt_tokens = g ? llavanext_generator_position(g) - (int64_t)json_array_size(ss.ids) : 0;
    if (rc == CLI_OK && o.json)
        print_json(&r, g, &ss, prompt_tokens);
    if (rc == CLI_OK && r.dump && cli_dump_save(r.dump, o.dump) != 0)
        rc = CLI_FAIL;
    if (rc == CLI_OK && !o.json && isatty(2))
        fprintf(stderr, "[load %.2fs, sampling %.2fs, encoding %.2fs, prefill %.2fs (%lld tokens), generation %.2fs "
                "(%zu tokens)]\n", r.t.load, r.t.sample, r.t.encode, r.t.prefill, (long long)prompt_tokens,
                r.t.generate, json_array_size(ss.ids));
    if (rc == CLI_OK && chat)
        rc = chat_loop(&r, g, &ss, r.prompt);
    cli_dump_free(r.dump);
    llavanext_embedding_cache_free(r.cache);
    for (int i = 0; i < o.n_media; i++) {
        llavanext_frame_sampler_free(r.samplers[i]);
        llavanext_tensor_free(r.enc[i].emb);
    }
    llavanext_generator_free(g);
    llavanext_pooler_free(pool);
    llavanext_vision_encoder_free(enc);
    llavanext_free(r.prompt);
    llavanext_model_free(r.model);
    json_decref(ss.ids);
    free(ss.text);
    return rc;
}
