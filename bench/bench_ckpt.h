/* A LLaVA-NeXT-Video checkpoint with random bf16 weights at a chosen geometry, fabricated for the
 * benchmark: config.json text and a safetensors image (in memory or written to a file), with the
 * tensor names of the older Hugging Face layout. */
#ifndef LNX_BENCH_CKPT_H
#define LNX_BENCH_CKPT_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_geom {
    /* vision tower (CLIP) */
    int32_t v_hidden, v_layers, v_heads, v_inter, image, patch;
    /* language model (Llama) */
    int32_t t_hidden, t_layers, t_heads, t_kv_heads, t_inter, vocab, max_pos;
    double rope_factor;
    /* LLaVA-OneVision: SigLIP tower (patch bias, no CLS, feature layer -1: every layer runs) and
     * Qwen2 (q/k/v biases, rope theta 1e6), LM head tied when `tied` */
    int32_t onevision, tied;
} bench_geom;

/* CLIP ViT-L/14-336 + Llama-2-7B (LLaVA-NeXT-Video-7B). */
bench_geom bench_geom_7b(void);
/* A tiny geometry (hidden 64) for the smoke test. */
bench_geom bench_geom_tiny(void);
/* SigLIP so400m/14-384 (26 layers) + Qwen2-0.5B (llava-onevision-qwen2-0.5b-ov-hf). */
bench_geom bench_geom_ov_05b(void);
/* SigLIP so400m/14-384 (26 layers) + Qwen2-7B (llava-onevision-qwen2-7b-ov-hf, LLaVA-Video-7B-Qwen2). */
bench_geom bench_geom_ov_7b(void);
/* A tiny OneVision geometry for the smoke test. */
bench_geom bench_geom_ov_tiny(void);

/* config.json for the geometry (malloc'ed). */
char *bench_config_json(const bench_geom *g);

/* Bytes of the safetensors image holding every tensor the model binds: the vision layers up to
 * the feature layer (-2), the projector and all text layers. */
uint64_t bench_ckpt_bytes(const bench_geom *g);

/* The image in a 64-byte aligned buffer (free with lnx_afree). NULL when out of memory. */
void *bench_ckpt_memory(const bench_geom *g, uint64_t seed, size_t *len);

/* The image written to `path` streaming (a few MiB of memory). Returns 0 on success. */
int bench_ckpt_write(const bench_geom *g, uint64_t seed, const char *path);

#endif
