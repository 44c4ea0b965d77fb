#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

static const struct {
    const char *name;
    lnx_act act;
} act_names[] = {
    { "quick_gelu", LNX_ACT_QUICK_GELU }, { "gelu", LNX_ACT_GELU },
    { "gelu_new", LNX_ACT_GELU_TANH },    { "gelu_pytorch_tanh", LNX_ACT_GELU_TANH },
    { "gelu_fast", LNX_ACT_GELU_TANH },   { "silu", LNX_ACT_SILU },
    { "swish", LNX_ACT_SILU },            { "relu", LNX_ACT_RELU },
};

const char *lnx_act_name(lnx_act a)
{
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++)
        if (act_names[i].act == a)
            return act_names[i].name;
    return "?";
}

static lnx_status get_act(const json_t *obj, const char *key, lnx_act def, lnx_act *out, const char *origin)
{
    const char *s;
    LNX_TRY(lnx_json_get_string(obj, key, NULL, &s, origin));
    *out = def;
    if (!s)
        return LNX_OK;
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++) {
        if (strcmp(s, act_names[i].name) == 0) {
            *out = act_names[i].act;
            return LNX_OK;
        }
    }
    return lnx_error(LNX_E_UNSUPPORTED, "%s: \"%s\": activation \"%s\" is not supported", origin, key, s);
}

static lnx_status get_float(const json_t *obj, const char *key, double def, float *out, const char *origin)
{
    double d;
    LNX_TRY(lnx_json_get_double(obj, key, def, &d, origin));
    *out = (float)d;
    return LNX_OK;
}

static lnx_status positive(int64_t v, const char *what, const char *origin)
{
    if (v <= 0 || v > (1 << 24))
        return lnx_error(LNX_E_FORMAT, "%s: %s = %lld is out of range", origin, what, (long long)v);
    return LNX_OK;
}

static lnx_status parse_vision(lnx_vision_cfg *v, const json_t *o, const char *origin, int onevision)
{
    const char *mt;
    LNX_TRY(lnx_json_get_string(o, "model_type", onevision ? "siglip_vision_model" : "clip_vision_model", &mt, origin));
    if (strcmp(mt, "siglip_vision_model") == 0)
        return lnx_siglip_parse_vision(v, o, origin);
    if (strcmp(mt, "clip_vision_model") != 0)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: vision_config.model_type \"%s\" is not supported (clip_vision_model or "
                         "siglip_vision_model)",
                         origin, mt);
    /* LlavaNextVideoConfig's default vision tower is CLIP ViT-L/14-336; the CLIPVisionConfig
     * class defaults apply to keys a given vision_config omits. */
    int have = o != NULL;
    LNX_TRY(lnx_json_get_i32(o, "hidden_size", have ? 768 : 1024, &v->hidden, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_hidden_layers", have ? 12 : 24, &v->layers, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_attention_heads", have ? 12 : 16, &v->heads, origin));
    LNX_TRY(lnx_json_get_i32(o, "intermediate_size", have ? 3072 : 4096, &v->intermediate, origin));
    LNX_TRY(lnx_json_get_i32(o, "image_size", have ? 224 : 336, &v->image_size, origin));
    LNX_TRY(lnx_json_get_i32(o, "patch_size", have ? 32 : 14, &v->patch_size, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_channels", 3, &v->channels, origin));
    LNX_TRY(get_float(o, "layer_norm_eps", 1e-5, &v->ln_eps, origin));
    LNX_TRY(get_act(o, "hidden_act", LNX_ACT_QUICK_GELU, &v->act, origin));
    return lnx_vision_cfg_check(v, origin);
}

lnx_status lnx_vision_cfg_check(const lnx_vision_cfg *v, const char *origin)
{
    LNX_TRY(positive(v->hidden, "vision_config.hidden_size", origin));
    LNX_TRY(positive(v->layers, "vision_config.num_hidden_layers", origin));
    LNX_TRY(positive(v->heads, "vision_config.num_attention_heads", origin));
    LNX_TRY(positive(v->intermediate, "vision_config.intermediate_size", origin));
    LNX_TRY(positive(v->image_size, "vision_config.image_size", origin));
    LNX_TRY(positive(v->patch_size, "vision_config.patch_size", origin));
    if (v->channels != 3)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: vision_config.num_channels = %d (only 3 is supported)", origin,
                         (int)v->channels);
    if (v->hidden % v->heads)
        return lnx_error(LNX_E_FORMAT, "%s: vision hidden_size %d is not divisible by %d heads", origin,
                         (int)v->hidden, (int)v->heads);
    if (v->image_size % v->patch_size && !v->siglip) /* SigLIP's conv drops the remainder (384 / 14) */
        return lnx_error(LNX_E_FORMAT, "%s: vision image_size %d is not a multiple of patch_size %d", origin,
                         (int)v->image_size, (int)v->patch_size);
    if (v->image_size > 4096)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: vision image_size %d is larger than 4096", origin, (int)v->image_size);
    return LNX_OK;
}

static lnx_status parse_rope(lnx_text_cfg *t, const json_t *o, const char *origin)
{
    t->rope_type = LNX_ROPE_NONE;
    t->rope_factor = 1.0;
    const json_t *rs = json_object_get(o, "rope_scaling");
    if (!rs || json_is_null(rs))
        return LNX_OK;
    if (!json_is_object(rs))
        return lnx_error(LNX_E_FORMAT, "%s: \"rope_scaling\" must be an object", origin);
    const char *type, *rtype;
    LNX_TRY(lnx_json_get_string(rs, "rope_type", NULL, &rtype, origin));
    LNX_TRY(lnx_json_get_string(rs, "type", NULL, &type, origin));
    const char *kind = rtype ? rtype : type;
    if (!kind)
        return lnx_error(LNX_E_FORMAT, "%s: rope_scaling has neither \"rope_type\" nor \"type\"", origin);
    if (strcmp(kind, "default") == 0)
        return LNX_OK;
    if (strcmp(kind, "linear") != 0)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: rope_scaling type \"%s\" is not supported (only linear)", origin, kind);
    LNX_TRY(lnx_json_get_double(rs, "factor", 1.0, &t->rope_factor, origin));
    if (!(t->rope_factor >= 1.0) || t->rope_factor > 1024.0)
        return lnx_error(LNX_E_FORMAT, "%s: rope_scaling factor %g must be in [1, 1024]", origin, t->rope_factor);
    t->rope_type = LNX_ROPE_LINEAR;
    return LNX_OK;
}

static lnx_status parse_text(lnx_text_cfg *t, const json_t *o, const char *origin, int onevision)
{
    const char *mt;
    LNX_TRY(lnx_json_get_string(o, "model_type", onevision ? "qwen2" : "llama", &mt, origin));
    if (strcmp(mt, "qwen2") == 0) {
        LNX_TRY(lnx_qwen2_parse_text(t, o, origin));
        return lnx_text_cfg_check(t, o, origin);
    }
    int mistral = strcmp(mt, "mistral") == 0;
    if (!mistral && strcmp(mt, "llama") != 0)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: text_config.model_type \"%s\" is not supported (llama, mistral or qwen2)",
                         origin, mt);
    snprintf(t->model_type, sizeof t->model_type, "%s", mt);
    /* LlamaConfig / MistralConfig class defaults */
    LNX_TRY(lnx_json_get_i32(o, "vocab_size", 32000, &t->vocab, origin));
    LNX_TRY(lnx_json_get_i32(o, "hidden_size", 4096, &t->hidden, origin));
    LNX_TRY(lnx_json_get_i32(o, "intermediate_size", mistral ? 14336 : 11008, &t->intermediate, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_hidden_layers", 32, &t->layers, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_attention_heads", 32, &t->heads, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_key_value_heads", mistral ? 8 : t->heads, &t->kv_heads, origin));
    LNX_TRY(lnx_json_get_i32(o, "max_position_embeddings", mistral ? 4096 * 32 : 2048, &t->max_pos, origin));
    if (json_is_object(o) && json_object_get(o, "sliding_window") && json_is_null(json_object_get(o, "sliding_window")))
        t->sliding_window = 0; /* explicit null: no window (Mistral v0.2) */
    else
        LNX_TRY(lnx_json_get_i32(o, "sliding_window", mistral ? 4096 : 0, &t->sliding_window, origin));
    LNX_TRY(get_float(o, "rms_norm_eps", 1e-6, &t->rms_eps, origin));
    LNX_TRY(lnx_json_get_double(o, "rope_theta", 10000.0, &t->rope_theta, origin));
    LNX_TRY(lnx_json_get_bool(o, "attention_bias", 0, &t->attention_bias, origin));
    LNX_TRY(lnx_json_get_bool(o, "mlp_bias", 0, &t->mlp_bias, origin));
    LNX_TRY(get_act(o, "hidden_act", LNX_ACT_SILU, &t->act, origin));
    LNX_TRY(parse_rope(t, o, origin));
    return lnx_text_cfg_check(t, o, origin);
}

lnx_status lnx_text_cfg_parse_rope(lnx_text_cfg *t, const json_t *o, const char *origin)
{
    return parse_rope(t, o, origin);
}

lnx_status lnx_text_cfg_check(lnx_text_cfg *t, const json_t *o, const char *origin)
{
    LNX_TRY(positive(t->hidden, "text_config.hidden_size", origin));
    LNX_TRY(positive(t->heads, "text_config.num_attention_heads", origin));
    LNX_TRY(positive(t->kv_heads, "text_config.num_key_value_heads", origin));
    LNX_TRY(positive(t->layers, "text_config.num_hidden_layers", origin));
    LNX_TRY(positive(t->intermediate, "text_config.intermediate_size", origin));
    LNX_TRY(positive(t->vocab, "text_config.vocab_size", origin));
    LNX_TRY(positive(t->max_pos, "text_config.max_position_embeddings", origin));
    int32_t def_hd = t->hidden / t->heads;
    LNX_TRY(lnx_json_get_i32(o, "head_dim", def_hd, &t->head_dim, origin));
    LNX_TRY(positive(t->head_dim, "text_config.head_dim", origin));
    if (t->head_dim % 2)
        return lnx_error(LNX_E_FORMAT, "%s: head_dim %d must be even for rotary embeddings", origin, (int)t->head_dim);
    if (t->heads % t->kv_heads)
        return lnx_error(LNX_E_FORMAT, "%s: %d attention heads are not a multiple of %d key/value heads", origin,
                         (int)t->heads, (int)t->kv_heads);
    if (t->act != LNX_ACT_SILU)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: text hidden_act \"%s\" is not supported (only silu)", origin,
                         lnx_act_name(t->act));
    if (t->sliding_window < 0)
        t->sliding_window = 0;
    if (!(t->rope_theta > 0))
        return lnx_error(LNX_E_FORMAT, "%s: rope_theta must be positive", origin);
    return LNX_OK;
}

static lnx_status parse_pinpoints(lnx_model_cfg *c, const json_t *arr, const char *origin)
{
    if (!arr || json_is_null(arr)) {
        static const int32_t def[5][2] = { { 336, 672 }, { 672, 336 }, { 672, 672 }, { 1008, 336 }, { 336, 1008 } };
        memcpy(c->pinpoints, def, sizeof def);
        c->n_pinpoints = 5;
        return LNX_OK;
    }
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > LNX_MAX_PINPOINTS)
        return lnx_error(LNX_E_FORMAT, "%s: \"image_grid_pinpoints\" must be a list of 1 to %d [height, width] pairs",
                         origin, LNX_MAX_PINPOINTS);
    c->n_pinpoints = (int32_t)json_array_size(arr);
    for (int32_t i = 0; i < c->n_pinpoints; i++) {
        const json_t *p = json_array_get(arr, (size_t)i);
        const json_t *h = json_array_get(p, 0), *w = json_array_get(p, 1);
        if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(h) || !json_is_integer(w) ||
            json_integer_value(h) <= 0 || json_integer_value(w) <= 0 || json_integer_value(h) > 65536 ||
            json_integer_value(w) > 65536)
            return lnx_error(LNX_E_FORMAT, "%s: image_grid_pinpoints[%d] is not a [height, width] pair", origin, (int)i);
        c->pinpoints[i][0] = (int32_t)json_integer_value(h);
        c->pinpoints[i][1] = (int32_t)json_integer_value(w);
    }
    return LNX_OK;
}

static void default_processor(lnx_model_cfg *c)
{
    static const float mean[3] = { 0.48145466f, 0.4578275f, 0.40821073f };
    static const float std[3] = { 0.26862954f, 0.26130258f, 0.27577711f };
    lnx_processor_cfg *p = &c->proc;
    p->shortest_edge = c->vision.image_size;
    p->crop_h = p->crop_w = c->vision.image_size;
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, std, sizeof std);
    p->rescale_factor = 1.0 / 255.0;
    p->do_resize = p->do_center_crop = p->do_rescale = p->do_normalize = 1;
    p->resample = 3;
}

static void default_generation(lnx_model_cfg *c)
{
    lnx_generation_cfg *g = &c->gen;
    g->bos_id = 1;
    g->pad_id = -1;
    g->eos_ids[0] = 2;
    g->n_eos = 1;
    g->do_sample = 0;
    g->temperature = 1.0f;
    g->top_k = 50;
    g->top_p = 1.0f;
    g->min_p = 0.0f;
    g->repetition_penalty = 1.0f;
    g->max_new_tokens = 256;
}

lnx_status lnx_config_parse(lnx_model_cfg *c, const json_t *o, const char *origin)
{
    memset(c, 0, sizeof *c);
    if (!json_is_object(o))
        return lnx_error(LNX_E_FORMAT, "%s: not a JSON object", origin);
    const char *mt;
    LNX_TRY(lnx_json_get_string(o, "model_type", NULL, &mt, origin));
    if (!mt)
        return lnx_error(LNX_E_FORMAT, "%s: no \"model_type\"", origin);
    int onevision = strcmp(mt, "llava_onevision") == 0;
    if (!onevision && strcmp(mt, "llava_next_video") != 0)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: model_type \"%s\" is not supported (llava_next_video or llava_onevision)",
                         origin, mt);
    const json_t *archs = json_object_get(o, "architectures");
    if (json_is_array(archs) && json_array_size(archs) > 0) {
        const char *a = json_string_value(json_array_get(archs, 0));
        if (a && strcmp(a, onevision ? "LlavaOnevisionForConditionalGeneration" : "LlavaNextVideoForConditionalGeneration") != 0)
            return lnx_error(LNX_E_UNSUPPORTED, "%s: architecture \"%s\" is not supported", origin, a);
    }
    const json_t *vc = json_object_get(o, "vision_config");
    const json_t *tc = json_object_get(o, "text_config");
    if (vc && !json_is_object(vc) && !json_is_null(vc))
        return lnx_error(LNX_E_FORMAT, "%s: \"vision_config\" must be an object", origin);
    if (tc && !json_is_object(tc) && !json_is_null(tc))
        return lnx_error(LNX_E_FORMAT, "%s: \"text_config\" must be an object", origin);
    LNX_TRY(parse_vision(&c->vision, json_is_object(vc) ? vc : NULL, origin, onevision));
    LNX_TRY(parse_text(&c->text, json_is_object(tc) ? tc : NULL, origin, onevision));
    LNX_TRY(get_act(o, "projector_hidden_act", LNX_ACT_GELU, &c->projector_act, origin));
    LNX_TRY(lnx_json_get_bool(o, "multimodal_projector_bias", 1, &c->projector_bias, origin));
    LNX_TRY(lnx_json_get_i32(o, "vision_feature_layer", onevision ? -1 : -2, &c->vision_feature_layer, origin));
    const char *sel;
    LNX_TRY(lnx_json_get_string(o, "vision_feature_select_strategy", onevision ? "full" : "default", &sel, origin));
    if (strcmp(sel, "default") == 0)
        c->select_strategy = LNX_SELECT_DEFAULT;
    else if (strcmp(sel, "full") == 0)
        c->select_strategy = LNX_SELECT_FULL;
    else
        return lnx_error(LNX_E_UNSUPPORTED, "%s: vision_feature_select_strategy \"%s\" is not supported", origin, sel);
    const char *pm;
    LNX_TRY(lnx_json_get_string(o, "spatial_pool_mode", "average", &pm, origin));
    if (strcmp(pm, "average") == 0)
        c->pool_mode = LNX_POOL_AVERAGE;
    else if (strcmp(pm, "max") == 0)
        c->pool_mode = LNX_POOL_MAX;
    else
        return lnx_error(LNX_E_UNSUPPORTED, "%s: spatial_pool_mode \"%s\" is not supported (average or max)", origin, pm);
    LNX_TRY(lnx_json_get_i32(o, "spatial_pool_stride", 2, &c->pool_stride, origin));
    LNX_TRY(positive(c->pool_stride, "spatial_pool_stride", origin));
    LNX_TRY(parse_pinpoints(c, json_object_get(o, "image_grid_pinpoints"), origin));
    LNX_TRY(lnx_json_get_i32(o, "video_token_index", onevision ? 151647 : 32000, &c->video_token, origin));
    LNX_TRY(lnx_json_get_i32(o, "image_token_index", onevision ? 151646 : 32001, &c->image_token, origin));
    /* transformers ties the LM head by the text config's flag (LlamaConfig default: false) */
    LNX_TRY(lnx_json_get_bool(json_is_object(tc) ? tc : NULL, "tie_word_embeddings", 0, &c->tie_word_embeddings, origin));
    LNX_TRY(lnx_json_get_bool(o, "use_image_newline_parameter", 1, &c->use_image_newline, origin));
    int32_t nl = c->vision.layers;
    int32_t idx = c->vision_feature_layer < 0 ? nl + 1 + c->vision_feature_layer : c->vision_feature_layer;
    if (idx < 0 || idx > nl)
        return lnx_error(LNX_E_FORMAT, "%s: vision_feature_layer %d is outside the %d-layer vision tower", origin,
                         (int)c->vision_feature_layer, (int)nl);
    if (c->video_token < 0 || c->video_token >= c->text.vocab || c->image_token < 0 || c->image_token >= c->text.vocab)
        return lnx_error(LNX_E_FORMAT, "%s: video/image token ids %d/%d are outside the vocabulary of %d", origin,
                         (int)c->video_token, (int)c->image_token, (int)c->text.vocab);
    default_processor(c);
    default_generation(c);
    if (onevision)
        LNX_TRY(lnx_onevision_parse(c, o, json_is_object(tc) ? tc : NULL, origin));
    LNX_TRY(lnx_json_get_i32(json_is_object(tc) ? tc : NULL, "bos_token_id", 1, &c->gen.bos_id, origin));
    LNX_TRY(lnx_json_get_i32(json_is_object(tc) ? tc : NULL, "eos_token_id", 2, &c->gen.eos_ids[0], origin));
    LNX_TRY(lnx_json_get_i32(json_is_object(tc) ? tc : NULL, "pad_token_id", -1, &c->gen.pad_id, origin));
    return LNX_OK;
}

static lnx_status get_size_field(const json_t *obj, const char *key, const char *sub, int32_t def, int32_t *out,
                                 const char *origin)
{
    const json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v || json_is_null(v))
        return LNX_OK;
    if (json_is_integer(v)) {
        *out = (int32_t)json_integer_value(v);
    } else if (json_is_object(v)) {
        LNX_TRY(lnx_json_get_i32(v, sub, def, out, origin));
    } else {
        return lnx_error(LNX_E_FORMAT, "%s: \"%s\" must be a number or an object", origin, key);
    }
    return positive(*out, key, origin);
}

static lnx_status get_triplet(const json_t *obj, const char *key, float out[3], const char *origin)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return LNX_OK;
    if (json_is_number(v)) {
        out[0] = out[1] = out[2] = (float)json_number_value(v);
        return LNX_OK;
    }
    if (!json_is_array(v) || json_array_size(v) != 3)
        return lnx_error(LNX_E_FORMAT, "%s: \"%s\" must be a list of 3 numbers", origin, key);
    for (int i = 0; i < 3; i++) {
        const json_t *x = json_array_get(v, (size_t)i);
        if (!json_is_number(x))
            return lnx_error(LNX_E_FORMAT, "%s: \"%s\"[%d] is not a number", origin, key, i);
        out[i] = (float)json_number_value(x);
    }
    return LNX_OK;
}

lnx_status lnx_config_parse_processor(lnx_model_cfg *c, const json_t *o, const char *origin)
{
    if (!o)
        return LNX_OK;
    if (!json_is_object(o))
        return lnx_error(LNX_E_FORMAT, "%s: not a JSON object", origin);
    lnx_processor_cfg *p = &c->proc;
    LNX_TRY(get_size_field(o, "size", "shortest_edge", p->shortest_edge, &p->shortest_edge, origin));
    if (c->family == LNX_FAMILY_ONEVISION)
        LNX_TRY(lnx_onevision_parse_processor(c, o, origin));
    LNX_TRY(get_size_field(o, "crop_size", "height", p->crop_h, &p->crop_h, origin));
    LNX_TRY(get_size_field(o, "crop_size", "width", p->crop_w, &p->crop_w, origin));
    LNX_TRY(get_triplet(o, "image_mean", p->mean, origin));
    LNX_TRY(get_triplet(o, "image_std", p->std, origin));
    LNX_TRY(lnx_json_get_double(o, "rescale_factor", p->rescale_factor, &p->rescale_factor, origin));
    LNX_TRY(lnx_json_get_bool(o, "do_resize", p->do_resize, &p->do_resize, origin));
    LNX_TRY(lnx_json_get_bool(o, "do_center_crop", p->do_center_crop, &p->do_center_crop, origin));
    LNX_TRY(lnx_json_get_bool(o, "do_rescale", p->do_rescale, &p->do_rescale, origin));
    LNX_TRY(lnx_json_get_bool(o, "do_normalize", p->do_normalize, &p->do_normalize, origin));
    LNX_TRY(lnx_json_get_i32(o, "resample", p->resample, &p->resample, origin));
    for (int i = 0; i < 3; i++)
        if (!(p->std[i] != 0.0f) || !isfinite(p->std[i]) || !isfinite(p->mean[i]))
            return lnx_error(LNX_E_FORMAT, "%s: image_std must be finite and non-zero", origin);
    if (p->resample != 3)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: resample %d is not supported (only 3 = bicubic)", origin, (int)p->resample);
    if (p->resize_h && (p->resize_h != c->vision.image_size || p->resize_w != c->vision.image_size))
        return lnx_error(LNX_E_UNSUPPORTED, "%s: size %dx%d differs from the vision tower's image_size %d", origin,
                         (int)p->resize_h, (int)p->resize_w, (int)c->vision.image_size);
    if (p->crop_h != c->vision.image_size || p->crop_w != c->vision.image_size)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: crop_size %dx%d differs from the vision tower's image_size %d", origin,
                         (int)p->crop_h, (int)p->crop_w, (int)c->vision.image_size);
    return LNX_OK;
}

lnx_status lnx_config_parse_generation(lnx_model_cfg *c, const json_t *o, const char *origin)
{
    if (!o)
        return LNX_OK;
    if (!json_is_object(o))
        return lnx_error(LNX_E_FORMAT, "%s: not a JSON object", origin);
    lnx_generation_cfg *g = &c->gen;
    LNX_TRY(lnx_json_get_i32(o, "bos_token_id", g->bos_id, &g->bos_id, origin));
    LNX_TRY(lnx_json_get_i32(o, "pad_token_id", g->pad_id, &g->pad_id, origin));
    const json_t *eos = json_object_get(o, "eos_token_id");
    if (json_is_integer(eos)) {
        g->eos_ids[0] = (int32_t)json_integer_value(eos);
        g->n_eos = 1;
    } else if (json_is_array(eos)) {
        g->n_eos = 0;
        for (size_t i = 0; i < json_array_size(eos) && g->n_eos < LNX_MAX_EOS; i++) {
            const json_t *e = json_array_get(eos, i);
            if (!json_is_integer(e))
                return lnx_error(LNX_E_FORMAT, "%s: eos_token_id[%zu] is not an integer", origin, i);
            g->eos_ids[g->n_eos++] = (int32_t)json_integer_value(e);
        }
    } else if (eos && !json_is_null(eos)) {
        return lnx_error(LNX_E_FORMAT, "%s: \"eos_token_id\" must be an integer or a list", origin);
    }
    LNX_TRY(lnx_json_get_bool(o, "do_sample", g->do_sample, &g->do_sample, origin));
    LNX_TRY(get_float(o, "temperature", g->temperature, &g->temperature, origin));
    LNX_TRY(lnx_json_get_i32(o, "top_k", g->top_k, &g->top_k, origin));
    LNX_TRY(get_float(o, "top_p", g->top_p, &g->top_p, origin));
    LNX_TRY(get_float(o, "min_p", g->min_p, &g->min_p, origin));
    LNX_TRY(get_float(o, "repetition_penalty", g->repetition_penalty, &g->repetition_penalty, origin));
    LNX_TRY(lnx_json_get_i32(o, "max_new_tokens", g->max_new_tokens, &g->max_new_tokens, origin));
    return LNX_OK;
}
