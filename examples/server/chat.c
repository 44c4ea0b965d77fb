/* The OpenAI chat-completions request and response formats. A request's messages become the
 * Hugging Face messages the checkpoint's chat template takes ({"type": "video"} where a video
 * was), its media are loaded (media.c) and its sampling fields checked; everything a client can
 * get wrong is answered here with a 4xx before the request is queued. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

char *error_body(const char *message, const char *type, const char *code)
{
    json_t *o = json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", message, "type", type, "param", "code", code);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

#define BAD(...)                                                                   \
    do {                                                                           \
        job_fail(job, 400, "invalid_request_error", "invalid_request", __VA_ARGS__); \
        return -1;                                                                 \
    } while (0)

static const char *part_url(json_t *part, const char *field)
{
    json_t *v = json_object_get(part, field);
    if (json_is_string(v))
        return json_string_value(v);
    return json_string_value(json_object_get(v, "url"));
}

/* One content part into the template's form; media parts also load their bytes. */
static int convert_part(srv_job *job, const srv_config *cfg, json_t *part, json_t *out, int32_t frames, double fps)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    if (!type)
        BAD("every content part needs a \"type\"");
    if (strcmp(type, "text") == 0) {
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t))
            BAD("a text content part needs a string \"text\"");
        json_array_append_new(out, json_pack("{s:s, s:O}", "type", "text", "text", t));
        return 0;
    }
    int is_video;
    const char *url = NULL;
    char *owned = NULL;
    if (strcmp(type, "image_url") == 0) {
        is_video = 0;
        url = part_url(part, "image_url");
    } else if (strcmp(type, "video_url") == 0) {
        is_video = 1;
        url = part_url(part, "video_url");
    } else if (strcmp(type, "input_video") == 0) {
        /* llama.cpp's form: {"type": "input_video", "input_video": {"data": base64, "format": ...}} */
        is_video = 1;
        const char *data = json_string_value(json_object_get(json_object_get(part, "input_video"), "data"));
        if (data) {
            size_t n = strlen(data);
            owned = malloc(n + 32);
            if (owned)
                snprintf(owned, n + 32, "data:video/*;base64,%s", data);
            url = owned;
        }
    } else {
        job_fail(job, 400, "invalid_request_error", "unsupported_content_type",
                 "unsupported content part type '%.64s' (text, image_url, video_url, input_video)", type);
        return -1;
    }
    if (!url) {
        free(owned);
        BAD("the %s content part has no URL or data", type);
    }
    if (job->n_media == SRV_MAX_MEDIA) {
        free(owned);
        BAD("at most %d images and videos per request", SRV_MAX_MEDIA);
    }
    srv_media *m = &job->media[job->n_media];
    memset(m, 0, sizeof *m);
    m->is_video = is_video;
    m->frames = is_video ? frames : 0;
    m->fps = is_video ? fps : 0;
    int r = media_load(m, job, cfg, url);
    free(owned);
    if (r != 0)
        return -1;
    job->n_media++;
    json_array_append_new(out, json_pack("{s:s}", "type", is_video ? "video" : "image"));
    return 0;
}

static int convert_messages(srv_job *job, const srv_config *cfg, json_t *msgs, int32_t frames, double fps)
{
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        BAD("\"messages\" must be a non-empty array");
    json_t *out = json_array();
    size_t i;
    json_t *msg;
    json_array_foreach(msgs, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "developer"))) {
            json_decref(out);
            BAD("messages[%zu]: role must be system, user or assistant", i);
        }
        if (strcmp(role, "developer") == 0)
            role = "system";
        json_t *content = json_object_get(msg, "content"), *parts = json_array();
        int r = 0;
        if (json_is_string(content)) {
            json_array_append_new(parts, json_pack("{s:s, s:O}", "type", "text", "text", content));
        } else if (json_is_array(content)) {
            size_t k;
            json_t *part;
            json_array_foreach(content, k, part) {
                if ((r = convert_part(job, cfg, part, parts, frames, fps)) != 0)
                    break;
            }
        } else if (!json_is_null(content) || strcmp(role, "assistant") != 0) {
            job_fail(job, 400, "invalid_request_error", "invalid_request",
                     "messages[%zu]: content must be a string or an array of parts", i);
            r = -1;
        }
        if (r != 0) {
            json_decref(parts);
            json_decref(out);
            return -1;
        }
        json_array_append_new(out, json_pack("{s:s, s:o}", "role", role, "content", parts));
    }
    job->messages = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return job->messages ? 0 : -1;
}

static int get_number(srv_job *job, json_t *req, const char *key, double lo, double hi, double *out)
{
    json_t *v = json_object_get(req, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
        job_fail(job, 400, "invalid_request_error", "invalid_request", "\"%s\" must be a number from %g to %g", key, lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 1;
}

static int get_int(srv_job *job, json_t *req, const char *key, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(req, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        job_fail(job, 400, "invalid_request_error", "invalid_request", "\"%s\" must be an integer from %lld to %lld", key,
                 (long long)lo, (long long)hi);
        return -1;
    }
    *out = json_integer_value(v);
    return 1;
}

static int parse_stops(srv_job *job, json_t *stop)
{
    if (!stop || json_is_null(stop))
        return 0;
    json_t *list = json_is_string(stop) ? json_pack("[O]", stop) : json_incref(stop);
    int r = 0;
    if (!json_is_array(list) || json_array_size(list) > SRV_MAX_STOPS) {
        job_fail(job, 400, "invalid_request_error", "invalid_request", "\"stop\" must be a string or up to %d strings",
                 SRV_MAX_STOPS);
        r = -1;
    }
    size_t i;
    json_t *s;
    if (r == 0)
        json_array_foreach(list, i, s) {
            const char *v = json_string_value(s);
            if (!v || !*v || strlen(v) > 64) {
                job_fail(job, 400, "invalid_request_error", "invalid_request", "each stop string must be 1 to 64 bytes");
                r = -1;
                break;
            }
            job->stops[job->n_stops++] = strdup(v);
        }
    json_decref(list);
    return r;
}

int chat_parse(srv_job *job, const srv_config *cfg, const char *body, size_t len)
{
    json_error_t err;
    json_t *req = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!req) {
        job_fail(job, 400, "invalid_request_error", "invalid_json", "the body is not valid JSON: %s (line %d, column %d)",
                 err.text, err.line, err.column);
        return -1;
    }
    int r = -1;
    json_int_t n = 0, frames = SRV_DEFAULT_FRAMES, seed = 0, max_tokens = SRV_DEFAULT_MAX_TOKENS;
    double temperature = -1, top_p = -1, fps = 0;
    int have_frames;
    json_t *stream = json_object_get(req, "stream");
    if (!json_is_object(req)) {
        job_fail(job, 400, "invalid_request_error", "invalid_request", "the body must be a JSON object");
        goto out;
    }
    if (get_int(job, req, "n", 1, 1, &n) < 0 || get_number(job, req, "temperature", 0, 2, &temperature) < 0 ||
        get_number(job, req, "top_p", 0, 1, &top_p) < 0 || get_int(job, req, "seed", INT64_MIN, INT64_MAX, &seed) < 0 ||
        get_number(job, req, "fps", 1e-3, 1000, &fps) < 0 ||
        (have_frames = get_int(job, req, "num_frames", 1, cfg->max_frames, &frames)) < 0 ||
        get_int(job, req, "max_tokens", 1, cfg->max_tokens, &max_tokens) < 0 ||
        get_int(job, req, "max_completion_tokens", 1, cfg->max_tokens, &max_tokens) < 0 ||
        parse_stops(job, json_object_get(req, "stop")) < 0)
        goto out;
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        job_fail(job, 400, "invalid_request_error", "invalid_request", "\"stream\" must be true or false");
        goto out;
    }
    json_t *tools = json_object_get(req, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0) {
        job_fail(job, 400, "invalid_request_error", "unsupported_parameter", "tools are not supported by this server");
        goto out;
    }
    job->stream = json_is_true(stream);
    job->include_usage = json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
    job->max_tokens = (int32_t)max_tokens;
    job->temperature = (float)temperature;
    job->top_p = (float)top_p;
    job->seed = (uint64_t)seed;
    job->has_seed = json_is_integer(json_object_get(req, "seed"));
    /* with fps, num_frames (or the server's cap) bounds the count */
    int32_t f = fps > 0 ? (int32_t)(have_frames ? frames : cfg->max_frames) : (int32_t)frames;
    r = convert_messages(job, cfg, json_object_get(req, "messages"), f, fps);
out:
    json_decref(req);
    return r;
}

const char *chat_finish_name(int finish)
{
    return finish == FINISH_LENGTH ? "length" : "stop";
}

json_t *chat_usage(const srv_job *job)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:i}}", "prompt_tokens", (json_int_t)job->prompt_tokens,
                     "completion_tokens", (json_int_t)job->completion_tokens, "total_tokens",
                     (json_int_t)(job->prompt_tokens + job->completion_tokens), "video_tokens",
                     (json_int_t)job->video_tokens, "image_tokens", (json_int_t)job->image_tokens,
                     "prompt_tokens_details", "video_tokens", (json_int_t)job->video_tokens, "image_tokens",
                     (json_int_t)job->image_tokens, "cached_tokens", 0);
}

static json_t *timings(const srv_job *job)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:i}", "sample_s", job->t_sample, "encode_s", job->t_encode, "prefill_s",
                     job->t_prefill, "generate_s", job->t_generate, "cache_hits", job->cache_hits);
}

char *chat_response(const srv_job *job, const srv_config *cfg)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s%}, s:n, s:s}], s:o, s:o}", "id", job->id, "object",
                          "chat.completion", "created", (json_int_t)job->created, "model", cfg->model_id, "choices",
                          "index", 0, "message", "role", "assistant", "content", job->text ? job->text : "",
                          job->visible, "logprobs", "finish_reason", chat_finish_name(job->finish), "usage",
                          chat_usage(job), "timings", timings(job));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static char *sse(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return NULL;
    size_t n = strlen(s) + 16;
    char *e = malloc(n);
    if (e)
        snprintf(e, n, "data: %s\n\n", s);
    free(s);
    return e;
}

char *chat_chunk(const srv_job *job, const srv_config *cfg, const char *content, size_t len, int first,
                 const char *finish_reason)
{
    json_t *delta = json_object();
    if (first)
        json_object_set_new(delta, "role", json_string("assistant"));
    if (content)
        json_object_set_new(delta, "content", json_stringn(content, len));
    json_t *choice = json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta, "logprobs", "finish_reason",
                               finish_reason ? json_string(finish_reason) : json_null());
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", job->id, "object", "chat.completion.chunk", "created",
                          (json_int_t)job->created, "model", cfg->model_id, "choices", choice);
    if (o && finish_reason && job->include_usage)
        json_object_set_new(o, "timings", timings(job));
    return sse(o);
}

char *chat_usage_chunk(const srv_job *job, const srv_config *cfg)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", job->id, "object", "chat.completion.chunk", "created",
                          (json_int_t)job->created, "model", cfg->model_id, "choices", "usage", chat_usage(job));
    return sse(o);
}
