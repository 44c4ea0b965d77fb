/* Weights converted on load (lib/io/quantize.c) and a quantized directory read as stored:
 * which tensors get which format (the fallback for rows that fit no block), the embedding lookup
 * from a quantized table (one row dequantized, the table never widened), the `weights` parameter's
 * validation and its progress reports, and a directory written by lnx_quantize_checkpoint being
 * mapped with no conversion. */
#include "../common/testutil.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "base/quant.h"
#include "io/config.h"
#include "io/json.h"
#include "io/quantize.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "kernels/quant.h"
#include "llavanext/llavanext.h"
#include "llm/llama.h"

typedef struct loaded {
    lnx_model_cfg cfg;
    lnx_st *st;
    lnx_wstore *ws;
    lnx_llama llama;
} loaded;

static void load_internal(loaded *l, const char *model, int32_t mode, lnx_pool *pool)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", model);
    json_t *cj;
    assert_int_equal(lnx_json_load_file(&cj, tu_data(path)), LNX_OK);
    assert_int_equal(lnx_config_parse(&l->cfg, cj, "config.json"), LNX_OK);
    json_decref(cj);
    snprintf(path, sizeof path, "%s/model.safetensors", model);
    assert_int_equal(lnx_st_open(&l->st, tu_data(path), LNX_ST_MMAP), LNX_OK);
    assert_int_equal(lnx_wstore_create(&l->ws, l->st), LNX_OK);
    assert_int_equal(lnx_wstore_convert(l->ws, mode, pool, 1, NULL, NULL), LNX_OK);
    const char *head = lnx_wstore_has(l->ws, "language_model.lm_head.weight") ? "language_model.lm_head.weight" : NULL;
    assert_int_equal(lnx_llama_bind(&l->llama, &l->cfg.text, l->ws, "language_model.model.", head), LNX_OK);
}

static void unload(loaded *l)
{
    lnx_llama_unbind(&l->llama);
    lnx_wstore_free(l->ws);
    lnx_st_close(l->st);
}

static void formats_by_kind_and_fallback(void **s)
{
    (void)s;
    lnx_pool *pool;
    assert_int_equal(lnx_pool_create(&pool, 2), LNX_OK);
    loaded a, b;
    /* tiny-a: hidden 64, intermediate 160 (both multiples of 32) */
    load_internal(&a, "tiny-a", LNX_WEIGHTS_Q4, pool);
    assert_int_equal(a.llama.layers[0].q.dtype, LNX_DT_Q4);
    assert_int_equal(a.llama.layers[1].down.dtype, LNX_DT_Q4); /* 160 columns: a short super-block */
    assert_int_equal(a.llama.embed.dtype, LNX_DT_Q4);
    assert_int_equal(a.llama.lm_head.dtype, LNX_DT_Q8);
    lnx_wmat v;
    assert_int_equal(lnx_wstore_matrix(a.ws, "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight", 128, 64, &v), LNX_OK);
    assert_int_equal(v.dtype, LNX_DT_Q8);
    assert_int_equal(lnx_wstore_matrix(a.ws, "multi_modal_projector.linear_2.weight", 64, 64, &v), LNX_OK);
    assert_int_equal(v.dtype, LNX_DT_Q8);
    /* the embedding lookup reads one quantized row: what dequantizing that row gives */
    float *row = malloc(sizeof(float) * 64), *want = malloc(sizeof(float) * 64);
    int32_t id = 31999;
    lnx_llama_embed(&a.llama, &id, 1, row);
    lnx_dequantize_row(LNX_DT_Q4, (const char *)a.llama.embed.data + (size_t)id * lnx_row_bytes(LNX_DT_Q4, 64), 64, want);
    assert_memory_equal(row, want, sizeof(float) * 64);
    /* no float copy of any table: the store holds exactly the converted matrices' bytes */
    uint64_t expect = 0;
    for (size_t i = 0; i < lnx_st_count(a.st); i++) {
        const lnx_st_tensor *t = lnx_st_at(a.st, i);
        lnx_dtype to = lnx_weight_target(t, LNX_WEIGHTS_Q4);
        if (lnx_dtype_is_quant(to))
            expect += (uint64_t)t->shape[0] * lnx_row_bytes(to, t->shape[1]);
    }
    assert_true(expect > 0);
    assert_true(lnx_wstore_adopted_bytes(a.ws) == expect);
    unload(&a);
    /* tiny-b: intermediate 200 is no multiple of 32: down_proj stays as stored (bf16), the rest q8 */
    load_internal(&b, "tiny-b", LNX_WEIGHTS_Q8, pool);
    assert_int_equal(b.llama.layers[0].down.dtype, LNX_DT_BF16);
    assert_int_equal(b.llama.layers[0].gate.dtype, LNX_DT_Q8);
    assert_int_equal(b.llama.layers[0].q.dtype, LNX_DT_Q8);
    /* q8 embedding lookup */
    float *rb = malloc(sizeof(float) * 96), *wb = malloc(sizeof(float) * 96);
    lnx_llama_embed(&b.llama, &id, 1, rb);
    lnx_dequantize_row(LNX_DT_Q8, (const char *)b.llama.embed.data + (size_t)id * lnx_row_bytes(LNX_DT_Q8, 96), 96, wb);
    assert_memory_equal(rb, wb, sizeof(float) * 96);
    unload(&b);
    free(row);
    free(want);
    free(rb);
    free(wb);
    lnx_pool_free(pool);
}

static void weights_kinds_by_name(void **s)
{
    (void)s;
    assert_int_equal(lnx_weight_kind("language_model.model.layers.3.self_attn.q_proj.weight", 2), LNX_WKIND_DECODER);
    assert_int_equal(lnx_weight_kind("model.language_model.layers.0.mlp.down_proj.weight", 2), LNX_WKIND_DECODER);
    assert_int_equal(lnx_weight_kind("model.language_model.layers.0.mlp.down_proj.bias", 1), LNX_WKIND_OTHER);
    assert_int_equal(lnx_weight_kind("model.language_model.layers.0.input_layernorm.weight", 1), LNX_WKIND_OTHER);
    assert_int_equal(lnx_weight_kind("lm_head.weight", 2), LNX_WKIND_HEAD);
    assert_int_equal(lnx_weight_kind("model.language_model.embed_tokens.weight", 2), LNX_WKIND_EMBED);
    assert_int_equal(lnx_weight_kind("model.vision_tower.vision_model.encoder.layers.1.self_attn.k_proj.weight", 2),
                     LNX_WKIND_VISION);
    assert_int_equal(lnx_weight_kind("vision_tower.vision_model.embeddings.position_embedding.weight", 2), LNX_WKIND_OTHER);
    assert_int_equal(lnx_weight_kind("vision_tower.vision_model.embeddings.patch_embedding.weight", 4), LNX_WKIND_OTHER);
    assert_int_equal(lnx_weight_kind("multi_modal_projector.linear_1.weight", 2), LNX_WKIND_PROJECTOR);
}

typedef struct progress_log {
    int calls;
    int64_t last_done, total;
    int abort_at;
} progress_log;

static int32_t on_progress(int32_t stage, int64_t done, int64_t total, void *ud)
{
    progress_log *p = ud;
    assert_int_equal(stage, LLAVANEXT_STAGE_LOAD);
    assert_true(done >= p->last_done && done <= total);
    if (p->calls++ == 0)
        p->total = total;
    assert_int_equal(total, p->total);
    p->last_done = done;
    return p->abort_at >= 0 && done >= p->abort_at;
}

static void weights_parameter_and_progress(void **s)
{
    (void)s;
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    assert_int_equal(p.weights, LLAVANEXT_WEIGHTS_STORED);
    llavanext_model *m = NULL;
    p.weights = 4;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_string_contains(llavanext_last_error(), "weights");
    p.weights = LLAVANEXT_WEIGHTS_Q8;
    p.threads = -1;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_E_INVALID_ARGUMENT);
    p.threads = 2;
    /* one unit per converted tensor (tiny-a: 2 x 7 decoder, head, embeddings, 3 x 6 vision, 2
     * projector = 36), then the three binding steps */
    progress_log log = { 0, 0, 0, -1 };
    p.progress = on_progress;
    p.progress_user_data = &log;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_OK);
    assert_int_equal(log.total, 36 + 3);
    assert_int_equal(log.last_done, 39);
    assert_int_equal(log.calls, 1 + 36 + 4);
    llavanext_model_free(m);
    /* bf16 on a bf16 checkpoint converts nothing: only the three binding steps */
    progress_log none = { 0, 0, 0, -1 };
    p.progress_user_data = &none;
    p.weights = LLAVANEXT_WEIGHTS_BF16;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_OK);
    assert_int_equal(none.total, 3);
    llavanext_model_free(m);
    p.weights = LLAVANEXT_WEIGHTS_Q8;
    /* cancelling part-way through the conversion */
    progress_log stop = { 0, 0, 0, 5 };
    p.progress_user_data = &stop;
    assert_int_equal(llavanext_model_load(&m, tu_data("tiny-a"), &p), LLAVANEXT_E_ABORTED);
    assert_null(m);
    assert_int_equal(stop.last_done, 5);
}

static void quantized_file_maps_without_conversion(void **s)
{
    (void)s;
    char *dir = tu_tempdir(), path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    lnx_st *src, *q;
    assert_int_equal(lnx_st_open(&src, tu_data("tiny-a/model.safetensors"), LNX_ST_MMAP), LNX_OK);
    assert_int_equal(lnx_quantize_checkpoint(src, LNX_WEIGHTS_Q4, path, NULL, NULL, NULL), LNX_OK);
    assert_int_equal(lnx_st_open(&q, path, LNX_ST_MMAP), LNX_OK);
    lnx_wstore *ws;
    assert_int_equal(lnx_wstore_create(&ws, q), LNX_OK);
    /* as stored: nothing converted, the matrices are views of the mapping */
    assert_int_equal(lnx_wstore_convert(ws, LNX_WEIGHTS_STORED, NULL, 1, NULL, NULL), LNX_OK);
    lnx_wmat w;
    const char *name = "language_model.model.layers.0.mlp.down_proj.weight";
    assert_int_equal(lnx_wstore_matrix(ws, name, 64, 160, &w), LNX_OK);
    assert_int_equal(w.dtype, LNX_DT_Q4);
    assert_ptr_equal(w.data, lnx_st_find(q, name)->data);
    assert_int_equal(lnx_wstore_adopted_bytes(ws), 0);
    /* a wrong expected width is an error naming the tensor, not a misread */
    assert_int_equal(lnx_wstore_matrix(ws, name, 64, 192, &w), LNX_E_FORMAT);
    assert_string_contains(lnx_last_error(), "down_proj");
    /* converting a quantized file again changes nothing (its U8 tensors are not float) */
    assert_int_equal(lnx_wstore_convert(ws, LNX_WEIGHTS_Q8, NULL, 1, NULL, NULL), LNX_OK);
    assert_int_equal(lnx_wstore_adopted_bytes(ws), 0);
    /* the data of the file starts 64-byte aligned */
    assert_int_equal(lnx_st_at(q, 0)->offset % 64, 0);
    lnx_wstore_free(ws);
    lnx_st_close(q);
    lnx_st_close(src);
    tu_rmtree(dir);
    free(dir);
}

/* A float32 checkpoint: a row width that fits no block becomes bf16 (the next wider format),
 * one that fits becomes q8, and the values survive within each format's error. */
static void float32_checkpoint_falls_back_to_bf16(void **s)
{
    (void)s;
    char *dir = tu_tempdir(), path[4096];
    snprintf(path, sizeof path, "%s/f32.safetensors", dir);
    float a[4 * 40], b[4 * 64];
    tu_fill_random(a, 4 * 40, 1);
    tu_fill_random(b, 4 * 64, 2);
    lnx_st_writer *w;
    assert_int_equal(lnx_st_writer_create(&w), LNX_OK);
    const int64_t sa[2] = { 4, 40 }, sb[2] = { 4, 64 };
    assert_int_equal(lnx_st_writer_add(w, "model.language_model.layers.0.mlp.down_proj.weight", LNX_ST_F32, 2, sa, a), LNX_OK);
    assert_int_equal(lnx_st_writer_add(w, "model.language_model.layers.0.mlp.up_proj.weight", LNX_ST_F32, 2, sb, b), LNX_OK);
    assert_int_equal(lnx_st_writer_save(w, path), LNX_OK);
    lnx_st_writer_free(w);
    lnx_st *st;
    lnx_wstore *ws;
    assert_int_equal(lnx_st_open(&st, path, LNX_ST_READ), LNX_OK);
    assert_int_equal(lnx_wstore_create(&ws, st), LNX_OK);
    assert_int_equal(lnx_wstore_convert(ws, LNX_WEIGHTS_Q8, NULL, 0, NULL, NULL), LNX_OK);
    lnx_wmat da, db;
    assert_int_equal(lnx_wstore_matrix(ws, "model.language_model.layers.0.mlp.down_proj.weight", 4, 40, &da), LNX_OK);
    assert_int_equal(lnx_wstore_matrix(ws, "model.language_model.layers.0.mlp.up_proj.weight", 4, 64, &db), LNX_OK);
    assert_int_equal(da.dtype, LNX_DT_BF16);
    assert_int_equal(db.dtype, LNX_DT_Q8);
    float row[64];
    lnx_wmat_row(&da, 3, row);
    for (int k = 0; k < 40; k++)
        assert_true(fabsf(row[k] - a[3 * 40 + k]) <= fabsf(a[3 * 40 + k]) / 256.0f);
    lnx_wmat_row(&db, 3, row);
    for (int k = 0; k < 64; k++)
        assert_true(fabsf(row[k] - b[3 * 64 + k]) <= 1.0f / 127.0f);
    lnx_wstore_free(ws);
    lnx_st_close(st);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_by_kind_and_fallback),
        cmocka_unit_test(weights_kinds_by_name),
        cmocka_unit_test(weights_parameter_and_progress),
        cmocka_unit_test(quantized_file_maps_without_conversion),
        cmocka_unit_test(float32_checkpoint_falls_back_to_bf16),
    };
    return cmocka_run_group_tests_name("quant_load", tests, NULL, NULL);
}
