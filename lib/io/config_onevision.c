/* LLaVA-OneVision / LLaVA-Video (model_type llava_onevision): the SigLIP vision config, the Qwen2
 * text config and the family's top-level keys, with the transformers 4.47 class defaults
 * (SiglipVisionConfig, Qwen2Config, LlavaOnevisionConfig) for absent keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "json.h"

lnx_status lnx_siglip_parse_vision(lnx_vision_cfg *v, const json_t *o, const char *origin)
{
    /* Without a vision_config LlavaOnevisionConfig builds so400m/14 at 384, 26 layers (the last
     * of the 27 dropped); a given one starts from SiglipVisionConfig's class defaults. */
    int have = o != NULL;
    double eps;
    const char *act;
    LNX_TRY(lnx_json_get_i32(o, "hidden_size", have ? 768 : 1152, &v->hidden, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_hidden_layers", have ? 12 : 26, &v->layers, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_attention_heads", have ? 12 : 16, &v->heads, origin));
    LNX_TRY(lnx_json_get_i32(o, "intermediate_size", have ? 3072 : 4304, &v->intermediate, origin));
    LNX_TRY(lnx_json_get_i32(o, "image_size", have ? 224 : 384, &v->image_size, origin));
    LNX_TRY(lnx_json_get_i32(o, "patch_size", have ? 16 : 14, &v->patch_size, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_channels", 3, &v->channels, origin));
    LNX_TRY(lnx_json_get_double(o, "layer_norm_eps", 1e-6, &eps, origin));
    v->ln_eps = (float)eps;
    LNX_TRY(lnx_json_get_string(o, "hidden_act", "gelu_pytorch_tanh", &act, origin));
    if (strcmp(act, "gelu_pytorch_tanh") == 0 || strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_fast") == 0)
        v->act = LNX_ACT_GELU_TANH;
    else if (strcmp(act, "gelu") == 0)
        v->act = LNX_ACT_GELU;
    else
        return lnx_error(LNX_E_UNSUPPORTED, "%s: SigLIP hidden_act \"%s\" is not supported", origin, act);
    v->siglip = 1;
    return lnx_vision_cfg_check(v, origin);
}

lnx_status lnx_qwen2_parse_text(lnx_text_cfg *t, const json_t *o, const char *origin)
{
    snprintf(t->model_type, sizeof t->model_type, "qwen2");
    LNX_TRY(lnx_json_get_i32(o, "vocab_size", 151936, &t->vocab, origin));
    LNX_TRY(lnx_json_get_i32(o, "hidden_size", 4096, &t->hidden, origin));
    LNX_TRY(lnx_json_get_i32(o, "intermediate_size", 22016, &t->intermediate, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_hidden_layers", 32, &t->layers, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_attention_heads", 32, &t->heads, origin));
    LNX_TRY(lnx_json_get_i32(o, "num_key_value_heads", 32, &t->kv_heads, origin));
    LNX_TRY(lnx_json_get_i32(o, "max_position_embeddings", 32768, &t->max_pos, origin));
    double eps;
    LNX_TRY(lnx_json_get_double(o, "rms_norm_eps", 1e-6, &eps, origin));
    t->rms_eps = (float)eps;
    LNX_TRY(lnx_json_get_double(o, "rope_theta", 10000.0, &t->rope_theta, origin));
    /* Qwen2Config keeps sliding_window only with use_sliding_window (then the eager/SDPA mask
     * applies it to every layer); the published checkpoints have it off. */
    int use_sw;
    LNX_TRY(lnx_json_get_bool(o, "use_sliding_window", 0, &use_sw, origin));
    t->sliding_window = 0;
    if (use_sw) {
        const json_t *sw = json_object_get(o, "sliding_window");
        if (!json_is_null(sw))
            LNX_TRY(lnx_json_get_i32(o, "sliding_window", 4096, &t->sliding_window, origin));
    }
    const char *act;
    LNX_TRY(lnx_json_get_string(o, "hidden_act", "silu", &act, origin));
    if (strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: text hidden_act \"%s\" is not supported (only silu)", origin, act);
    t->act = LNX_ACT_SILU;
    t->attention_bias = 0;
    t->mlp_bias = 0;
    t->qkv_bias = 1;
    return lnx_text_cfg_parse_rope(t, o, origin);
}

static const int32_t default_pinpoints[][2] = {
    { 384, 384 },   { 384, 768 },   { 384, 1152 },  { 384, 1536 },  { 384, 1920 },  { 384, 2304 },
    { 768, 384 },   { 768, 768 },   { 768, 1152 },  { 768, 1536 },  { 768, 1920 },  { 768, 2304 },
    { 1152, 384 },  { 1152, 768 },  { 1152, 1152 }, { 1152, 1536 }, { 1152, 1920 }, { 1152, 2304 },
    { 1536, 384 },  { 1536, 768 },  { 1536, 1152 }, { 1536, 1536 }, { 1536, 1920 }, { 1536, 2304 },
    { 1920, 384 },  { 1920, 768 },  { 1920, 1152 }, { 1920, 1536 }, { 1920, 1920 }, { 1920, 2304 },
    { 2304, 384 },  { 2304, 768 },  { 2304, 1152 }, { 2304, 1536 }, { 2304, 1920 }, { 2304, 2304 },
};

lnx_status lnx_onevision_parse(lnx_model_cfg *c, const json_t *o, const json_t *tc, const char *origin)
{
    c->family = LNX_FAMILY_ONEVISION;
    if (!json_object_get(o, "image_grid_pinpoints")) {
        c->n_pinpoints = (int32_t)(sizeof default_pinpoints / sizeof default_pinpoints[0]);
        memcpy(c->pinpoints, default_pinpoints, sizeof default_pinpoints);
    }
    const char *ar;
    LNX_TRY(lnx_json_get_string(o, "vision_aspect_ratio", "anyres_max_9", &ar, origin));
    if (strncmp(ar, "anyres_max_", 11) != 0)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: vision_aspect_ratio \"%s\" is not supported (anyres_max_N)", origin, ar);
    char *end;
    long n = strtol(ar + 11, &end, 10);
    if (*end || n <= 0 || n > 1024)
        return lnx_error(LNX_E_FORMAT, "%s: vision_aspect_ratio \"%s\" has no valid tile count", origin, ar);
    c->anyres_max = (int32_t)n;
    /* the projector always has biases and the model always an image_newline parameter; frames
     * are resized (bilinear) to ceil(g / 2) per side after the projector */
    c->projector_bias = 1;
    c->use_image_newline = 1;
    c->pool_mode = LNX_POOL_BILINEAR;
    c->pool_stride = 2;
    c->proc.do_center_crop = 0;
    c->proc.resize_h = c->proc.resize_w = c->vision.image_size;
    if (!c->vision.siglip)
        return lnx_error(LNX_E_UNSUPPORTED, "%s: llava_onevision with a CLIP vision tower is not supported", origin);
    /* Qwen2 has no BOS/EOS defaults: keep what the text config says, else none for BOS */
    LNX_TRY(lnx_json_get_i32(tc, "bos_token_id", -1, &c->gen.bos_id, origin));
    int32_t eos;
    LNX_TRY(lnx_json_get_i32(tc, "eos_token_id", -1, &eos, origin));
    c->gen.n_eos = eos >= 0;
    c->gen.eos_ids[0] = eos;
    return LNX_OK;
}

lnx_status lnx_onevision_parse_processor(lnx_model_cfg *c, const json_t *o, const char *origin)
{
    lnx_processor_cfg *p = &c->proc;
    const json_t *size = json_object_get(o, "size");
    p->do_center_crop = 0;
    p->resize_h = p->resize_w = c->vision.image_size;
    if (json_is_object(size) && json_object_get(size, "height")) {
        LNX_TRY(lnx_json_get_i32(size, "height", p->resize_h, &p->resize_h, origin));
        LNX_TRY(lnx_json_get_i32(size, "width", p->resize_h, &p->resize_w, origin));
    }
    if (p->resize_h <= 0 || p->resize_w <= 0)
        return lnx_error(LNX_E_FORMAT, "%s: size must be positive", origin);
    return LNX_OK;
}
