/* The model configuration: config.json (LLaVA-NeXT-Video with nested CLIP vision and Llama or
 * Mistral text configs), preprocessor_config.json and generation_config.json, with the Hugging
 * Face class defaults applied for absent keys. */
#ifndef LNX_IO_CONFIG_H
#define LNX_IO_CONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "../base/status.h"

typedef enum lnx_act {
    LNX_ACT_QUICK_GELU,
    LNX_ACT_GELU,      /* exact erf form */
    LNX_ACT_GELU_TANH, /* gelu_new / gelu_pytorch_tanh / gelu_fast approximation */
    LNX_ACT_SILU,
    LNX_ACT_RELU,
} lnx_act;

enum { LNX_POOL_AVERAGE = 0, LNX_POOL_MAX = 1, LNX_POOL_BILINEAR = 2 /* OneVision: resize to ceil(g/2) */ };
enum { LNX_SELECT_DEFAULT = 0, LNX_SELECT_FULL = 1 };
enum { LNX_ROPE_NONE = 0, LNX_ROPE_LINEAR = 1 };
/* Model families (config.json model_type): what differs is read from lnx_model_cfg's fields. */
enum { LNX_FAMILY_NEXT_VIDEO = 0, LNX_FAMILY_ONEVISION = 1 };

#define LNX_MAX_PINPOINTS 64
#define LNX_MAX_EOS 8

typedef struct lnx_vision_cfg {
    int32_t hidden, layers, heads, intermediate, image_size, patch_size, channels;
    float ln_eps;
    lnx_act act;
    int32_t siglip; /* SigLIP tower: patch bias, no CLS token, no pre-LayerNorm */
} lnx_vision_cfg;

typedef struct lnx_text_cfg {
    char model_type[32];
    int32_t hidden, layers, heads, kv_heads, head_dim, intermediate, vocab, max_pos;
    int32_t sliding_window; /* 0 = none */
    float rms_eps;
    double rope_theta;
    int32_t rope_type;
    double rope_factor;
    int32_t attention_bias, mlp_bias;
    lnx_act act;
    int32_t qkv_bias; /* q/k/v projections with bias, o_proj without (Qwen2) */
} lnx_text_cfg;

typedef struct lnx_processor_cfg {
    int32_t shortest_edge;
    int32_t crop_h, crop_w;
    float mean[3], std[3];
    double rescale_factor;
    int32_t do_resize, do_center_crop, do_rescale, do_normalize;
    int32_t resample;
    int32_t resize_h, resize_w; /* size {"height", "width"}: resize to exactly this (0 = shortest edge) */
} lnx_processor_cfg;

typedef struct lnx_generation_cfg {
    int32_t bos_id, pad_id;
    int32_t eos_ids[LNX_MAX_EOS];
    int32_t n_eos;
    int32_t do_sample;
    float temperature, top_p, min_p, repetition_penalty;
    int32_t top_k;
    int32_t max_new_tokens;
} lnx_generation_cfg;

typedef struct lnx_model_cfg {
    lnx_vision_cfg vision;
    lnx_text_cfg text;
    lnx_processor_cfg proc;
    lnx_generation_cfg gen;
    lnx_act projector_act;
    int32_t projector_bias;
    int32_t vision_feature_layer;
    int32_t select_strategy;
    int32_t pool_mode, pool_stride;
    int32_t pinpoints[LNX_MAX_PINPOINTS][2]; /* [height, width] */
    int32_t n_pinpoints;
    int32_t video_token, image_token;
    int32_t tie_word_embeddings;
    int32_t use_image_newline;
    /* LLaVA-OneVision: projector before a bilinear resize of each frame's grid to ceil(g/2), one
     * image_newline after the video, and AnyRes features resized down past anyres_max tiles */
    int32_t family;     /* LNX_FAMILY_* */
    int32_t anyres_max; /* vision_aspect_ratio "anyres_max_N": N; 0 = no limit */
} lnx_model_cfg;

/* Parses config.json's object (`origin` names it in messages). Applies defaults and checks
 * consistency (sizes positive, heads dividing hidden, ...). Unsupported architectures,
 * activations or RoPE types give LNX_E_UNSUPPORTED naming them. */
lnx_status lnx_config_parse(lnx_model_cfg *cfg, const json_t *config, const char *origin);
/* Overlays preprocessor_config.json (NULL = keep the CLIP defaults derived from the vision config). */
lnx_status lnx_config_parse_processor(lnx_model_cfg *cfg, const json_t *pre, const char *origin);
/* Overlays generation_config.json (NULL = defaults from config.json). */
lnx_status lnx_config_parse_generation(lnx_model_cfg *cfg, const json_t *gen, const char *origin);

/* Shared checks of a parsed vision / text config (sizes positive and consistent; the text one
 * also reads head_dim from `o`, default hidden / heads). */
lnx_status lnx_vision_cfg_check(const lnx_vision_cfg *v, const char *origin);
lnx_status lnx_text_cfg_check(lnx_text_cfg *t, const json_t *o, const char *origin);
/* rope_scaling of a text config object. */
lnx_status lnx_text_cfg_parse_rope(lnx_text_cfg *t, const json_t *o, const char *origin);

/* ---- LLaVA-OneVision (config_onevision.c) ---- */

/* SiglipVisionConfig with its class defaults. */
lnx_status lnx_siglip_parse_vision(lnx_vision_cfg *v, const json_t *o, const char *origin);
/* Qwen2Config with its class defaults (q/k/v biases; sliding window only with use_sliding_window). */
lnx_status lnx_qwen2_parse_text(lnx_text_cfg *t, const json_t *o, const char *origin);
/* The llava_onevision top-level keys over what lnx_config_parse read with the LLaVA-NeXT-Video
 * defaults (token ids, feature layer and strategy, pinpoints, vision_aspect_ratio, ...). */
lnx_status lnx_onevision_parse(lnx_model_cfg *c, const json_t *o, const json_t *text_config, const char *origin);
/* preprocessor_config.json of LlavaOnevisionImageProcessor: size {height, width}, no centre crop. */
lnx_status lnx_onevision_parse_processor(lnx_model_cfg *c, const json_t *pre, const char *origin);

/* Name of an activation (as config.json spells it). */
const char *lnx_act_name(lnx_act a);

#endif
