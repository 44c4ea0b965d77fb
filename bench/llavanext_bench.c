/* llavanext-bench: every stage of a LLaVA-NeXT-Video request at the real geometry (CLIP
 * ViT-L/14-336 + Llama-2-7B, random bf16 weights made in memory), with the machine's ceilings
 * measured in the same run.
 *
 *   llavanext-bench [--layers N] [--precision f32|bf16] [--weights stored|bf16|q8|q4]
 *                   [--kv-cache auto|f32|f16|q8] [--runs R]
 *                   [--threads T] [--json]
 *                   [--stages vision,prefill,decode,ttft,sample] [--smoke] [--rss [--rss-dir DIR]]
 *                   [--family next-video|onevision] [--size 0.5b|7b]
 *
 * Ceilings, measured independently of the library's kernels: compute stages against the best of
 * cblas_sgemm (OpenBLAS's own threads) and oneDNN's matmul primitive (its own OpenMP threads) at
 * the stage's GEMM shapes (rows and inner sizes as the stage runs them, output columns cut to
 * 4096, weighted by the real products' FLOP; bf16 runs: oneDNN's bf16 matmul), each also put next
 * to the ISA's instruction peak; decode stages against a streaming read. Each of the R samples
 * measures the ceiling and then the stage back to back; the ratio printed is the median of the
 * per-sample ratios with their minimum and maximum, and the JSON keeps every sample. Decode runs
 * on a mapped copy of the checkpoint (decode_T: the library's default load) and in memory
 * (decode_T_mem). ttft_32 times a whole 32-frame request (sampling a generated 720p video,
 * preprocessing, vision, pooling, projector, prefill of the 4640-token prompt, first token).
 *
 * --family onevision measures LLaVA-OneVision instead: SigLIP so400m/14-384 (26 layers, all run:
 * feature layer -1; 729 tokens per frame, the projector on all of them, then the bilinear resize
 * to 14x14) + Qwen2-0.5B (--size 0.5b, the default) or Qwen2-7B (--size 7b), contexts of 8 and
 * 32 frames (8 * 196 + 1 + 31 and 32 * 196 + 1 + 31 tokens).
 *
 * --layers N truncates both towers to N layers (default 1); per-layer times are measured as the
 * difference between the N-layer and the 0-layer run of the same stage, and full-depth figures
 * extrapolate them to 23 vision layers (feature layer -2 of 24) and 32 text layers. Each figure
 * is the median of R runs after one warm-up run. --smoke runs a tiny geometry once (the test
 * that keeps this program compiling and running). --rss writes the full 7B checkpoint (~14 GB)
 * to a temporary directory, maps it and runs one 32-frame request, reporting the peak RSS; it
 * runs nothing else.
 * --weights q8|q4 converts the weights on load as llavanext_model_params.weights does (--rss:
 * writes the quantized checkpoint too, as `llavanext-cli quantize` does, and maps that); decode
 * stages then count the bytes of the quantized weights, and vision/prefill stages are put next to
 * the int8 dot-product peak (and the float32 GEMM).
 */
#include <jansson.h>
#include <libavutil/log.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "base/half.h"
#include "bench_ceiling.h"
#include "bench_ckpt.h"
#include "io/config.h"
#include "io/quantize.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/quant.h"
#include "llm/llama.h"
#include "vision/clip.h"
#include "vision/onevision.h"
#include "vision/pooler.h"
#include "media/sampler.h"
#include "vision/preprocess.h"
#include "bench_video.h"

#ifndef SAMPLE_BENCH_PATH
#define SAMPLE_BENCH_PATH "sample_bench"
#endif

#define MAX_STAGES 16
#define MAX_RUNS 64

typedef struct opts {
    int layers, layers_given, runs, threads, json, smoke, rss, no_ceilings;
    int onevision, ov_7b;
    int32_t precision;
    int32_t weights; /* llavanext_weights numbering (io/quantize.h) */
    int kv_cache;    /* -1: the library's choice (auto), else the lnx_dtype of the KV cache */
    const char *stages;
    const char *rss_dir;
} opts;

typedef struct stage {
    char name[32];
    char params[200];
    double seconds;      /* median, at the measured depth */
    double work;         /* FLOP, bytes or frames at the measured depth */
    const char *unit;    /* "FLOP", "bytes", "frames" */
    double ceiling;      /* unit/s; 0 = none */
    int layers, full_layers;
    double per_layer;    /* seconds per layer (median of per-run differences) */
    double fixed;        /* seconds of the depth-independent part */
    double full_seconds; /* extrapolated to full depth */
    double full_work;
    double baseline;     /* sample: decode-everything seconds */
    double gemm_ceiling; /* quantized stages: the float32 GEMM ceiling at the stage's shapes */
    /* interleaved samples: run r timed the stage (sec, fix) right after its ceiling (ceil) */
    int nsamples;
    double s_sec[MAX_RUNS], s_fix[MAX_RUNS], s_ceil[MAX_RUNS], s_ratio[MAX_RUNS], s_full_ratio[MAX_RUNS];
    double ratio, ratio_min, ratio_max, full_ratio, full_ratio_min, full_ratio_max; /* medians, spreads */
    char ceiling_name[48]; /* which ceiling was the best (the one the ratio is against) */
    double peak;           /* the ISA's instruction peak (compute stages), for reference */
} stage;

/* A stage's ceiling, measured again for every sample: returns units/s and names the best. */
typedef struct ceil_spec {
    int kind; /* CEIL_COMPUTE: the GEMMs at `shapes`; CEIL_STREAM: a streaming read of `regions`;
                 CEIL_FIXED: `fixed` */
    const gemm_shape *shapes;
    int nshapes;
    double fixed;
    const char *fixed_name;
    const stream_region *regions;
    int nregions;
} ceil_spec;
enum { CEIL_COMPUTE = 0, CEIL_STREAM = 1, CEIL_FIXED = 2 };

typedef struct bench {
    opts o;
    bench_geom g;
    lnx_model_cfg cfg;
    lnx_preproc_cfg pre;
    void *img;
    lnx_st *st;
    lnx_wstore *ws;
    lnx_clip clip;
    lnx_clip_ws clip_ws; /* one request's batches share it, as in the vision encoder */
    lnx_projector proj;
    lnx_llama llama;
    lnx_rope rope;
    lnx_pool *pool;
    lnx_gemm_ctx *gemm;
    stage stages[MAX_STAGES];
    int nstages;
    double c_bf16, c_amx, c_stream;
    int full_v_layers, full_t_layers; /* the untruncated depths the figures extrapolate to */
    /* quantized runs: the float32 GEMM ceiling (best of BLAS and oneDNN) at vision and prefill shapes */
    double c_f32_vision, c_f32_prefill;
    double c_int8; /* int8 dot-product peak (quantized runs) */
    double c_fma512, c_fma256; /* float32 FMA instruction peaks */
    /* decode on a mapped checkpoint (the default load) as well as in memory */
    char map_path[4200], map_dir[4096];
    lnx_st *map_st;
    lnx_wstore *map_ws;
    lnx_llama map_llama;
    int have_map;
    int no_warmup; /* measure() skips its warm-up run (ttft: everything ran already) */
    /* the ceiling shapes of vision (8-frame batches, and one frame) and prefill */
    gemm_shape cv[8], cv1[8], cp[8];
    int ncv, ncv1, ncp;
} bench;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* --stages lists groups (vision, prefill, decode, sample) or single stages (vision_f8, decode_4608). */
static int want(const bench *b, const char *name)
{
    if (!b->o.stages)
        return 1;
    size_t n = strlen(name);
    for (const char *p = b->o.stages; (p = strstr(p, name)) != NULL; p += n) {
        int starts = p == b->o.stages || p[-1] == ',';
        int ends = p[n] == '\0' || p[n] == ',';
        if (starts && ends)
            return 1;
    }
    return 0;
}

static int want_stage(const bench *b, const char *group, const char *name)
{
    return want(b, group) || want(b, name);
}

static void note(const bench *b, const char *fmt, const char *arg)
{
    if (!b->o.json) {
        printf(fmt, arg);
        fflush(stdout);
    }
}

static void die_lnx(const char *what)
{
    fprintf(stderr, "llavanext-bench: %s: %s\n", what, lnx_last_error());
    exit(1);
}

/* ---- model ---- */

static void parse_cfg(const bench_geom *g, lnx_model_cfg *cfg)
{
    char *text = bench_config_json(g);
    json_error_t err;
    json_t *j = text ? json_loads(text, 0, &err) : NULL;
    if (!j) {
        fprintf(stderr, "llavanext-bench: bad generated config: %s\n", text ? err.text : "out of memory");
        exit(1);
    }
    if (lnx_config_parse(cfg, j, "bench config") || lnx_config_parse_processor(cfg, NULL, "bench") ||
        lnx_config_parse_generation(cfg, NULL, "bench"))
        die_lnx("config");
    json_decref(j);
    free(text);
}

static int quantized(const bench *b)
{
    return b->o.weights == LNX_WEIGHTS_Q8 || b->o.weights == LNX_WEIGHTS_Q4;
}

static void bind_model(bench *b)
{
    if (lnx_wstore_create(&b->ws, b->st))
        die_lnx("weights");
    if (b->o.weights != LNX_WEIGHTS_STORED) {
        double t0 = bench_now();
        if (lnx_wstore_convert(b->ws, b->o.weights, b->pool, 0, NULL, NULL))
            die_lnx("converting the weights");
        if (!b->o.json)
            printf("converted the weights to %s on load in %.1f s (%.2f GB)\n", lnx_weights_name(b->o.weights),
                   bench_now() - t0, (double)lnx_wstore_adopted_bytes(b->ws) / 1e9);
    }
    if (lnx_clip_bind(&b->clip, &b->cfg, b->ws, "vision_tower.vision_model.") ||
        lnx_projector_bind(&b->proj, &b->cfg, b->ws, "") ||
        lnx_llama_bind(&b->llama, &b->cfg.text, b->ws, "language_model.model.",
                       b->g.tied ? NULL : "language_model.lm_head.weight") ||
        lnx_rope_init(&b->rope, b->cfg.text.head_dim, b->cfg.text.rope_theta, b->cfg.text.rope_factor))
        die_lnx("binding the weights");
    if (lnx_gemm_ctx_create(&b->gemm, b->o.precision))
        die_lnx("precision");
    b->clip.gemm = b->gemm;
    b->proj.gemm = b->gemm;
    b->llama.gemm = b->gemm;
    lnx_preproc_cfg_default(&b->pre, b->cfg.vision.image_size);
    if (b->g.onevision) { /* LlavaOnevisionVideoProcessor: resize to S x S, mean = std = 0.5 */
        b->pre.do_center_crop = 0;
        b->pre.resize_h = b->pre.resize_w = b->cfg.vision.image_size;
        for (int c = 0; c < 3; c++)
            b->pre.mean[c] = b->pre.std[c] = 0.5f;
    }
}

/* Tokens per frame after pooling (LLaVA-NeXT-Video) or the resize (OneVision), per side. */
static int32_t pooled_side(const bench *b)
{
    return b->g.onevision ? lnx_onevision_pool_side(b->clip.grid, 2) : lnx_pool_out_side(b->clip.grid, b->cfg.pool_stride);
}

static void unbind_model(bench *b)
{
    lnx_gemm_ctx_free(b->gemm);
    lnx_rope_free(&b->rope);
    lnx_llama_unbind(&b->llama);
    lnx_clip_unbind(&b->clip);
    lnx_clip_ws_free(&b->clip_ws);
    lnx_wstore_free(b->ws);
    lnx_st_close(b->st);
    lnx_afree(b->img);
}

/* The same checkpoint written to a temporary file and mapped (LNX_ST_MMAP, the library's default
 * load), bound a second time for the decode stages; the file is removed once mapped. Decode is
 * measured on both: mapped pages (4 KiB, file-backed) are what users get. */
static void map_model(bench *b)
{
    if (b->o.weights != LNX_WEIGHTS_STORED) {
        return; /* converted weights live in memory either way */
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(b->map_dir, sizeof b->map_dir, "%s/lnx-bench-map-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(b->map_dir)) {
        fprintf(stderr, "llavanext-bench: no temporary directory for the mapped checkpoint; decode in memory only\n");
        return;
    }
    snprintf(b->map_path, sizeof b->map_path, "%s/model.safetensors", b->map_dir);
    note(b, "writing the checkpoint to %s to map it ...\n", b->map_path);
    int ok = bench_ckpt_write(&b->g, 42, b->map_path) == 0 && lnx_st_open(&b->map_st, b->map_path, LNX_ST_MMAP) == LNX_OK &&
             lnx_wstore_create(&b->map_ws, b->map_st) == LNX_OK &&
             lnx_llama_bind(&b->map_llama, &b->cfg.text, b->map_ws, "language_model.model.",
                            "language_model.lm_head.weight") == LNX_OK;
    unlink(b->map_path);
    rmdir(b->map_dir);
    if (!ok) {
        fprintf(stderr, "llavanext-bench: mapping the checkpoint failed (%s); decode in memory only\n", lnx_last_error());
        return;
    }
    b->have_map = 1;
}

static void unmap_model(bench *b)
{
    if (!b->have_map)
        return;
    lnx_llama_unbind(&b->map_llama);
    lnx_wstore_free(b->map_ws);
    lnx_st_close(b->map_st);
    b->have_map = 0;
}

/* The bf16 compute ceiling of a bf16 run: the faster of the AVX512-BF16 and AMX dot products
 * (0 for an f32 run). */
static double bf16_peak(const bench *b)
{
    if (lnx_gemm_ctx_precision(b->gemm) != LNX_PRECISION_BF16)
        return 0;
    return b->c_amx > b->c_bf16 ? b->c_amx : b->c_bf16;
}

/* ---- work counts ---- */

static double vit_layer_flop(const lnx_vision_cfg *v, double T)
{
    double D = v->hidden, I = v->intermediate;
    return 2.0 * T * (4 * D * D + 2 * D * I) + 4.0 * T * T * D;
}

static double vision_fixed_flop(const bench *b, double F)
{
    const lnx_vision_cfg *v = &b->cfg.vision;
    double D = v->hidden, P = v->patch_size, npatch = (double)b->clip.grid * b->clip.grid;
    double Dt = b->cfg.text.hidden, o = pooled_side(b);
    /* the projector runs on the pooled tokens, or (OneVision) on every token before the resize */
    double projected = b->g.onevision ? npatch : o * o;
    return F * (2.0 * npatch * 3 * P * P * D + 2.0 * projected * (D * Dt + Dt * Dt));
}

static double llama_layer_params(const lnx_text_cfg *c)
{
    double D = c->hidden, qd = (double)c->heads * c->head_dim, kvd = (double)c->kv_heads * c->head_dim;
    return D * qd * 2 + 2 * D * kvd + 3 * D * c->intermediate;
}

/* Attention FLOP of T causal queries after pos0 cached positions (QK^T and PV). */
static double llama_attn_flop(const lnx_text_cfg *c, double pos0, double T)
{
    double keys = T * pos0 + T * (T + 1) / 2;
    return 4.0 * keys * c->head_dim * c->heads;
}

/* The ceiling of one sample of a stage, measured now, independently of the library's kernels:
 * compute stages the best of cblas_sgemm and oneDNN's matmul at the stage's shapes (bf16 runs:
 * oneDNN's bf16 matmul; quantized runs: the int8 dot-product peak), decode a streaming read of
 * the very bytes the step reads, where they live (mapped file pages or memory). */
static double stage_ceiling(bench *b, const ceil_spec *c, char *name, size_t name_size)
{
    if (c->kind == CEIL_FIXED) {
        snprintf(name, name_size, "%s", c->fixed_name);
        return c->fixed;
    }
    if (c->kind == CEIL_STREAM) {
        snprintf(name, name_size, "stream_read_same_bytes");
        return ceiling_stream_regions(b->pool, c->regions, c->nregions, 1);
    }
    int bf16 = lnx_gemm_ctx_precision(b->gemm) == LNX_PRECISION_BF16;
    double blas = bf16 ? 0 : ceiling_gemm(CEIL_BLAS, 0, c->shapes, c->nshapes, 1, b->o.threads);
    double dnnl = ceiling_gemm(CEIL_ONEDNN, bf16, c->shapes, c->nshapes, 1, b->o.threads);
    /* bf16 where the CPU has AMX: also a plain AMX tile GEMM of the bench's own, best of three runs
     * per shape (with one, a slow minute for the ceiling read as a stage sample 1.31x it; with two,
     * one 8-frame vision sample still read 1.06) */
    double amx = bf16 && b->c_amx > 0 ? ceiling_gemm(CEIL_AMX, 1, c->shapes, c->nshapes, 3, b->o.threads) : 0;
    if (amx > dnnl && amx > blas) {
        snprintf(name, name_size, "amx_tile_gemm_bf16");
        return amx;
    }
    snprintf(name, name_size, "%s", dnnl >= blas ? (bf16 ? "onednn_matmul_bf16" : "onednn_matmul") : "cblas_sgemm");
    return dnnl >= blas ? dnnl : blas;
}

/* The instruction peak a compute stage is also put next to. */
static double isa_peak(const bench *b)
{
    if (lnx_gemm_ctx_precision(b->gemm) == LNX_PRECISION_BF16)
        return bf16_peak(b);
    if (quantized(b))
        return b->c_int8;
    return b->c_fma512 > b->c_fma256 ? b->c_fma512 : b->c_fma256;
}

/* GEMM shapes of a stage for its ceiling: the stage's rows M and inner sizes K, each product's
 * output columns cut to at most 4096 (the widths of the attention products; the MLP's 11008 and
 * the head's 32064 are cut: a full-size ceiling sample would take as long as the stage), weighted
 * by the FLOP of the real products. Cut to 1024, oneDNN's bf16 matmul ran ~3% below its rate at
 * full width and the bf16 prefill read 1.01-1.02 of it (AMD EPYC, 2026-12-05). */
#define CEIL_MAX_N 4096
static int ceiling_shapes(const gemm_shape *real, int n, gemm_shape *out)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        gemm_shape s = real[i];
        int64_t N = s.N < CEIL_MAX_N ? s.N : CEIL_MAX_N;
        /* count: how many N-column slices the real product has (FLOP weight) */
        double slices = (double)s.N / (double)N * (double)s.count;
        int j;
        for (j = 0; j < m; j++)
            if (out[j].M == s.M && out[j].N == N && out[j].K == s.K)
                break;
        if (j == m) {
            out[m] = (gemm_shape){ s.M, N, s.K, 0 };
            m++;
        }
        out[j].count += (int64_t)(slices + 0.5);
    }
    return m;
}

/* ---- vision ---- */

typedef struct vision_bufs {
    int F;
    uint8_t *rgb;
    float *pixels, *feats, *pooled, *proj;
    lnx_frame_prep *prep;
} vision_bufs;

static const int SRC_W = 1280, SRC_H = 720;

static void vision_setup(bench *b, int F, vision_bufs *v)
{
    int32_t S = b->cfg.vision.image_size, T = lnx_clip_out_tokens(&b->clip), D = b->cfg.vision.hidden;
    int32_t o = pooled_side(b), Dt = b->cfg.text.hidden;
    v->F = F;
    v->rgb = malloc((size_t)F * SRC_W * SRC_H * 3);
    v->pixels = lnx_amalloc(sizeof(float) * (size_t)F * 3 * S * S);
    v->feats = lnx_amalloc(sizeof(float) * (size_t)F * T * D);
    v->pooled = lnx_amalloc(sizeof(float) * (size_t)F * o * o * (D > Dt ? D : Dt));
    v->proj = lnx_amalloc(sizeof(float) * (size_t)F * (b->g.onevision ? T : o * o) * Dt);
    if (!v->rgb || !v->pixels || !v->feats || !v->pooled || !v->proj) {
        fprintf(stderr, "llavanext-bench: out of memory for %d frames\n", F);
        exit(1);
    }
    for (size_t i = 0; i < (size_t)F * SRC_W * SRC_H * 3; i++)
        v->rgb[i] = (uint8_t)((i * 2654435761u) >> 13);
    if (lnx_frame_prep_create(&v->prep, &b->pre, SRC_W, SRC_H))
        die_lnx("frame preprocessor");
}

static void vision_free(vision_bufs *v)
{
    lnx_frame_prep_free(v->prep);
    free(v->rgb);
    lnx_afree(v->pixels);
    lnx_afree(v->feats);
    lnx_afree(v->pooled);
    lnx_afree(v->proj);
}

#define VISION_BATCH 8 /* the vision encoder's default max_batch_frames */

static double vit_pass(bench *b, vision_bufs *v, int32_t layers)
{
    int32_t S = b->cfg.vision.image_size, T = lnx_clip_out_tokens(&b->clip), D = b->cfg.vision.hidden;
    int32_t keep = b->clip.run_layers;
    b->clip.run_layers = layers;
    double t0 = bench_now();
    for (int f0 = 0; f0 < v->F; f0 += VISION_BATCH) {
        int nb = v->F - f0 < VISION_BATCH ? v->F - f0 : VISION_BATCH;
        if (lnx_clip_forward(&b->clip, b->pool, v->pixels + (size_t)f0 * 3 * S * S, nb, v->feats + (size_t)f0 * T * D,
                             NULL, NULL, NULL, &b->clip_ws))
            die_lnx("vision tower");
    }
    lnx_clip_ws_free(&b->clip_ws); /* as the encoder releases it at the end of a call */
    double t = bench_now() - t0;
    b->clip.run_layers = keep;
    return t;
}

/* One vision request; returns the seconds of preprocess + ViT + pool + project and the
 * depth-independent part (preprocess, patch embedding, pool, projector). */
static double vision_once(bench *b, vision_bufs *v, double *fixed)
{
    int32_t S = b->cfg.vision.image_size, D = b->cfg.vision.hidden;
    int32_t o = pooled_side(b), g = b->clip.grid;
    double t0 = bench_now();
    for (int i = 0; i < v->F; i++)
        if (lnx_frame_prep_run(v->prep, v->rgb + (size_t)i * SRC_W * SRC_H * 3, SRC_W * 3,
                               v->pixels + (size_t)i * 3 * S * S, b->pool))
            die_lnx("preprocess");
    double t_pre = bench_now() - t0;
    double t_vit = vit_pass(b, v, b->clip.run_layers);
    double t1 = bench_now();
    if (b->g.onevision) { /* project every token, then resize each frame's grid */
        if (lnx_project(&b->proj, b->pool, v->feats, (int64_t)v->F * g * g, v->proj))
            die_lnx("projector");
        lnx_bilinear_resize(b->pool, v->proj, v->F, g, g, b->cfg.text.hidden, o, o, v->pooled);
    } else {
        lnx_pool_frames(b->pool, v->feats, v->F, g, D, b->cfg.pool_stride, b->cfg.pool_mode, v->pooled);
        if (lnx_project(&b->proj, b->pool, v->pooled, (int64_t)v->F * o * o, v->proj))
            die_lnx("projector");
    }
    double t_post = bench_now() - t1;
    double t_vit0 = vit_pass(b, v, 0);
    *fixed = t_pre + t_vit0 + t_post;
    return t_pre + t_vit + t_post;
}

static stage *new_stage(bench *b, const char *name)
{
    stage *s = &b->stages[b->nstages++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

/* Runs `once` warm-up + R times; fills seconds, fixed, per_layer and full_seconds. */
typedef double (*once_fn)(bench *b, void *arg, double *fixed);

static double stage_ceiling(bench *b, const ceil_spec *c, char *name, size_t name_size);

static void spread(const double *v, int n, double *med, double *lo, double *hi)
{
    double t[MAX_RUNS];
    memcpy(t, v, sizeof(double) * (size_t)n);
    *med = median(t, n);
    *lo = t[0];
    *hi = t[n - 1];
}

/* Each of R samples measures the stage's ceiling and then the stage, back to back (same minute,
 * same shapes), after one warm-up of both; the ratio of each sample is against its own ceiling. */
static void measure(bench *b, stage *s, once_fn fn, void *arg, const ceil_spec *cs)
{
    int R = b->o.runs;
    double tot[MAX_RUNS], fix[MAX_RUNS], per[MAX_RUNS];
    double dummy;
    char name[48] = "-";
    if (!b->no_warmup) {
        fn(b, arg, &dummy);
        if (cs && !b->o.no_ceilings)
            stage_ceiling(b, cs, name, sizeof name);
    }
    s->nsamples = R;
    for (int r = 0; r < R; r++) {
        double c = cs && !b->o.no_ceilings ? stage_ceiling(b, cs, name, sizeof name) : 0;
        tot[r] = fn(b, arg, &fix[r]);
        per[r] = s->layers > 0 ? (tot[r] - fix[r]) / s->layers : 0;
        double full = fix[r] + per[r] * s->full_layers;
        s->s_sec[r] = tot[r];
        s->s_fix[r] = fix[r];
        s->s_ceil[r] = c;
        s->s_ratio[r] = c > 0 ? s->work / tot[r] / c : 0;
        s->s_full_ratio[r] = c > 0 && full > 0 ? s->full_work / full / c : 0;
    }
    snprintf(s->ceiling_name, sizeof s->ceiling_name, "%s", name);
    double t[MAX_RUNS];
    memcpy(t, s->s_ceil, sizeof(double) * (size_t)R);
    s->ceiling = median(t, R);
    spread(s->s_ratio, R, &s->ratio, &s->ratio_min, &s->ratio_max);
    spread(s->s_full_ratio, R, &s->full_ratio, &s->full_ratio_min, &s->full_ratio_max);
    s->seconds = median(tot, R);
    s->fixed = median(fix, R);
    s->per_layer = median(per, R);
    s->full_seconds = s->fixed + s->per_layer * s->full_layers;
}

static double vision_fn(bench *b, void *arg, double *fixed)
{
    return vision_once(b, arg, fixed);
}

static void stage_vision(bench *b, int F)
{
    char name[32];
    snprintf(name, sizeof name, "vision_f%d", F);
    note(b, "  %s ...\n", name);
    stage *s = new_stage(b, name);
    vision_bufs v;
    vision_setup(b, F, &v);
    s->layers = b->clip.run_layers;
    s->full_layers = b->o.smoke ? s->layers : b->full_v_layers;
    double T = b->clip.tokens;
    s->unit = "FLOP";
    s->work = vision_fixed_flop(b, F) + F * s->layers * vit_layer_flop(&b->cfg.vision, T);
    s->full_work = vision_fixed_flop(b, F) + F * s->full_layers * vit_layer_flop(&b->cfg.vision, T);
    snprintf(s->params, sizeof s->params, "%d frames %dx%d -> %dx%d, batch %d, %d of %d layers", F, SRC_W, SRC_H,
             b->cfg.vision.image_size, b->cfg.vision.image_size, VISION_BATCH, s->layers, s->full_layers);
    ceil_spec cs = { CEIL_COMPUTE, F == 1 ? b->cv1 : b->cv, F == 1 ? b->ncv1 : b->ncv, 0, NULL, NULL, 0 };
    if (quantized(b) && b->c_int8 > 0)
        cs = (ceil_spec){ CEIL_FIXED, NULL, 0, b->c_int8, "int8_dot_peak", NULL, 0 };
    s->peak = isa_peak(b);
    s->gemm_ceiling = quantized(b) ? b->c_f32_vision : 0;
    measure(b, s, vision_fn, &v, &cs);
    vision_free(&v);
}

/* ---- language model ---- */

typedef struct llm_run {
    int64_t T;     /* prefill tokens, or the context of the decode step */
    int decode;
    float *input;
    float *logits;
    lnx_kv kv;
    lnx_llama_scratch scratch;
} llm_run;

#define PREFILL_CHUNK 2048 /* the generator's default prefill_chunk */

static double llm_pass(bench *b, llm_run *r, int32_t layers)
{
    int32_t keep = b->llama.cfg.layers;
    b->llama.cfg.layers = layers;
    double t0 = bench_now();
    if (r->decode) {
        lnx_llama_pass p = { r->input, 1, r->T, 0, 1, r->logits, NULL };
        if (lnx_llama_forward(&b->llama, &b->rope, &r->kv, &r->scratch, b->pool, &p))
            die_lnx("decode");
    } else {
        for (int64_t t0p = 0; t0p < r->T; t0p += PREFILL_CHUNK) {
            int64_t n = r->T - t0p < PREFILL_CHUNK ? r->T - t0p : PREFILL_CHUNK;
            int last = t0p + n == r->T;
            lnx_llama_pass p = { r->input + t0p * b->cfg.text.hidden, n, t0p, n - 1, last, r->logits, NULL };
            if (lnx_llama_forward(&b->llama, &b->rope, &r->kv, &r->scratch, b->pool, &p))
                die_lnx("prefill");
        }
    }
    double t = bench_now() - t0;
    b->llama.cfg.layers = keep;
    return t;
}

static double llm_fn(bench *b, void *arg, double *fixed)
{
    llm_run *r = arg;
    double t = llm_pass(b, r, b->llama.cfg.layers);
    *fixed = llm_pass(b, r, 0);
    return t;
}

static void fill_input(float *x, int64_t n)
{
    uint32_t s = 777;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = ((float)(s >> 9) * (1.0f / 8388608.0f) - 0.5f) * 0.05f;
    }
}

/* Bytes a product reads of a weight: its rows in the stored (or converted) format. */
static double wmat_bytes(const lnx_wmat *w)
{
    return (double)w->rows * (double)lnx_row_bytes(w->dtype, w->cols);
}

static double layer_weight_bytes(const lnx_llama_layer *L)
{
    return wmat_bytes(&L->q) + wmat_bytes(&L->k) + wmat_bytes(&L->v) + wmat_bytes(&L->o) + wmat_bytes(&L->gate) +
           wmat_bytes(&L->up) + wmat_bytes(&L->down);
}

/* The KV cache type of the run: --kv-cache, else the library's choice for the weights. */
static lnx_dtype bench_kv_dtype(const bench *b)
{
    return b->o.kv_cache < 0 ? lnx_llama_kv_dtype(&b->llama) : lnx_llama_kv_fit(&b->llama, (lnx_dtype)b->o.kv_cache);
}

static const char *kv_name(lnx_dtype dt)
{
    return dt == LNX_DT_Q8 ? "q8" : dt == LNX_DT_F16 ? "f16" : "f32";
}

/* The buffers one decode step reads, as stream regions: each run layer's seven weights and its
 * K and V rows for `ctx` positions, and the LM head (the ceiling reads exactly these bytes). */
#define MAX_DECODE_LAYERS 64
static int decode_regions(const bench *b, const lnx_kv *kv, int64_t ctx, stream_region *reg)
{
    int n = 0;
    int32_t layers = b->cfg.text.layers < MAX_DECODE_LAYERS ? b->cfg.text.layers : MAX_DECODE_LAYERS;
    size_t rb = lnx_kv_row_bytes(kv);
    for (int32_t l = 0; l < layers; l++) {
        const lnx_llama_layer *L = &b->llama.layers[l];
        const lnx_wmat *w[7] = { &L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down };
        for (int i = 0; i < 7; i++)
            reg[n++] = (stream_region){ w[i]->data, (uint64_t)wmat_bytes(w[i]) };
        uint64_t off = (uint64_t)l * (uint64_t)kv->capacity * (uint64_t)rb;
        uint64_t len = (uint64_t)ctx * (uint64_t)rb;
        reg[n++] = (stream_region){ (const uint8_t *)kv->k + off, len };
        reg[n++] = (stream_region){ (const uint8_t *)kv->v + off, len };
    }
    reg[n++] = (stream_region){ b->llama.lm_head.data, (uint64_t)wmat_bytes(&b->llama.lm_head) };
    return n;
}

static void stage_prefill_decode(bench *b, int64_t T, int do_prefill, int do_decode)
{
    if (!do_prefill && !do_decode)
        return;
    const lnx_text_cfg *c = &b->cfg.text;
    llm_run r;
    memset(&r, 0, sizeof r);
    r.T = T;
    r.input = lnx_amalloc(sizeof(float) * (size_t)T * (size_t)c->hidden);
    r.logits = lnx_amalloc(sizeof(float) * (size_t)c->vocab);
    if (!r.input || !r.logits || lnx_kv_init_dtype(&r.kv, c->layers, c->kv_heads * c->head_dim, T + 1, bench_kv_dtype(b)))
        die_lnx("language model buffers");
    fill_input(r.input, T * c->hidden);
    int full = b->o.smoke ? c->layers : b->full_t_layers;
    double lp = llama_layer_params(c);
    if (do_prefill || do_decode) {
        char name[32];
        snprintf(name, sizeof name, "prefill_%lld", (long long)T);
        note(b, "  %s ...\n", name);
        stage *s = do_prefill ? new_stage(b, name) : NULL;
        if (s) {
            s->layers = c->layers;
            s->full_layers = full;
            s->unit = "FLOP";
            double head = 2.0 * c->hidden * c->vocab;
            double layer = 2.0 * lp * T + llama_attn_flop(c, 0, T);
            s->work = head + layer * s->layers;
            s->full_work = head + layer * full;
            snprintf(s->params, sizeof s->params, "%lld tokens in chunks of %d, %d of %d layers", (long long)T,
                     PREFILL_CHUNK, s->layers, full);
            ceil_spec cs = { CEIL_COMPUTE, b->cp, b->ncp, 0, NULL, NULL, 0 };
            if (quantized(b) && b->c_int8 > 0)
                cs = (ceil_spec){ CEIL_FIXED, NULL, 0, b->c_int8, "int8_dot_peak", NULL, 0 };
            s->peak = isa_peak(b);
            s->gemm_ceiling = quantized(b) ? b->c_f32_prefill : 0;
            measure(b, s, llm_fn, &r, &cs);
        } else {
            llm_pass(b, &r, c->layers); /* fills the cache for the decode step */
        }
    }
    if (do_decode) {
        /* the headline decode_T on the mapped checkpoint (the default load), decode_T_mem on the
         * weights in memory */
        for (int mapped = b->have_map ? 1 : 0; mapped >= 0; mapped--) {
            char name[32];
            snprintf(name, sizeof name, mapped || !b->have_map ? "decode_%lld" : "decode_%lld_mem", (long long)T);
            note(b, "  %s ...\n", name);
            stage *s = new_stage(b, name);
            r.decode = 1;
            s->layers = c->layers;
            s->full_layers = full;
            s->unit = "bytes";
            double kvb = 2.0 * (double)(T + 1) * (double)lnx_kv_row_bytes(&r.kv);
            double head = wmat_bytes(&b->llama.lm_head);
            double layer = layer_weight_bytes(&b->llama.layers[0]) + kvb;
            s->work = head + layer * s->layers;
            s->full_work = head + layer * full;
            snprintf(s->params, sizeof s->params, "1 token after %lld cached, %d of %d layers, weights (%s) + %s KV read",
                     (long long)T, s->layers, full, mapped ? "mapped file" : "in memory", kv_name(r.kv.dtype));
            lnx_llama keep = b->llama;
            if (mapped) {
                b->map_llama.gemm = b->gemm;
                b->llama = b->map_llama;
            }
            stream_region reg[7 * MAX_DECODE_LAYERS + 1 + 2 * MAX_DECODE_LAYERS];
            ceil_spec cs = { CEIL_STREAM, NULL, 0, 0, NULL, reg, decode_regions(b, &r.kv, T + 1, reg) };
            measure(b, s, llm_fn, &r, &cs);
            b->llama = keep;
        }
    }
    lnx_kv_free(&r.kv);
    lnx_llama_scratch_free(&r.scratch);
    lnx_afree(r.input);
    lnx_afree(r.logits);
}

/* ---- time to the first token of a whole 32-frame request ---- */

#define TTFT_TEXT_TOKENS 32 /* the prompt's text around the video */

typedef struct ttft_run {
    const char *video;
    int F;
    int32_t layers_v, layers_t;
    llm_run r;
    float *pixels, *feats, *pooled;
    int64_t video_rows;
    int32_t first_token;
} ttft_run;

/* One request as an application makes it: open the video, sample F frames uniformly (seek-based),
 * preprocess, the vision tower in batches, pooling, projector, the prompt (text rows around the
 * video rows) through prefill to the first token's logits, and the greedy pick. */
static double ttft_once(bench *b, ttft_run *t)
{
    int32_t S = b->cfg.vision.image_size, T = lnx_clip_out_tokens(&b->clip), D = b->cfg.vision.hidden;
    int32_t o = lnx_pool_out_side(b->clip.grid, b->cfg.pool_stride);
    double t0 = bench_now();
    lnx_media_opts mo = lnx_media_opts_default();
    mo.threads = b->o.threads;
    lnx_media *m = NULL;
    int64_t idx[64];
    lnx_frames *fr = NULL;
    if (lnx_media_open_path(&m, t->video, &mo) || lnx_media_uniform_indices(m, t->F, idx) ||
        lnx_media_read(m, idx, t->F, &fr))
        die_lnx("sampling the video");
    lnx_media_close(m);
    lnx_frame_prep *prep;
    if (lnx_frame_prep_create(&prep, &b->pre, fr->width, fr->height))
        die_lnx("frame preprocessor");
    for (int i = 0; i < t->F; i++)
        if (lnx_frame_prep_run(prep, fr->data + (size_t)i * fr->width * fr->height * 3, fr->width * 3,
                               t->pixels + (size_t)i * 3 * S * S, b->pool))
            die_lnx("preprocess");
    lnx_frame_prep_free(prep);
    lnx_frames_free(fr);
    for (int f0 = 0; f0 < t->F; f0 += VISION_BATCH) {
        int nb = t->F - f0 < VISION_BATCH ? t->F - f0 : VISION_BATCH;
        if (lnx_clip_forward(&b->clip, b->pool, t->pixels + (size_t)f0 * 3 * S * S, nb, t->feats + (size_t)f0 * T * D,
                             NULL, NULL, NULL, &b->clip_ws))
            die_lnx("vision tower");
    }
    lnx_clip_ws_free(&b->clip_ws);
    lnx_pool_frames(b->pool, t->feats, t->F, b->clip.grid, D, b->cfg.pool_stride, b->cfg.pool_mode, t->pooled);
    /* the video rows go straight into the prompt's input rows, after the first half of the text */
    float *video_in = t->r.input + (int64_t)(TTFT_TEXT_TOKENS / 2) * b->cfg.text.hidden;
    if (lnx_project(&b->proj, b->pool, t->pooled, (int64_t)t->F * o * o, video_in))
        die_lnx("projector");
    llm_pass(b, &t->r, b->llama.cfg.layers);
    int32_t best = 0;
    for (int32_t v = 1; v < b->cfg.text.vocab; v++)
        if (t->r.logits[v] > t->r.logits[best])
            best = v;
    t->first_token = best;
    return bench_now() - t0;
}

static double ttft_fn(bench *b, void *arg, double *fixed)
{
    double t = ttft_once(b, arg);
    *fixed = t; /* no split: extrapolated from the vision and prefill stages' per-layer times */
    return t;
}

static void stage_ttft(bench *b, int F)
{
    char name[32];
    snprintf(name, sizeof name, "ttft_%d", F);
    note(b, "  %s (generating the video first) ...\n", name);
    const char *tmp = getenv("TMPDIR");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/lnx-bench-ttft-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "llavanext-bench: no temporary directory for the ttft video\n");
        return;
    }
    snprintf(path, sizeof path, "%s/request.mp4", dir);
    /* 20 s of 1280x720 at 25 fps with a keyframe every 2 s (the sample stage's kind of video,
     * shorter: seek-based sampling costs the same per frame) */
    int w = b->o.smoke ? 64 : SRC_W, h = b->o.smoke ? 48 : SRC_H;
    int64_t nframes = b->o.smoke ? 75 : 500;
    if (bench_video_generate(path, w, h, 25, 50, nframes)) {
        fprintf(stderr, "llavanext-bench: generating the ttft video failed\n");
        unlink(path);
        rmdir(dir);
        return;
    }
    const lnx_text_cfg *c = &b->cfg.text;
    int32_t S = b->cfg.vision.image_size, T = lnx_clip_out_tokens(&b->clip), D = b->cfg.vision.hidden;
    int32_t o = lnx_pool_out_side(b->clip.grid, b->cfg.pool_stride);
    ttft_run t;
    memset(&t, 0, sizeof t);
    t.video = path;
    t.F = F;
    t.video_rows = (int64_t)F * o * o;
    t.r.T = t.video_rows + TTFT_TEXT_TOKENS;
    t.pixels = lnx_amalloc(sizeof(float) * (size_t)F * 3 * S * S);
    t.feats = lnx_amalloc(sizeof(float) * (size_t)F * T * D);
    t.pooled = lnx_amalloc(sizeof(float) * (size_t)F * o * o * D);
    t.r.input = lnx_amalloc(sizeof(float) * (size_t)t.r.T * (size_t)c->hidden);
    t.r.logits = lnx_amalloc(sizeof(float) * (size_t)c->vocab);
    if (!t.pixels || !t.feats || !t.pooled || !t.r.input || !t.r.logits ||
        lnx_kv_init_dtype(&t.r.kv, c->layers, c->kv_heads * c->head_dim, t.r.T + 1, bench_kv_dtype(b)))
        die_lnx("ttft buffers");
    fill_input(t.r.input, t.r.T * c->hidden);
    stage *s = new_stage(b, name);
    s->unit = "s";
    s->layers = 0;
    s->full_layers = 0;
    s->work = 1;
    s->full_work = 1;
    /* a whole request takes a minute or more at two layers: one run (no ceiling to interleave),
     * after the other stages warmed every kernel up (alone: one warm-up run first) */
    int keep_runs = b->o.runs;
    b->o.runs = 1;
    b->no_warmup = b->nstages > 1;
    measure(b, s, ttft_fn, &t, NULL);
    b->o.runs = keep_runs;
    b->no_warmup = 0;
    /* full depth: the measured request plus the layers it did not run, at the per-layer times the
     * vision_f32 and the longest prefill stage measured in this run */
    double pv = 0, pt = 0;
    for (int i = 0; i < b->nstages; i++) {
        if (!strcmp(b->stages[i].name, "vision_f32"))
            pv = b->stages[i].per_layer;
        if (!strncmp(b->stages[i].name, "prefill_", 8))
            pt = b->stages[i].per_layer; /* the last one: the longest prompt */
    }
    int fv = b->o.smoke ? b->clip.run_layers : 23, ft = b->o.smoke ? c->layers : 32;
    s->full_seconds = s->seconds + (fv - b->clip.run_layers) * pv + (ft - c->layers) * pt;
    snprintf(s->params, sizeof s->params,
             "%d frames sampled from a %lld-frame %dx%d video, vision, %lld-token prompt prefill, first token; "
             "full depth %s",
             F, (long long)nframes, w, h, (long long)t.r.T,
             pv > 0 && pt > 0 ? "adds vision_f32's and the prefill's per-layer times" : "not extrapolated (no stages)");
    lnx_kv_free(&t.r.kv);
    lnx_llama_scratch_free(&t.r.scratch);
    lnx_afree(t.r.input);
    lnx_afree(t.r.logits);
    lnx_afree(t.pixels);
    lnx_afree(t.feats);
    lnx_afree(t.pooled);
    unlink(path);
    rmdir(dir);
}

/* ---- frame sampling (bench/sample_bench, run as a program) ---- */

static void stage_sample(bench *b)
{
    note(b, "  %s ...\n", "sample (generating the video takes a while)");
    char cmd[1024];
    const char *args = b->o.smoke ? "--minutes 0.05 --width 64 --height 48 --fps 25 --gop 50 --frames 8"
                                  : "--minutes 10 --width 1280 --height 720 --fps 25 --gop 50 --frames 32";
    snprintf(cmd, sizeof cmd, "'%s' %s --threads %d 2>&1", SAMPLE_BENCH_PATH, args, b->o.threads);
    FILE *p = popen(cmd, "r");
    if (!p) {
        perror("popen");
        return;
    }
    char line[512];
    double seek = -1, all = -1;
    char encoder[64] = "?";
    while (fgets(line, sizeof line, p)) {
        double v;
        const char *e = strstr(line, "encoder ");
        if (e)
            sscanf(e + 8, "%63s", encoder);
        if (sscanf(line, "  seek-based : %lf", &v) == 1 || sscanf(line, "  seek-based       : %lf", &v) == 1)
            seek = v;
        if (sscanf(line, "  decode-everything: %lf", &v) == 1)
            all = v;
    }
    int rc = pclose(p);
    if (seek <= 0 || all <= 0 || rc != 0) {
        fprintf(stderr, "llavanext-bench: %s failed (status %d)\n", SAMPLE_BENCH_PATH, rc);
        return;
    }
    stage *s = new_stage(b, "sample");
    int frames = b->o.smoke ? 8 : 32;
    snprintf(s->params, sizeof s->params,
             "%d frames of a %s %s video, 25 fps, GOP 50 (2 s), seek vs decode-everything (one run)", frames,
             b->o.smoke ? "3 s 64x48" : "10 min 1280x720", encoder);
    s->seconds = seek;
    s->full_seconds = seek;
    s->work = frames;
    s->full_work = frames;
    s->unit = "frames";
    s->baseline = all;
}

/* ---- peak RSS of a full request on a mapped checkpoint ---- */

/* The process's peak RSS (VmHWM, which reset_peak_rss restarts; getrusage's maximum where
 * /proc is not there). */
static long peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    if (kb >= 0)
        return kb * 1024L;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss * 1024L;
}

/* Restarts the peak RSS from the current RSS (Linux: clear_refs 5); 0 when it did. */
static int reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Current anonymous and file-backed resident bytes (/proc/self/status), for the breakdown. */
static void rss_split(long *anon, long *file)
{
    *anon = *file = 0;
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        long kb;
        if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
            *anon = kb * 1024;
        else if (sscanf(line, "RssFile: %ld kB", &kb) == 1)
            *file = kb * 1024;
    }
    if (f)
        fclose(f);
}

static int run_rss(bench *b)
{
    const char *tmp = b->o.rss_dir ? b->o.rss_dir : getenv("TMPDIR");
    char dir[4096], path[4400];
    snprintf(dir, sizeof dir, "%s/lnx-bench-XXXXXX", tmp && *tmp ? tmp : "/var/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    b->g = bench_geom_7b();
    if (b->o.layers_given) /* a truncated text model, to look at the memory of the parts quickly */
        b->g.t_layers = b->o.layers;
    parse_cfg(&b->g, &b->cfg);
    note(b, "writing %s ...\n", path);
    double t0 = bench_now();
    if (bench_ckpt_write(&b->g, 42, path)) {
        fprintf(stderr, "llavanext-bench: writing %s failed\n", path);
        unlink(path);
        rmdir(dir);
        return 1;
    }
    double t_write = bench_now() - t0;
    double t_quant = 0;
    if (b->o.weights != LNX_WEIGHTS_STORED) {
        /* quantize-then-load: the converted checkpoint written as `llavanext-cli quantize` writes
         * it, the bf16 one deleted, the peak RSS restarted so that it is the request's own */
        char qpath[4300];
        snprintf(qpath, sizeof qpath, "%s/model.%s.safetensors", dir, lnx_weights_name(b->o.weights));
        note(b, "writing %s ...\n", qpath);
        lnx_st *src;
        t0 = bench_now();
        if (lnx_st_open(&src, path, LNX_ST_MMAP) ||
            lnx_quantize_checkpoint(src, b->o.weights, qpath, b->pool, NULL, NULL))
            die_lnx("quantizing the checkpoint");
        lnx_st_close(src);
        t_quant = bench_now() - t0;
        unlink(path);
        snprintf(path, sizeof path, "%s", qpath);
        if (reset_peak_rss())
            fprintf(stderr, "llavanext-bench: cannot restart the peak RSS; it includes the quantizing\n");
    }
    if (lnx_st_open(&b->st, path, LNX_ST_MMAP))
        die_lnx("mapping the checkpoint");
    bind_model(b);
    long rss_loaded = peak_rss_bytes();
    const int F = 32;
    vision_bufs v;
    vision_setup(b, F, &v);
    double fixed;
    t0 = bench_now();
    vision_once(b, &v, &fixed);
    double t_vision = bench_now() - t0;
    const lnx_text_cfg *c = &b->cfg.text;
    int32_t o = lnx_pool_out_side(b->clip.grid, b->cfg.pool_stride);
    int64_t Tm = (int64_t)F * o * o, T = Tm + 64, gen = 8;
    llm_run r;
    memset(&r, 0, sizeof r);
    r.T = T;
    r.input = lnx_amalloc(sizeof(float) * (size_t)T * (size_t)c->hidden);
    r.logits = lnx_amalloc(sizeof(float) * (size_t)c->vocab);
    if (!r.input || !r.logits || lnx_kv_init_dtype(&r.kv, c->layers, c->kv_heads * c->head_dim, T + gen, bench_kv_dtype(b)))
        die_lnx("language model buffers");
    /* 32 text tokens, the video's embeddings, 32 more text tokens */
    int32_t ids[64];
    for (int i = 0; i < 64; i++)
        ids[i] = 100 + i;
    lnx_llama_embed(&b->llama, ids, 32, r.input);
    memcpy(r.input + 32 * c->hidden, v.proj, sizeof(float) * (size_t)Tm * c->hidden);
    lnx_llama_embed(&b->llama, ids + 32, 32, r.input + (32 + Tm) * c->hidden);
    vision_free(&v);
    long anon_v, file_v;
    rss_split(&anon_v, &file_v);
    t0 = bench_now();
    llm_pass(b, &r, c->layers);
    double t_prefill = bench_now() - t0;
    long anon_p, file_p;
    rss_split(&anon_p, &file_p);
    t0 = bench_now();
    for (int64_t i = 0; i < gen; i++) {
        int32_t best = 0;
        for (int32_t k = 1; k < c->vocab; k++)
            if (r.logits[k] > r.logits[best])
                best = k;
        float x[8192];
        lnx_llama_embed(&b->llama, &best, 1, x);
        lnx_llama_pass p = { x, 1, T + i, 0, 1, r.logits, NULL };
        if (lnx_llama_forward(&b->llama, &b->rope, &r.kv, &r.scratch, b->pool, &p))
            die_lnx("decode");
    }
    double t_decode = (bench_now() - t0) / (double)gen;
    long peak = peak_rss_bytes();
    size_t kv_bytes = 2 * (size_t)c->layers * (size_t)r.kv.capacity * lnx_kv_row_bytes(&r.kv);
    lnx_kv_free(&r.kv);
    lnx_llama_scratch_free(&r.scratch);
    lnx_afree(r.input);
    lnx_afree(r.logits);
    uint64_t file_bytes = lnx_st_data_bytes(b->st);
    const char *prec = lnx_gemm_ctx_precision(b->gemm) == LNX_PRECISION_BF16 ? "bf16" : "f32";
    unbind_model(b);
    unlink(path);
    rmdir(dir);
    if (b->o.json) {
        printf("{\"peak_rss_bytes\": %ld, \"rss_after_bind_bytes\": %ld, \"checkpoint_bytes\": %llu, "
               "\"kv_cache_bytes\": %zu, \"kv_cache\": \"%s\", \"anon_after_vision_bytes\": %ld, \"anon_after_prefill_bytes\": %ld, "
               "\"file_after_prefill_bytes\": %ld, "
               "\"precision\": \"%s\", \"weights\": \"%s\", \"quantize_seconds\": %.3f, \"frames\": %d, "
               "\"prompt_tokens\": %lld, \"write_seconds\": %.3f, "
               "\"vision_seconds\": %.3f, \"prefill_seconds\": %.3f, \"decode_seconds_per_token\": %.4f}\n",
               peak, rss_loaded, (unsigned long long)file_bytes, kv_bytes, kv_name(r.kv.dtype), anon_v, anon_p, file_p, prec,
               lnx_weights_name(b->o.weights), t_quant, F,
               (long long)T, t_write, t_vision, t_prefill, t_decode);
    } else {
        printf("full 7B request on a mapped %s checkpoint (%.2f GB, written in %.0f s, quantized in %.0f s), "
               "precision %s:\n", b->o.weights ? lnx_weights_name(b->o.weights) : "bf16", (double)file_bytes / 1e9,
               t_write, t_quant, prec);
        printf("  %d frames -> %lld prompt positions; vision %.1f s, prefill %.1f s, decode %.3f s/token\n", F,
               (long long)T, t_vision, t_prefill, t_decode);
        printf("  peak RSS %.2f GiB (after binding: %.2f GiB); after prefill: mapped weights %.2f GiB, anonymous "
               "%.2f GiB of which KV cache %.2f GiB (%s); anonymous after vision %.2f GiB\n",
               (double)peak / (1 << 30), (double)rss_loaded / (1 << 30), (double)file_p / (1 << 30),
               (double)anon_p / (1 << 30), (double)kv_bytes / (1 << 30), kv_bytes ? kv_name(r.kv.dtype) : "-",
               (double)anon_v / (1 << 30));
    }
    return 0;
}

/* ---- output ---- */

static const char *rate_unit(const char *unit, double *scale)
{
    if (!strcmp(unit, "FLOP")) {
        *scale = 1e9;
        return "GFLOP/s";
    }
    if (!strcmp(unit, "bytes")) {
        *scale = 1e9;
        return "GB/s";
    }
    *scale = 1;
    return "frames/s";
}

static const char *geometry_name(const bench *b)
{
    if (b->o.smoke)
        return b->g.onevision ? "tiny OneVision (smoke)" : "tiny (smoke)";
    return !b->g.onevision ? "LLaVA-NeXT-Video-7B (CLIP ViT-L/14-336 + Llama-2-7B)"
           : b->o.ov_7b   ? "LLaVA-OneVision 7B (SigLIP so400m/14-384 + Qwen2-7B)"
                          : "LLaVA-OneVision 0.5B (SigLIP so400m/14-384 + Qwen2-0.5B)";
}

static void print_text(const bench *b)
{
    printf("\nmodel: %s\n", geometry_name(b));
    printf("\ninstruction peaks: float32 FMA AVX-512 %.1f, AVX2 %.1f GFLOP/s; BF16 dot %.1f GFLOP/s; AMX BF16 %.1f "
           "GFLOP/s; stream read %.1f GB/s (%d threads; the library's float32 products: %s)\n",
           b->c_fma512 / 1e9, b->c_fma256 / 1e9, b->c_bf16 / 1e9, b->c_amx / 1e9, b->c_stream / 1e9, b->o.threads,
           lnx_sgemm_backend());
    if (b->c_int8 > 0)
        printf("int8 dot product peak (%s) %.1f Gop/s\n", lnx_qisa_name(lnx_qisa_best()), b->c_int8 / 1e9);
    printf("weights: %s; %d interleaved samples per stage (ceiling, then stage); ratio = median [min, max]\n",
           lnx_weights_name(b->o.weights), b->o.runs);
    printf("%-16s %9s %11s %12s %-20s %18s %11s %13s %18s\n", "stage", "seconds", "work", "rate", "ceiling (best)",
           "ratio", "s/layer", "full-depth s", "full ratio");
    for (int i = 0; i < b->nstages; i++) {
        const stage *s = &b->stages[i];
        double scale;
        const char *u = rate_unit(s->unit, &scale);
        double rate = s->work / s->seconds;
        char work[32], ceil[48], ratio[40], fratio[40], per[16];
        snprintf(work, sizeof work, "%.3g %s", s->work / (strcmp(s->unit, "frames") && strcmp(s->unit, "s") ? 1e9 : 1),
                 !strcmp(s->unit, "FLOP") ? "GF" : !strcmp(s->unit, "bytes") ? "GB" : !strcmp(s->unit, "s") ? "s" : "fr");
        if (s->ceiling > 0)
            snprintf(ceil, sizeof ceil, "%.1f %s", s->ceiling / scale, s->ceiling_name);
        else
            snprintf(ceil, sizeof ceil, "-");
        if (s->ceiling > 0 && s->nsamples > 0) {
            snprintf(ratio, sizeof ratio, "%.2f [%.2f, %.2f]", s->ratio, s->ratio_min, s->ratio_max);
            snprintf(fratio, sizeof fratio, "%.2f [%.2f, %.2f]", s->full_ratio, s->full_ratio_min, s->full_ratio_max);
        } else {
            snprintf(ratio, sizeof ratio, "-");
            snprintf(fratio, sizeof fratio, "-");
        }
        snprintf(per, sizeof per, s->layers ? "%.4f" : "-", s->per_layer);
        printf("%-16s %9.4f %11s %7.2f %-4s %-20s %18s %11s %13.3f %18s\n", s->name, s->seconds, work,
               !strcmp(s->unit, "s") ? 0 : rate / scale, !strcmp(s->unit, "s") ? "" : u, ceil, ratio, per,
               s->full_seconds, fratio);
        if (s->baseline > 0)
            printf("%-16s   decode-everything %.3f s: seek-based is %.1fx faster\n", "", s->baseline,
                   s->baseline / s->seconds);
        if (s->peak > 0)
            printf("%-16s   %.2f of the instruction peak (%.1f GFLOP/s)\n", "", rate / s->peak, s->peak / 1e9);
        if (s->gemm_ceiling > 0)
            printf("%-16s   %.2f of the float32 GEMM at these shapes (%.1f GFLOP/s)\n", "", rate / s->gemm_ceiling,
                   s->gemm_ceiling / 1e9);
        printf("%-16s   %s\n", "", s->params);
    }
}

static json_t *samples_json(const double *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static void print_json(const bench *b)
{
    json_t *root = json_object();
    json_t *ceil = json_object();
    json_object_set_new(root, "model", json_string(geometry_name(b)));
    json_object_set_new(root, "family", json_string(b->g.onevision ? "llava_onevision" : "llava_next_video"));
    json_object_set_new(ceil, "fma_avx512_flops", json_real(b->c_fma512));
    json_object_set_new(ceil, "fma_avx2_flops", json_real(b->c_fma256));
    json_object_set_new(ceil, "bf16_dot_flops", json_real(b->c_bf16));
    json_object_set_new(ceil, "amx_bf16_flops", json_real(b->c_amx));
    json_object_set_new(ceil, "stream_read_bytes_per_s", json_real(b->c_stream));
    json_object_set_new(ceil, "int8_dot_ops", json_real(b->c_int8));
    json_object_set_new(ceil, "int8_kernels", json_string(lnx_qisa_name(lnx_qisa_best())));
    json_object_set_new(ceil, "f32_gemm_vision_flops", json_real(b->c_f32_vision));
    json_object_set_new(ceil, "f32_gemm_prefill_flops", json_real(b->c_f32_prefill));
    json_object_set_new(ceil, "library_f32_backend", json_string(lnx_sgemm_backend()));
    json_object_set_new(root, "ceilings", ceil);
    json_t *arr = json_array();
    for (int i = 0; i < b->nstages; i++) {
        const stage *s = &b->stages[i];
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(s->name));
        json_object_set_new(o, "params", json_string(s->params));
        json_object_set_new(o, "seconds", json_real(s->seconds));
        json_object_set_new(o, "work", json_real(s->work));
        json_object_set_new(o, "unit", json_string(s->unit));
        json_object_set_new(o, "rate", json_real(s->work / s->seconds));
        json_object_set_new(o, "ceiling", s->ceiling > 0 ? json_real(s->ceiling) : json_null());
        json_object_set_new(o, "ceiling_name", s->ceiling > 0 ? json_string(s->ceiling_name) : json_null());
        json_object_set_new(o, "ratio", s->ceiling > 0 ? json_real(s->ratio) : json_null());
        json_object_set_new(o, "ratio_min", s->ceiling > 0 ? json_real(s->ratio_min) : json_null());
        json_object_set_new(o, "ratio_max", s->ceiling > 0 ? json_real(s->ratio_max) : json_null());
        json_object_set_new(o, "layers", json_integer(s->layers));
        json_object_set_new(o, "full_layers", json_integer(s->full_layers));
        json_object_set_new(o, "seconds_per_layer", json_real(s->per_layer));
        json_object_set_new(o, "full_seconds", json_real(s->full_seconds));
        json_object_set_new(o, "full_work", json_real(s->full_work));
        if (s->full_seconds > 0 && strcmp(s->unit, "s")) {
            json_object_set_new(o, "full_rate", json_real(s->full_work / s->full_seconds));
            json_object_set_new(o, "full_ratio", s->ceiling > 0 ? json_real(s->full_ratio) : json_null());
            json_object_set_new(o, "full_ratio_min", s->ceiling > 0 ? json_real(s->full_ratio_min) : json_null());
            json_object_set_new(o, "full_ratio_max", s->ceiling > 0 ? json_real(s->full_ratio_max) : json_null());
        }
        if (s->peak > 0)
            json_object_set_new(o, "instruction_peak", json_real(s->peak));
        if (s->nsamples > 0) {
            json_t *sm = json_object();
            json_object_set_new(sm, "seconds", samples_json(s->s_sec, s->nsamples));
            json_object_set_new(sm, "fixed_seconds", samples_json(s->s_fix, s->nsamples));
            json_object_set_new(sm, "ceiling", samples_json(s->s_ceil, s->nsamples));
            json_object_set_new(sm, "ratio", samples_json(s->s_ratio, s->nsamples));
            json_object_set_new(sm, "full_ratio", samples_json(s->s_full_ratio, s->nsamples));
            json_object_set_new(o, "samples", sm);
        }
        if (s->baseline > 0)
            json_object_set_new(o, "baseline_seconds", json_real(s->baseline));
        if (s->gemm_ceiling > 0) {
            json_object_set_new(o, "gemm_ceiling", json_real(s->gemm_ceiling));
            json_object_set_new(o, "gemm_ratio", json_real(s->work / s->seconds / s->gemm_ceiling));
        }
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "stages", arr);
    json_object_set_new(root, "peak_rss_bytes", json_integer(peak_rss_bytes()));
    json_object_set_new(root, "precision",
                        json_string(lnx_gemm_ctx_precision(b->gemm) == LNX_PRECISION_BF16 ? "bf16" : "f32"));
    json_object_set_new(root, "weights", json_string(lnx_weights_name(b->o.weights)));
    json_object_set_new(root, "kv_cache", json_string(b->o.kv_cache < 0 ? "auto" : kv_name((lnx_dtype)b->o.kv_cache)));
    json_object_set_new(root, "threads", json_integer(b->o.threads));
    json_object_set_new(root, "runs", json_integer(b->o.runs));
    char *text = json_dumps(root, JSON_INDENT(1));
    printf("%s\n", text);
    free(text);
    json_decref(root);
}

/* ---- main ---- */

static int usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s [--layers N] [--precision f32|bf16|auto] [--weights stored|bf16|q8|q4]\n"
            "          [--kv-cache auto|f32|f16|q8] [--runs R]\n"
            "          [--threads T] [--json]\n"
            "          [--stages vision,prefill,decode,ttft,sample] [--smoke] [--no-ceilings] [--rss [--rss-dir DIR]]\n"
            "          [--family next-video|onevision] [--size 0.5b|7b]\n",
            argv0);
    return f == stdout ? 0 : 2;
}

static int parse(int argc, char **argv, opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json"))
            o->json = 1;
        else if (!strcmp(a, "--smoke"))
            o->smoke = 1;
        else if (!strcmp(a, "--rss"))
            o->rss = 1;
        else if (!strcmp(a, "--no-ceilings"))
            o->no_ceilings = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return 1;
        else if (!v)
            return -1;
        else {
            if (!strcmp(a, "--layers")) {
                o->layers = atoi(v);
                o->layers_given = 1;
            }
            else if (!strcmp(a, "--runs"))
                o->runs = atoi(v);
            else if (!strcmp(a, "--threads"))
                o->threads = atoi(v);
            else if (!strcmp(a, "--stages"))
                o->stages = v;
            else if (!strcmp(a, "--rss-dir"))
                o->rss_dir = v;
            else if (!strcmp(a, "--family")) {
                if (!strcmp(v, "onevision"))
                    o->onevision = 1;
                else if (strcmp(v, "next-video") != 0)
                    return -1;
            } else if (!strcmp(a, "--size")) {
                if (!strcmp(v, "7b"))
                    o->ov_7b = 1;
                else if (strcmp(v, "0.5b") != 0)
                    return -1;
            }
            else if (!strcmp(a, "--weights")) {
                if (!strcmp(v, "stored"))
                    o->weights = LNX_WEIGHTS_STORED;
                else if (!strcmp(v, "bf16"))
                    o->weights = LNX_WEIGHTS_BF16;
                else if (!strcmp(v, "q8"))
                    o->weights = LNX_WEIGHTS_Q8;
                else if (!strcmp(v, "q4"))
                    o->weights = LNX_WEIGHTS_Q4;
                else
                    return -1;
            } else if (!strcmp(a, "--kv-cache")) {
                if (!strcmp(v, "auto"))
                    o->kv_cache = -1;
                else if (!strcmp(v, "f32"))
                    o->kv_cache = LNX_DT_F32;
                else if (!strcmp(v, "f16"))
                    o->kv_cache = LNX_DT_F16;
                else if (!strcmp(v, "q8"))
                    o->kv_cache = LNX_DT_Q8;
                else
                    return -1;
            } else if (!strcmp(a, "--precision")) {
                if (!strcmp(v, "f32"))
                    o->precision = LNX_PRECISION_F32;
                else if (!strcmp(v, "bf16"))
                    o->precision = LNX_PRECISION_BF16;
                else if (!strcmp(v, "auto"))
                    o->precision = LNX_PRECISION_AUTO;
                else
                    return -1;
            } else
                return -1;
            i++;
        }
    }
    if (o->layers < 1 || o->runs < 1 || o->runs > MAX_RUNS || o->threads < 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static bench b;
    b.o.layers = 1;
    b.o.runs = 3;
    b.o.kv_cache = -1;
    b.o.precision = LNX_PRECISION_F32;
    int pr = parse(argc, argv, &b.o);
    if (pr)
        return usage(pr > 0 ? stdout : stderr, argv[0]);
    if (b.o.threads == 0)
        b.o.threads = lnx_cpu_count();
    if (b.o.smoke)
        b.o.runs = 1;
    av_log_set_level(AV_LOG_ERROR); /* the generated videos' encoder chatter */
    if (lnx_pool_create(&b.pool, b.o.threads))
        die_lnx("thread pool");
    if (b.o.rss) {
        int rc = run_rss(&b);
        lnx_pool_free(b.pool);
        return rc;
    }
    if (b.o.onevision)
        b.g = b.o.smoke ? bench_geom_ov_tiny() : b.o.ov_7b ? bench_geom_ov_7b() : bench_geom_ov_05b();
    else
        b.g = b.o.smoke ? bench_geom_tiny() : bench_geom_7b();
    /* full depth: the layers the feature layer needs (-2 of CLIP's 24, -1 of SigLIP's 26) */
    b.full_v_layers = b.g.onevision ? b.g.v_layers : b.g.v_layers - 1;
    b.full_t_layers = b.g.t_layers;
    if (!b.o.smoke) {
        b.g.v_layers = b.o.layers + (b.g.onevision ? 0 : 1); /* run N layers */
        b.g.t_layers = b.o.layers;
    }
    parse_cfg(&b.g, &b.cfg);
    size_t len = 0;
    note(&b, "building %s of random bf16 weights ...\n",
         b.o.smoke ? "a tiny model" : !b.o.onevision ? "the truncated 7B model"
                                     : b.o.ov_7b ? "the truncated OneVision 7B model (SigLIP + Qwen2-7B)"
                                                 : "the truncated OneVision 0.5B model (SigLIP + Qwen2-0.5B)");
    b.img = bench_ckpt_memory(&b.g, 42, &len);
    if (!b.img) {
        fprintf(stderr, "llavanext-bench: out of memory for the weights\n");
        return 1;
    }
    if (lnx_st_open_buffer(&b.st, b.img, len, "bench weights"))
        die_lnx("weights");
    bind_model(&b);

    note(&b, "%s", "measuring ceilings ...\n");
    int64_t vrows = (int64_t)VISION_BATCH * b.clip.tokens, D = b.cfg.vision.hidden, I = b.cfg.vision.intermediate;
    gemm_shape vs[] = { { vrows, D, D, 4 }, { vrows, I, D, 1 }, { vrows, D, I, 1 } };
    const int64_t r1 = b.clip.tokens;
    gemm_shape vs1[] = { { r1, D, D, 4 }, { r1, I, D, 1 }, { r1, D, I, 1 } };
    const lnx_text_cfg *c = &b.cfg.text;
    int64_t Dt = c->hidden, It = c->intermediate, kvd = (int64_t)c->kv_heads * c->head_dim;
    gemm_shape ps[] = { { PREFILL_CHUNK, Dt, Dt, 2 }, { PREFILL_CHUNK, kvd, Dt, 2 }, { PREFILL_CHUNK, It, Dt, 2 },
                        { PREFILL_CHUNK, Dt, It, 1 } };
    b.ncv = ceiling_shapes(vs, 3, b.cv);
    b.ncv1 = ceiling_shapes(vs1, 3, b.cv1);
    b.ncp = ceiling_shapes(ps, 4, b.cp);
    if (!b.o.no_ceilings) {
        /* the instruction peaks and the streaming read, once (each stage measures its own ceiling
         * again with every sample) */
        b.c_stream = ceiling_stream_read(b.pool, b.o.smoke ? (64u << 20) : (1u << 30), 3);
        b.c_fma512 = ceiling_fma_peak(b.pool, 1);
        b.c_fma256 = ceiling_fma_peak(b.pool, 0);
        b.c_bf16 = ceiling_bf16_dot(b.pool);
        b.c_amx = ceiling_amx_bf16(b.pool);
        b.c_int8 = quantized(&b) ? ceiling_int8_dot(b.pool) : 0;
        if (quantized(&b)) {
            double bl = ceiling_gemm(CEIL_BLAS, 0, b.cv, b.ncv, 1, b.o.threads);
            double dn = ceiling_gemm(CEIL_ONEDNN, 0, b.cv, b.ncv, 1, b.o.threads);
            b.c_f32_vision = bl > dn ? bl : dn;
            bl = ceiling_gemm(CEIL_BLAS, 0, b.cp, b.ncp, 1, b.o.threads);
            dn = ceiling_gemm(CEIL_ONEDNN, 0, b.cp, b.ncp, 1, b.o.threads);
            b.c_f32_prefill = bl > dn ? bl : dn;
        }
    }
    if (want(&b, "decode") || want(&b, "decode_1152") || want(&b, "decode_4608") || b.o.smoke)
        map_model(&b);

    static const int full_frames[] = { 1, 8, 32 }, smoke_frames[] = { 1, 2 };
    for (int i = 0; i < (b.o.smoke ? 2 : 3); i++) {
        int F = b.o.smoke ? smoke_frames[i] : full_frames[i];
        char name[32];
        snprintf(name, sizeof name, "vision_f%d", F);
        if (want_stage(&b, "vision", name))
            stage_vision(&b, F);
    }
    /* 8 and 32 frames with 32 text tokens: 144 tokens per frame, or OneVision's 196 + 1 newline */
    int64_t ctx[2] = { 1152, 4608 };
    if (b.g.onevision) {
        ctx[0] = 8 * 196 + 1 + 31;
        ctx[1] = 32 * 196 + 1 + 31;
    }
    if (b.o.smoke) {
        ctx[0] = 40;
        ctx[1] = 100;
    }
    for (int i = 0; i < 2; i++) {
        char pn[32], dn[32];
        snprintf(pn, sizeof pn, "prefill_%lld", (long long)ctx[i]);
        snprintf(dn, sizeof dn, "decode_%lld", (long long)ctx[i]);
        stage_prefill_decode(&b, ctx[i], want_stage(&b, "prefill", pn), want_stage(&b, "decode", dn));
    }
    if (want(&b, "ttft") || want(&b, "ttft_32"))
        stage_ttft(&b, b.o.smoke ? 2 : 32);
    if (want(&b, "sample"))
        stage_sample(&b);

    if (b.o.json)
        print_json(&b);
    else
        print_text(&b);
    unmap_model(&b);
    unbind_model(&b);
    lnx_pool_free(b.pool);
    return 0;
}
