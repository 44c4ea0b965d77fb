#include "bench_ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/half.h"

bench_geom bench_geom_7b(void)
{
    bench_geom g = { 1024, 24, 16, 4096, 336, 14, 4096, 32, 32, 32, 11008, 32064, 4096, 2.0, 0, 0 };
    return g;
}

bench_geom bench_geom_tiny(void)
{
    bench_geom g = { 64, 3, 4, 128, 56, 14, 64, 2, 4, 2, 160, 512, 256, 2.0, 0, 0 };
    return g;
}

bench_geom bench_geom_ov_05b(void)
{
    bench_geom g = { 1152, 26, 16, 4304, 384, 14, 896, 24, 14, 2, 4864, 152000, 32768, 1.0, 1, 1 };
    return g;
}

bench_geom bench_geom_ov_7b(void)
{
    bench_geom g = { 1152, 26, 16, 4304, 384, 14, 3584, 28, 28, 4, 18944, 152128, 32768, 1.0, 1, 0 };
    return g;
}

bench_geom bench_geom_ov_tiny(void)
{
    bench_geom g = { 64, 3, 4, 112, 70, 14, 64, 2, 4, 2, 160, 512, 4096, 1.0, 1, 1 };
    return g;
}

static char *onevision_config_json(const bench_geom *g)
{
    char *s = malloc(4096);
    if (!s)
        return NULL;
    snprintf(s, 4096,
             "{\"architectures\": [\"LlavaOnevisionForConditionalGeneration\"], \"model_type\": \"llava_onevision\","
             " \"image_token_index\": %d, \"video_token_index\": %d, \"projector_hidden_act\": \"gelu\","
             " \"vision_feature_layer\": -1, \"vision_feature_select_strategy\": \"full\","
             " \"vision_aspect_ratio\": \"anyres_max_9\","
             " \"text_config\": {\"model_type\": \"qwen2\", \"hidden_size\": %d, \"intermediate_size\": %d,"
             " \"num_attention_heads\": %d, \"num_hidden_layers\": %d, \"num_key_value_heads\": %d,"
             " \"max_position_embeddings\": %d, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0,"
             " \"vocab_size\": %d, \"tie_word_embeddings\": %s, \"use_sliding_window\": false},"
             " \"vision_config\": {\"model_type\": \"siglip_vision_model\", \"hidden_size\": %d, \"image_size\": %d,"
             " \"intermediate_size\": %d, \"num_attention_heads\": %d, \"num_hidden_layers\": %d, \"patch_size\": %d,"
             " \"vision_use_head\": false}}",
             g->vocab - 2, g->vocab - 1, g->t_hidden, g->t_inter, g->t_heads, g->t_layers, g->t_kv_heads, g->max_pos,
             g->vocab, g->tied ? "true" : "false", g->v_hidden, g->image, g->v_inter, g->v_heads, g->v_layers, g->patch);
    return s;
}

char *bench_config_json(const bench_geom *g)
{
    if (g->onevision)
        return onevision_config_json(g);
    char *s = malloc(4096);
    if (!s)
        return NULL;
    int is = g->image;
    snprintf(s, 4096,
             "{\"architectures\": [\"LlavaNextVideoForConditionalGeneration\"], \"model_type\": \"llava_next_video\","
             " \"image_grid_pinpoints\": [[%d, %d], [%d, %d], [%d, %d], [%d, %d], [%d, %d]],"
             " \"image_token_index\": %d, \"video_token_index\": %d, \"projector_hidden_act\": \"gelu\","
             " \"spatial_pool_mode\": \"average\", \"spatial_pool_stride\": 2, \"tie_word_embeddings\": false,"
             " \"use_image_newline_parameter\": true, \"vision_feature_layer\": -2,"
             " \"vision_feature_select_strategy\": \"default\","
             " \"text_config\": {\"model_type\": \"llama\", \"hidden_size\": %d, \"intermediate_size\": %d,"
             " \"num_attention_heads\": %d, \"num_hidden_layers\": %d, \"num_key_value_heads\": %d,"
             " \"max_position_embeddings\": %d, \"rms_norm_eps\": 1e-05, \"vocab_size\": %d, \"pad_token_id\": 0,"
             " \"rope_scaling\": {\"factor\": %g, \"type\": \"linear\"}},"
             " \"vision_config\": {\"model_type\": \"clip_vision_model\", \"hidden_size\": %d, \"image_size\": %d,"
             " \"intermediate_size\": %d, \"num_attention_heads\": %d, \"num_hidden_layers\": %d, \"patch_size\": %d,"
             " \"projection_dim\": 768, \"hidden_act\": \"quick_gelu\"}}",
             is, 2 * is, 2 * is, is, 2 * is, 2 * is, 3 * is, is, is, 3 * is, g->vocab - 1, g->vocab - 2, g->t_hidden,
             g->t_inter, g->t_heads, g->t_layers, g->t_kv_heads, g->max_pos, g->vocab, g->rope_factor, g->v_hidden,
             is, g->v_inter, g->v_heads, g->v_layers, g->patch);
    return s;
}

/* ---- the tensor list ---- */

enum { K_WEIGHT, K_ONES, K_BIAS };

typedef void (*tensor_fn)(void *user, const char *name, int32_t ndim, const int64_t *shape, int kind);

static void emit(tensor_fn fn, void *user, int kind, int32_t ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                 const char *fmt, const char *a, int l)
{
    char name[256];
    snprintf(name, sizeof name, fmt, a, l);
    int64_t shape[4] = { d0, d1, d2, d3 };
    fn(user, name, ndim, shape, kind);
}

static void for_each_tensor(const bench_geom *g, tensor_fn fn, void *user)
{
    const char *vp = "vision_tower.vision_model.";
    const int64_t D = g->v_hidden, I = g->v_inter, P = g->patch, grid = g->image / g->patch;
    emit(fn, user, K_WEIGHT, 4, D, 3, P, P, "%sembeddings.patch_embedding.weight%.0d", vp, 0);
    if (g->onevision) { /* SigLIP: patch bias, no CLS, no pre-LayerNorm */
        emit(fn, user, K_BIAS, 1, D, 0, 0, 0, "%sembeddings.patch_embedding.bias%.0d", vp, 0);
        emit(fn, user, K_WEIGHT, 2, grid * grid, D, 0, 0, "%sembeddings.position_embedding.weight%.0d", vp, 0);
    } else {
        emit(fn, user, K_WEIGHT, 1, D, 0, 0, 0, "%sembeddings.class_embedding%.0d", vp, 0);
        emit(fn, user, K_WEIGHT, 2, grid * grid + 1, D, 0, 0, "%sembeddings.position_embedding.weight%.0d", vp, 0);
        emit(fn, user, K_ONES, 1, D, 0, 0, 0, "%spre_layrnorm.weight%.0d", vp, 0);
        emit(fn, user, K_BIAS, 1, D, 0, 0, 0, "%spre_layrnorm.bias%.0d", vp, 0);
    }
    /* feature layer -2 (LLaVA-NeXT-Video): the last layer is never run, so it is not stored;
     * OneVision's feature layer -1 runs every layer */
    for (int l = 0; l < g->v_layers - (g->onevision ? 0 : 1); l++) {
        static const char *const lin[] = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                           "self_attn.out_proj" };
        emit(fn, user, K_ONES, 1, D, 0, 0, 0, "%sencoder.layers.%d.layer_norm1.weight", vp, l);
        emit(fn, user, K_BIAS, 1, D, 0, 0, 0, "%sencoder.layers.%d.layer_norm1.bias", vp, l);
        emit(fn, user, K_ONES, 1, D, 0, 0, 0, "%sencoder.layers.%d.layer_norm2.weight", vp, l);
        emit(fn, user, K_BIAS, 1, D, 0, 0, 0, "%sencoder.layers.%d.layer_norm2.bias", vp, l);
        for (int i = 0; i < 4; i++) {
            char f[128];
            snprintf(f, sizeof f, "%%sencoder.layers.%%d.%s.weight", lin[i]);
            emit(fn, user, K_WEIGHT, 2, D, D, 0, 0, f, vp, l);
            snprintf(f, sizeof f, "%%sencoder.layers.%%d.%s.bias", lin[i]);
            emit(fn, user, K_BIAS, 1, D, 0, 0, 0, f, vp, l);
        }
        emit(fn, user, K_WEIGHT, 2, I, D, 0, 0, "%sencoder.layers.%d.mlp.fc1.weight", vp, l);
        emit(fn, user, K_BIAS, 1, I, 0, 0, 0, "%sencoder.layers.%d.mlp.fc1.bias", vp, l);
        emit(fn, user, K_WEIGHT, 2, D, I, 0, 0, "%sencoder.layers.%d.mlp.fc2.weight", vp, l);
        emit(fn, user, K_BIAS, 1, D, 0, 0, 0, "%sencoder.layers.%d.mlp.fc2.bias", vp, l);
    }
    const int64_t Dt = g->t_hidden, It = g->t_inter, hd = Dt / g->t_heads;
    const int64_t qd = hd * g->t_heads, kvd = hd * g->t_kv_heads;
    emit(fn, user, K_WEIGHT, 2, Dt, D, 0, 0, "%smulti_modal_projector.linear_1.weight%.0d", "", 0);
    emit(fn, user, K_BIAS, 1, Dt, 0, 0, 0, "%smulti_modal_projector.linear_1.bias%.0d", "", 0);
    emit(fn, user, K_WEIGHT, 2, Dt, Dt, 0, 0, "%smulti_modal_projector.linear_2.weight%.0d", "", 0);
    emit(fn, user, K_BIAS, 1, Dt, 0, 0, 0, "%smulti_modal_projector.linear_2.bias%.0d", "", 0);
    emit(fn, user, K_WEIGHT, 1, Dt, 0, 0, 0, "%simage_newline%.0d", "", 0);
    const char *tp = "language_model.model.";
    emit(fn, user, K_WEIGHT, 2, g->vocab, Dt, 0, 0, "%sembed_tokens.weight%.0d", tp, 0);
    for (int l = 0; l < g->t_layers; l++) {
        emit(fn, user, K_ONES, 1, Dt, 0, 0, 0, "%slayers.%d.input_layernorm.weight", tp, l);
        emit(fn, user, K_ONES, 1, Dt, 0, 0, 0, "%slayers.%d.post_attention_layernorm.weight", tp, l);
        emit(fn, user, K_WEIGHT, 2, qd, Dt, 0, 0, "%slayers.%d.self_attn.q_proj.weight", tp, l);
        emit(fn, user, K_WEIGHT, 2, kvd, Dt, 0, 0, "%slayers.%d.self_attn.k_proj.weight", tp, l);
        emit(fn, user, K_WEIGHT, 2, kvd, Dt, 0, 0, "%slayers.%d.self_attn.v_proj.weight", tp, l);
        if (g->onevision) { /* Qwen2: q/k/v biases */
            emit(fn, user, K_BIAS, 1, qd, 0, 0, 0, "%slayers.%d.self_attn.q_proj.bias", tp, l);
            emit(fn, user, K_BIAS, 1, kvd, 0, 0, 0, "%slayers.%d.self_attn.k_proj.bias", tp, l);
            emit(fn, user, K_BIAS, 1, kvd, 0, 0, 0, "%slayers.%d.self_attn.v_proj.bias", tp, l);
        }
        emit(fn, user, K_WEIGHT, 2, Dt, qd, 0, 0, "%slayers.%d.self_attn.o_proj.weight", tp, l);
        emit(fn, user, K_WEIGHT, 2, It, Dt, 0, 0, "%slayers.%d.mlp.gate_proj.weight", tp, l);
        emit(fn, user, K_WEIGHT, 2, It, Dt, 0, 0, "%slayers.%d.mlp.up_proj.weight", tp, l);
        emit(fn, user, K_WEIGHT, 2, Dt, It, 0, 0, "%slayers.%d.mlp.down_proj.weight", tp, l);
    }
    emit(fn, user, K_ONES, 1, Dt, 0, 0, 0, "%snorm.weight%.0d", tp, 0);
    if (!g->tied)
        emit(fn, user, K_WEIGHT, 2, g->vocab, Dt, 0, 0, "%slm_head.weight%.0d", "language_model.", 0);
}

static int64_t numel(int32_t ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int32_t i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

/* ---- header ---- */

typedef struct header {
    char *text;
    size_t len, cap;
    uint64_t offset; /* data bytes so far */
    int failed;
} header;

static void hdr_append(header *h, const char *s)
{
    size_t n = strlen(s);
    if (h->len + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 65536;
        while (cap < h->len + n + 1)
            cap *= 2;
        char *t = realloc(h->text, cap);
        if (!t) {
            h->failed = 1;
            return;
        }
        h->text = t;
        h->cap = cap;
    }
    memcpy(h->text + h->len, s, n + 1);
    h->len += n;
}

static void hdr_tensor(void *user, const char *name, int32_t ndim, const int64_t *shape, int kind)
{
    (void)kind;
    header *h = user;
    char buf[512];
    uint64_t bytes = (uint64_t)numel(ndim, shape) * 2u;
    int n = snprintf(buf, sizeof buf, "%s\"%s\": {\"dtype\": \"BF16\", \"shape\": [", h->offset || h->len > 1 ? ", " : "",
                     name);
    for (int32_t i = 0; i < ndim; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, i ? ", %lld" : "%lld", (long long)shape[i]);
    snprintf(buf + n, sizeof buf - (size_t)n, "], \"data_offsets\": [%llu, %llu]}", (unsigned long long)h->offset,
             (unsigned long long)(h->offset + bytes));
    hdr_append(h, buf);
    h->offset += bytes;
}

/* The JSON header padded with spaces so the data starts 64-byte aligned (8 + len). */
static int build_header(const bench_geom *g, header *h)
{
    memset(h, 0, sizeof *h);
    hdr_append(h, "{");
    for_each_tensor(g, hdr_tensor, h);
    hdr_append(h, "}");
    while (!h->failed && (8 + h->len) % 64)
        hdr_append(h, " ");
    return h->failed ? -1 : 0;
}

/* ---- data ---- */

typedef struct filler {
    uint64_t state;
    uint16_t *buf;       /* chunk for the file writer */
    size_t buf_elems;
    uint8_t *dst;        /* in-memory image cursor (NULL when writing a file) */
    FILE *file;
    int failed;
} filler;

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Uniform values of standard deviation about 0.02 for weights (1/sqrt(fan_in) scale keeps the
 * activations of a random deep network bounded), 1 for norm weights, small for biases. */
static void fill(uint64_t *s, int kind, uint16_t *out, size_t n)
{
    if (kind == K_ONES) {
        uint16_t one = lnx_f32_to_bf16(1.0f);
        for (size_t i = 0; i < n; i++)
            out[i] = one;
        return;
    }
    float amp = kind == K_BIAS ? 0.01f : 0.035f;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = next_rand(s);
        float u = (float)(r >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
        out[i] = lnx_f32_to_bf16(u * amp);
    }
}

static void data_tensor(void *user, const char *name, int32_t ndim, const int64_t *shape, int kind)
{
    (void)name;
    filler *f = user;
    size_t n = (size_t)numel(ndim, shape);
    if (f->failed)
        return;
    if (f->dst) {
        fill(&f->state, kind, (uint16_t *)f->dst, n);
        f->dst += n * 2;
        return;
    }
    for (size_t done = 0; done < n;) {
        size_t k = n - done < f->buf_elems ? n - done : f->buf_elems;
        fill(&f->state, kind, f->buf, k);
        if (fwrite(f->buf, 2, k, f->file) != k) {
            f->failed = 1;
            return;
        }
        done += k;
    }
}

uint64_t bench_ckpt_bytes(const bench_geom *g)
{
    header h;
    if (build_header(g, &h))
        return 0;
    uint64_t total = 8 + h.len + h.offset;
    free(h.text);
    return total;
}

void *bench_ckpt_memory(const bench_geom *g, uint64_t seed, size_t *len)
{
    header h;
    if (build_header(g, &h))
        return NULL;
    size_t total = 8 + h.len + (size_t)h.offset;
    uint8_t *img = lnx_amalloc(total);
    if (img) {
        uint64_t hl = h.len;
        memcpy(img, &hl, 8);
        memcpy(img + 8, h.text, h.len);
        filler f = { seed | 1, NULL, 0, img + 8 + h.len, NULL, 0 };
        for_each_tensor(g, data_tensor, &f);
        *len = total;
    }
    free(h.text);
    return img;
}

int bench_ckpt_write(const bench_geom *g, uint64_t seed, const char *path)
{
    header h;
    if (build_header(g, &h))
        return -1;
    FILE *file = fopen(path, "wb");
    filler f = { seed | 1, malloc(sizeof(uint16_t) << 22), (size_t)1 << 22, NULL, file, 0 };
    uint64_t hl = h.len;
    int rc = -1;
    if (file && f.buf && fwrite(&hl, 8, 1, file) == 1 && fwrite(h.text, 1, h.len, file) == h.len) {
        for_each_tensor(g, data_tensor, &f);
        rc = f.failed ? -1 : 0;
    }
    if (file && fclose(file))
        rc = -1;
    free(f.buf);
    free(h.text);
    return rc;
}
