/* llavanext_model: loading a checkpoint directory, accessors, tokenizer and chat template. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/file.h"
#include "../io/json.h"
#include "../vision/onevision.h"

LLAVANEXT_API void llavanext_model_params_init(llavanext_model_params *p, size_t size)
{
    llavanext_model_params d;
    memset(&d, 0, sizeof d);
    d.load_mode = LLAVANEXT_LOAD_MMAP;
    d.precision = LLAVANEXT_PRECISION_F32;
    lnx_params_init(p, size, &d, sizeof d);
}

/* The longest file name joined to the model directory ("model.safetensors.index.json" and the
 * like), so that a directory path that fits leaves room for every join. */
#define LONGEST_NAME 64

static void join(char *buf, size_t cap, const char *dir, const char *name)
{
    /* llavanext_model_load checked that dir + LONGEST_NAME fits */
    lnx_status st = lnx_path_join(buf, cap, dir, name);
    (void)st;
}

/* Optional JSON file: absent -> *out NULL and OK. */
static lnx_status load_optional_json(json_t **out, const char *dir, const char *name)
{
    char path[4096];
    join(path, sizeof path, dir, name);
    *out = NULL;
    if (!lnx_path_exists(path))
        return LNX_OK;
    return lnx_json_load_file(out, path);
}

static lnx_status load_template(llavanext_model *m)
{
    json_t *ct = NULL, *tc = NULL;
    const char *src = NULL;
    char origin[64] = "";
    lnx_status rc = load_optional_json(&ct, m->dir, "chat_template.json");
    if (rc == LNX_OK && ct) {
        src = json_string_value(json_object_get(ct, "chat_template"));
        snprintf(origin, sizeof origin, "chat_template.json");
    }
    if (rc == LNX_OK && !src) {
        rc = load_optional_json(&tc, m->dir, "tokenizer_config.json");
        const json_t *t = tc ? json_object_get(tc, "chat_template") : NULL;
        if (json_is_string(t)) {
            src = json_string_value(t);
        } else if (json_is_array(t)) {
            /* a list of named templates: take "default" */
            size_t i;
            json_t *e;
            json_array_foreach(t, i, e) {
                const char *name = json_string_value(json_object_get(e, "name"));
                if (name && strcmp(name, "default") == 0)
                    src = json_string_value(json_object_get(e, "template"));
            }
        }
        snprintf(origin, sizeof origin, "tokenizer_config.json");
    }
    if (rc == LNX_OK && src) {
        rc = lnx_template_parse(&m->tmpl, src, strlen(src));
        if (rc != LNX_OK)
            lnx_error_prefix("%s/%s: chat_template", m->dir, origin);
    }
    json_decref(ct);
    json_decref(tc);
    return rc;
}

static lnx_status load_configs(llavanext_model *m)
{
    char path[4096];
    join(path, sizeof path, m->dir, "config.json");
    json_t *cj;
    LNX_TRY(lnx_json_load_file(&cj, path));
    lnx_status rc = lnx_config_parse(&m->cfg, cj, path);
    json_decref(cj);
    if (rc != LNX_OK)
        return rc;
    json_t *pj;
    LNX_TRY(load_optional_json(&pj, m->dir, "preprocessor_config.json"));
    join(path, sizeof path, m->dir, "preprocessor_config.json");
    rc = lnx_config_parse_processor(&m->cfg, pj, path);
    json_decref(pj);
    if (rc != LNX_OK)
        return rc;
    json_t *gj;
    LNX_TRY(load_optional_json(&gj, m->dir, "generation_config.json"));
    join(path, sizeof path, m->dir, "generation_config.json");
    rc = lnx_config_parse_generation(&m->cfg, gj, path);
    json_decref(gj);
    if (rc != LNX_OK)
        return rc;
    const lnx_processor_cfg *p = &m->cfg.proc;
    lnx_preproc_cfg_default(&m->pre, m->cfg.vision.image_size);
    m->pre.shortest_edge = p->shortest_edge;
    m->pre.crop_h = p->crop_h;
    m->pre.crop_w = p->crop_w;
    memcpy(m->pre.mean, p->mean, sizeof p->mean);
    memcpy(m->pre.std, p->std, sizeof p->std);
    m->pre.rescale_factor = p->rescale_factor;
    m->pre.do_resize = p->do_resize;
    m->pre.do_center_crop = p->do_center_crop;
    m->pre.do_rescale = p->do_rescale;
    m->pre.do_normalize = p->do_normalize;
    m->pre.resample = p->resample;
    m->pre.resize_h = p->resize_h;
    m->pre.resize_w = p->resize_w;
    return LNX_OK;
}

static lnx_status load_tokenizer(llavanext_model *m)
{
    char tj[4096], tc[4096];
    join(tj, sizeof tj, m->dir, "tokenizer.json");
    join(tc, sizeof tc, m->dir, "tokenizer_config.json");
    if (!lnx_path_exists(tj))
        return lnx_error(LNX_E_IO, "%s: missing (only tokenizer.json tokenizers are supported)", tj);
    LNX_TRY(lnx_tokenizer_load(&m->tok, tj, tc)); /* an absent tokenizer_config.json is skipped there */
    if (lnx_tokenizer_vocab_size(m->tok) > m->cfg.text.vocab)
        return lnx_error(LNX_E_FORMAT, "%s: the tokenizer has %d tokens but the model's vocabulary is %d", tj,
                         (int)lnx_tokenizer_vocab_size(m->tok), (int)m->cfg.text.vocab);
    return LNX_OK;
}

/* Progress units: the tensors converted on load (lnx_model_convert), then the three binding steps. */
static lnx_status load_progress(const llavanext_model_params *p, int64_t converted, int64_t done)
{
    if (p->progress && p->progress(LLAVANEXT_STAGE_LOAD, converted + done, converted + 3, p->progress_user_data))
        return lnx_error(LNX_E_ABORTED, "model loading aborted");
    return LNX_OK;
}

static lnx_status load_weights(llavanext_model *m, int mode, const llavanext_model_params *p)
{
    char path[4096];
    join(path, sizeof path, m->dir, "model.safetensors.index.json");
    int st_mode = mode == LLAVANEXT_LOAD_READ ? LNX_ST_READ : LNX_ST_MMAP;
    if (lnx_path_exists(path)) {
        LNX_TRY(lnx_st_open_index(&m->st, path, st_mode));
    } else {
        join(path, sizeof path, m->dir, "model.safetensors");
        if (!lnx_path_exists(path))
            return lnx_error(LNX_E_IO, "%s: neither model.safetensors nor model.safetensors.index.json exists", m->dir);
        LNX_TRY(lnx_st_open(&m->st, path, st_mode));
    }
    if (p->check_finite)
        LNX_TRY(lnx_wstore_check_finite(m->st));
    LNX_TRY(lnx_wstore_create(&m->ws, m->st));
    /* the two tensor-name layouts in the wild */
    int newer = lnx_wstore_has(m->ws, "model.language_model.embed_tokens.weight");
    const char *vis = newer ? "model.vision_tower.vision_model." : "vision_tower.vision_model.";
    const char *mm = newer ? "model." : "";
    const char *body = newer ? "model.language_model." : "language_model.model.";
    const char *head = newer ? "lm_head.weight" : "language_model.lm_head.weight";
    if (m->cfg.tie_word_embeddings || !lnx_wstore_has(m->ws, head)) {
        if (!m->cfg.tie_word_embeddings)
            lnx_log(&m->log, LNX_LOG_WARNING, "%s is absent: tying the LM head to the embeddings", head);
        head = NULL;
    }
    int64_t converted = 0;
    LNX_TRY(lnx_model_convert(m, p, &converted));
    /* progress in the three binding steps: vision tower, projector, language model */
    LNX_TRY(load_progress(p, converted, 0));
    LNX_TRY(lnx_clip_bind(&m->clip, &m->cfg, m->ws, vis));
    LNX_TRY(load_progress(p, converted, 1));
    LNX_TRY(lnx_projector_bind(&m->proj, &m->cfg, m->ws, mm));
    LNX_TRY(load_progress(p, converted, 2));
    LNX_TRY(lnx_llama_bind(&m->llama, &m->cfg.text, m->ws, body, head));
    LNX_TRY(load_progress(p, converted, 3));
    LNX_TRY(lnx_gemm_ctx_create(&m->gemm, p->precision));
    m->clip.gemm = m->gemm;
    m->proj.gemm = m->gemm;
    m->llama.gemm = m->gemm;
    if (lnx_gemm_ctx_precision(m->gemm) == LNX_PRECISION_BF16) {
        lnx_log(&m->log, LNX_LOG_INFO, "compute precision: bf16");
    } else if (p->precision == LNX_PRECISION_AUTO) {
        /* auto on a CPU without BF16 instructions: the float32 path, said so (never a silent
         * emulation of bf16 products, which would be slower than float32 here) */
        const char *why = "";
        lnx_gemm_bf16_available(&why);
        lnx_log(&m->log, LNX_LOG_INFO, "compute precision: f32 (auto: %s; float32 products of the stored weights)",
                why);
    } else {
        lnx_log(&m->log, LNX_LOG_INFO, "compute precision: f32");
    }
    return LNX_OK;
}

static void model_destroy(llavanext_model *m)
{
    lnx_llama_unbind(&m->llama);
    lnx_clip_unbind(&m->clip);
    lnx_gemm_ctx_free(m->gemm);
    lnx_wstore_free(m->ws);
    lnx_st_close(m->st);
    lnx_template_free(m->tmpl);
    lnx_tokenizer_free(m->tok);
    free(m->dir);
    free(m);
}

void lnx_model_retain(llavanext_model *m)
{
    atomic_fetch_add(&m->refs, 1);
}

void lnx_model_release(llavanext_model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        model_destroy(m);
}

LLAVANEXT_API llavanext_status llavanext_model_load(llavanext_model **out, const char *dir,
                                                    const llavanext_model_params *params)
{
    API_CHECK(out, "llavanext_model_load: out is NULL");
    *out = NULL;
    API_CHECK(dir, "llavanext_model_load: dir is NULL");
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    LNX_TRY(lnx_params_copy(&p, sizeof p, params, "llavanext_model_params"));
    API_CHECK(p.load_mode >= 0 && p.load_mode <= 2, "llavanext_model_params: load_mode %d is unknown", (int)p.load_mode);
    API_CHECK(p.precision >= 0 && p.precision <= 2, "llavanext_model_params: precision %d is unknown", (int)p.precision);
    API_CHECK(p.weights >= 0 && p.weights <= 3, "llavanext_model_params: weights %d is unknown", (int)p.weights);
    API_CHECK(p.threads >= 0, "llavanext_model_params: threads %d is negative", (int)p.threads);
    if (strlen(dir) + 1 + LONGEST_NAME >= 4096)
        return lnx_error(LNX_E_INVALID, "model directory path too long (%zu bytes; at most %d): %.64s...", strlen(dir),
                         4096 - 2 - LONGEST_NAME, dir);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lnx_error(LNX_E_IO, "%s: not a directory", dir);
    llavanext_model *m = calloc(1, sizeof *m);
    if (!m)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    atomic_init(&m->refs, 1);
    m->log.fn = p.log;
    m->log.user_data = p.log_user_data;
    m->dir = lnx_strdup(dir);
    lnx_status rc = m->dir ? LNX_OK : lnx_error(LNX_E_NOMEM, "out of memory");
    if (rc == LNX_OK)
        rc = load_configs(m);
    if (rc == LNX_OK)
        rc = load_tokenizer(m);
    if (rc == LNX_OK)
        rc = load_template(m);
    if (rc == LNX_OK && p.load_mode != LLAVANEXT_LOAD_NO_WEIGHTS)
        rc = load_weights(m, p.load_mode, &p);
    if (rc != LNX_OK) {
        model_destroy(m);
        return rc;
    }
    lnx_log(&m->log, LNX_LOG_INFO, "loaded %s: vision %dx%d layers, text %d layers, hidden %d", dir,
            (int)m->cfg.vision.layers, (int)m->cfg.vision.hidden, (int)m->cfg.text.layers, (int)m->cfg.text.hidden);
    *out = m;
    return LNX_OK;
}

LLAVANEXT_API void llavanext_model_free(llavanext_model *model)
{
    lnx_model_release(model);
}

LLAVANEXT_API int32_t llavanext_model_token_id(const llavanext_model *m, int32_t which)
{
    if (!m)
        return -1;
    switch (which) {
    case LLAVANEXT_TOKEN_BOS: return lnx_tokenizer_bos_id(m->tok);
    case LLAVANEXT_TOKEN_EOS: return lnx_tokenizer_eos_id(m->tok);
    case LLAVANEXT_TOKEN_PAD: return lnx_tokenizer_pad_id(m->tok);
    case LLAVANEXT_TOKEN_UNK: return lnx_tokenizer_unk_id(m->tok);
    case LLAVANEXT_TOKEN_VIDEO: return m->cfg.video_token;
    case LLAVANEXT_TOKEN_IMAGE: return m->cfg.image_token;
    default: return -1;
    }
}

LLAVANEXT_API int32_t llavanext_model_vocab_size(const llavanext_model *m)
{
    return m ? m->cfg.text.vocab : 0;
}

LLAVANEXT_API int64_t llavanext_model_context_length(const llavanext_model *m, double rope_scale)
{
    /* the generator's limit on the factor; beyond it the product would not fit an int64_t */
    if (!m || isnan(rope_scale) || rope_scale > 1024.0)
        return 0;
    double f = rope_scale > 0 ? rope_scale : m->cfg.text.rope_factor;
    return (int64_t)((double)m->cfg.text.max_pos * f);
}

LLAVANEXT_API int32_t llavanext_model_tokens_per_frame(const llavanext_model *m, int32_t pool_stride)
{
    if (!m || pool_stride < 0)
        return 0;
    int32_t s = pool_stride ? pool_stride : m->cfg.pool_stride;
    int32_t g = m->cfg.vision.image_size / m->cfg.vision.patch_size;
    /* LLaVA-OneVision resizes each frame's grid to ceil(g / s) per side instead of pooling */
    int32_t o = m->cfg.family == LNX_FAMILY_ONEVISION ? lnx_onevision_pool_side(g, s) : lnx_pool_out_side(g, s);
    return o * o;
}

static llavanext_status api_model_describe(char **out, const llavanext_model *m);

LLAVANEXT_API llavanext_status llavanext_model_describe(char **out, const llavanext_model *m)
{
    return lnx_err_record(m ? &m->err : NULL, api_model_describe(out, m));
}

static llavanext_status api_model_describe(char **out, const llavanext_model *m)
{
    API_CHECK(out, "llavanext_model_describe: out is NULL");
    *out = NULL;
    API_CHECK(m, "llavanext_model_describe: model is NULL");
    const lnx_model_cfg *c = &m->cfg;
    json_t *pins = json_array();
    for (int32_t i = 0; i < c->n_pinpoints; i++)
        json_array_append_new(pins, json_pack("[i, i]", (int)c->pinpoints[i][0], (int)c->pinpoints[i][1]));
    json_t *o = json_pack(
        "{s:s, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:s}, s:{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:s, s:f, s:i, s:b}, "
        "s:{s:s, s:i, s:i, s:s, s:i}, s:o, s:{s:I, s:I}, s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:b}",
        "directory", m->dir,
        "vision", "hidden_size", (int)c->vision.hidden, "layers", (int)c->vision.layers, "layers_run",
        (int)(c->vision_feature_layer < 0 ? c->vision.layers + 1 + c->vision_feature_layer : c->vision_feature_layer),
        "heads", (int)c->vision.heads, "image_size", (int)c->vision.image_size, "patch_size", (int)c->vision.patch_size,
        "activation", lnx_act_name(c->vision.act),
        "text", "model_type", c->text.model_type, "hidden_size", (int)c->text.hidden, "layers", (int)c->text.layers,
        "heads", (int)c->text.heads, "kv_heads", (int)c->text.kv_heads, "head_dim", (int)c->text.head_dim,
        "intermediate_size", (int)c->text.intermediate, "vocab_size", (int)c->text.vocab, "rope_theta", c->text.rope_theta,
        "rope_scaling_factor", c->text.rope_factor, "rope_scaling_type", c->text.rope_type == LNX_ROPE_LINEAR ? "linear" : "none",
        "rms_norm_eps", (double)c->text.rms_eps, "max_position_embeddings", (int)c->text.max_pos,
        "tie_word_embeddings", c->tie_word_embeddings,
        "video", "pool_mode", c->pool_mode == LNX_POOL_MAX ? "max" : c->pool_mode == LNX_POOL_BILINEAR ? "bilinear" : "average",
        "pool_stride", (int)c->pool_stride,
        "tokens_per_frame", (int)llavanext_model_tokens_per_frame(m, 0),
        "select_strategy", c->select_strategy == LNX_SELECT_FULL ? "full" : "default",
        "vision_feature_layer", (int)c->vision_feature_layer,
        "image_grid_pinpoints", pins,
        "context_length", "scaled", (json_int_t)llavanext_model_context_length(m, 0), "unscaled",
        (json_int_t)llavanext_model_context_length(m, 1),
        "tokens", "bos", (int)llavanext_model_token_id(m, LLAVANEXT_TOKEN_BOS), "eos",
        (int)llavanext_model_token_id(m, LLAVANEXT_TOKEN_EOS), "pad", (int)llavanext_model_token_id(m, LLAVANEXT_TOKEN_PAD),
        "unk", (int)llavanext_model_token_id(m, LLAVANEXT_TOKEN_UNK), "video", (int)c->video_token, "image",
        (int)c->image_token,
        "weights_loaded", m->st != NULL);
    if (!o)
        return lnx_error(LNX_E_NOMEM, "out of memory describing the model");
    /* the family and, for LLaVA-OneVision, its image token rule (added keys, after the others) */
    json_object_set_new(o, "family", json_string(c->family == LNX_FAMILY_ONEVISION ? "llava_onevision" : "llava_next_video"));
    json_object_set_new(json_object_get(o, "vision"), "model_type",
                        json_string(c->vision.siglip ? "siglip_vision_model" : "clip_vision_model"));
    if (c->anyres_max)
        json_object_set_new(o, "anyres_max", json_integer(c->anyres_max));
    *out = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return *out ? LNX_OK : lnx_error(LNX_E_NOMEM, "out of memory");
}

static llavanext_status api_model_tokenize(int32_t **out, size_t *out_count, const llavanext_model *m,
                                                        const char *text, size_t text_len, int32_t add_bos);

LLAVANEXT_API llavanext_status llavanext_model_tokenize(int32_t **out, size_t *out_count, const llavanext_model *m,
                                                        const char *text, size_t text_len, int32_t add_bos)
{
    return lnx_err_record(m ? &m->err : NULL, api_model_tokenize(out, out_count, m, text, text_len, add_bos));
}

static llavanext_status api_model_tokenize(int32_t **out, size_t *out_count, const llavanext_model *m,
                                                        const char *text, size_t text_len, int32_t add_bos)
{
    API_CHECK(out && out_count, "llavanext_model_tokenize: out or out_count is NULL");
    *out = NULL;
    *out_count = 0;
    API_CHECK(m && (text || text_len == 0), "llavanext_model_tokenize: model or text is NULL");
    return lnx_tokenizer_encode(m->tok, text ? text : "", text_len, add_bos != 0, out, out_count);
}

static llavanext_status api_model_detokenize(char **out, const llavanext_model *m, const int32_t *ids,
                                                          size_t count, int32_t skip_special);

LLAVANEXT_API llavanext_status llavanext_model_detokenize(char **out, const llavanext_model *m, const int32_t *ids,
                                                          size_t count, int32_t skip_special)
{
    return lnx_err_record(m ? &m->err : NULL, api_model_detokenize(out, m, ids, count, skip_special));
}

static llavanext_status api_model_detokenize(char **out, const llavanext_model *m, const int32_t *ids,
                                                          size_t count, int32_t skip_special)
{
    API_CHECK(out, "llavanext_model_detokenize: out is NULL");
    *out = NULL;
    API_CHECK(m && (ids || count == 0), "llavanext_model_detokenize: model or ids is NULL");
    int32_t V = lnx_tokenizer_vocab_size(m->tok);
    for (size_t i = 0; i < count; i++)
        API_CHECK(ids[i] >= 0 && ids[i] < V, "llavanext_model_detokenize: id %d at position %zu is outside 0..%d",
                  (int)ids[i], i, (int)V - 1);
    size_t len;
    static const int32_t none = 0;
    return lnx_tokenizer_decode(m->tok, ids ? ids : &none, count, skip_special != 0, out, &len);
}

static llavanext_status api_model_render_chat(char **out, const llavanext_model *m,
                                                           const char *messages_json, int32_t add_generation_prompt);

LLAVANEXT_API llavanext_status llavanext_model_render_chat(char **out, const llavanext_model *m,
                                                           const char *messages_json, int32_t add_generation_prompt)
{
    return lnx_err_record(m ? &m->err : NULL, api_model_render_chat(out, m, messages_json, add_generation_prompt));
}

static llavanext_status api_model_render_chat(char **out, const llavanext_model *m,
                                                           const char *messages_json, int32_t add_generation_prompt)
{
    API_CHECK(out, "llavanext_model_render_chat: out is NULL");
    *out = NULL;
    API_CHECK(m && messages_json, "llavanext_model_render_chat: model or messages_json is NULL");
    if (!m->tmpl)
        return lnx_error(LNX_E_TEMPLATE, "%s: the checkpoint has no chat template (chat_template.json or "
                         "tokenizer_config.json's chat_template)", m->dir);
    json_t *msgs;
    LNX_TRY(lnx_json_load_buffer(&msgs, messages_json, strlen(messages_json), "messages"));
    if (!json_is_array(msgs)) {
        json_decref(msgs);
        return lnx_error(LNX_E_INVALID, "messages: must be a JSON array of {\"role\", \"content\"} objects");
    }
    const char *bos = lnx_tokenizer_piece(m->tok, lnx_tokenizer_bos_id(m->tok));
    const char *eos = lnx_tokenizer_piece(m->tok, lnx_tokenizer_eos_id(m->tok));
    const char *unk = lnx_tokenizer_piece(m->tok, lnx_tokenizer_unk_id(m->tok));
    size_t len;
    lnx_status rc = lnx_template_render(m->tmpl, msgs, add_generation_prompt != 0, bos, eos, unk, out, &len);
    json_decref(msgs);
    return rc;
}

LLAVANEXT_API size_t llavanext_model_last_error(const llavanext_model *handle, char *buf, size_t size)
{
    return lnx_err_copy(handle ? &handle->err : NULL, buf, size);
}
