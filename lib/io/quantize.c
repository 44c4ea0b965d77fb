#include "quantize.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/half.h"
#include "../base/quant.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

lnx_wkind lnx_weight_kind(const char *name, int32_t ndim)
{
    if (ndim != 2 || !ends_with(name, ".weight"))
        return LNX_WKIND_OTHER;
    if (strstr(name, "lm_head"))
        return LNX_WKIND_HEAD;
    if (strstr(name, "embed_tokens"))
        return LNX_WKIND_EMBED;
    if (strstr(name, "multi_modal_projector"))
        return LNX_WKIND_PROJECTOR;
    if (strstr(name, "vision_tower") || strstr(name, "vision_model"))
        return strstr(name, ".encoder.layers.") && !strstr(name, "embeddings") ? LNX_WKIND_VISION : LNX_WKIND_OTHER;
    if (strstr(name, ".layers.") && (strstr(name, ".self_attn.") || strstr(name, ".mlp.")))
        return LNX_WKIND_DECODER;
    return LNX_WKIND_OTHER;
}

const char *lnx_weights_name(int32_t mode)
{
    switch (mode) {
    case LNX_WEIGHTS_STORED: return "as-stored";
    case LNX_WEIGHTS_BF16: return "bf16";
    case LNX_WEIGHTS_Q8: return "q8";
    case LNX_WEIGHTS_Q4: return "q4";
    }
    return NULL;
}

static int float_dtype(lnx_st_dtype d, lnx_dtype *out)
{
    switch (d) {
    case LNX_ST_F32: *out = LNX_DT_F32; return 1;
    case LNX_ST_F16: *out = LNX_DT_F16; return 1;
    case LNX_ST_BF16: *out = LNX_DT_BF16; return 1;
    default: return 0;
    }
}

lnx_dtype lnx_weight_target(const lnx_st_tensor *t, int32_t mode)
{
    lnx_dtype stored;
    if (!float_dtype(t->dtype, &stored))
        return LNX_DT_F32; /* not a float tensor: never converted (callers check kind first) */
    lnx_wkind kind = lnx_weight_kind(t->name, t->ndim);
    if (kind == LNX_WKIND_OTHER || mode == LNX_WEIGHTS_STORED)
        return stored;
    lnx_dtype wide = stored == LNX_DT_F32 ? LNX_DT_BF16 : stored, want;
    switch (mode) {
    case LNX_WEIGHTS_BF16:
        return LNX_DT_BF16;
    case LNX_WEIGHTS_Q8:
        want = LNX_DT_Q8;
        break;
    case LNX_WEIGHTS_Q4:
        want = kind == LNX_WKIND_DECODER || kind == LNX_WKIND_EMBED ? LNX_DT_Q4 : LNX_DT_Q8;
        break;
    default:
        return stored;
    }
    return lnx_quant_choose(want, t->shape[1], wide);
}

/* ---- converting rows ---- */

typedef struct conv_ctx {
    const lnx_st_tensor *t;
    lnx_dtype from, to;
    int64_t cols;
    uint8_t *out;
    float *rows; /* one float32 row per worker */
} conv_ctx;

static void conv_rows(void *p, int64_t begin, int64_t end, int worker)
{
    const conv_ctx *c = p;
    float *row = c->rows + (size_t)worker * (size_t)c->cols;
    size_t in_rb = lnx_row_bytes(c->from, c->cols), out_rb = lnx_row_bytes(c->to, c->cols);
    for (int64_t r = begin; r < end; r++) {
        lnx_widen(c->from, (const char *)c->t->data + (size_t)r * in_rb, row, (size_t)c->cols);
        uint8_t *o = c->out + (size_t)r * out_rb;
        if (c->to == LNX_DT_BF16)
            lnx_f32_to_bf16_n(row, (uint16_t *)(void *)o, (size_t)c->cols);
        else
            lnx_quantize_row(c->to, row, c->cols, o);
    }
}

/* Converts a 2-D float tensor into `out` (rows * lnx_row_bytes(to, cols) bytes). */
static lnx_status convert_tensor(const lnx_st_tensor *t, lnx_dtype to, lnx_pool *pool, void *out)
{
    conv_ctx c = { t, LNX_DT_F32, to, t->shape[1], out, NULL };
    float_dtype(t->dtype, &c.from);
    c.rows = lnx_amalloc(sizeof(float) * (size_t)(c.cols > 0 ? c.cols : 1) * (size_t)lnx_pool_size(pool));
    if (!c.rows)
        return lnx_error(LNX_E_NOMEM, "out of memory converting '%s'", t->name);
    lnx_parallel_for(pool, t->shape[0], conv_rows, &c);
    lnx_afree(c.rows);
    return LNX_OK;
}

static size_t converted_bytes(const lnx_st_tensor *t, lnx_dtype to)
{
    return (size_t)t->shape[0] * lnx_row_bytes(to, t->shape[1]);
}

static int changes(const lnx_st_tensor *t, int32_t mode, lnx_dtype *to)
{
    lnx_dtype from;
    if (!float_dtype(t->dtype, &from) || lnx_weight_kind(t->name, t->ndim) == LNX_WKIND_OTHER)
        return 0;
    *to = lnx_weight_target(t, mode);
    return *to != from;
}

/* Drops the whole pages inside [p, p + n) from the process (a read-only file mapping). */
static void release_pages(const void *p, size_t n)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

lnx_status lnx_wstore_convert(lnx_wstore *ws, int32_t mode, lnx_pool *pool, int release_mapped,
                              lnx_convert_progress progress, void *user_data)
{
    const lnx_st *st = lnx_wstore_source(ws);
    int64_t total = 0, done = 0;
    lnx_dtype to;
    for (size_t i = 0; i < lnx_st_count(st); i++)
        total += changes(lnx_st_at(st, i), mode, &to);
    if (progress && progress(0, total, user_data))
        return lnx_error(LNX_E_ABORTED, "model loading aborted");
    for (size_t i = 0; i < lnx_st_count(st); i++) {
        const lnx_st_tensor *t = lnx_st_at(st, i);
        if (!changes(t, mode, &to))
            continue;
        void *data = lnx_amalloc(converted_bytes(t, to));
        if (!data)
            return lnx_error(LNX_E_NOMEM, "out of memory converting '%s' to %s", t->name,
                             to == LNX_DT_BF16 ? "bf16" : to == LNX_DT_Q8 ? "q8" : "q4");
        lnx_status rc = convert_tensor(t, to, pool, data);
        if (rc == LNX_OK)
            rc = lnx_wstore_adopt(ws, t->name, to, t->shape[0], t->shape[1], data);
        if (rc != LNX_OK) {
            lnx_afree(data);
            return rc;
        }
        if (release_mapped)
            release_pages(t->data, t->nbytes);
        if (progress && progress(++done, total, user_data))
            return lnx_error(LNX_E_ABORTED, "model loading aborted");
    }
    return LNX_OK;
}

/* ---- writing a converted checkpoint ---- */

static const char *st_name(lnx_dtype to)
{
    return to == LNX_DT_F32 ? "F32" : to == LNX_DT_F16 ? "F16" : to == LNX_DT_BF16 ? "BF16" : "U8";
}

lnx_status lnx_quantize_checkpoint(const lnx_st *src, int32_t mode, const char *path, lnx_pool *pool,
                                   lnx_convert_progress progress, void *user_data)
{
    const size_t n = lnx_st_count(src);
    json_t *hdr = json_object();
    json_t *meta = json_pack("{s:s, s:s}", "format", "pt", "llavanext_weights", lnx_weights_name(mode));
    if (!hdr || !meta || json_object_set_new(hdr, "__metadata__", meta) != 0) {
        json_decref(hdr);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    uint64_t off = 0;
    int64_t total = 0, done = 0;
    for (size_t i = 0; i < n; i++) {
        const lnx_st_tensor *t = lnx_st_at(src, i);
        lnx_dtype to;
        json_t *shape = json_array();
        const char *dt = lnx_st_dtype_name(t->dtype);
        uint64_t bytes = t->nbytes;
        if (changes(t, mode, &to)) {
            total++;
            dt = st_name(to);
            bytes = converted_bytes(t, to);
            json_array_append_new(shape, json_integer(t->shape[0]));
            json_array_append_new(shape, json_integer(lnx_dtype_is_quant(to) ? (json_int_t)lnx_row_bytes(to, t->shape[1])
                                                                              : (json_int_t)t->shape[1]));
        } else {
            for (int32_t d = 0; d < t->ndim; d++)
                json_array_append_new(shape, json_integer(t->shape[d]));
        }
        json_t *ent = json_pack("{s:s, s:o, s:[I, I]}", "dtype", dt, "shape", shape, "data_offsets", (json_int_t)off,
                                (json_int_t)(off + bytes));
        if (!ent || json_object_set_new(hdr, t->name, ent) != 0) {
            json_decref(hdr);
            return lnx_error(LNX_E_NOMEM, "out of memory");
        }
        off += bytes;
    }
    char *text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(hdr);
    if (!text)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    /* the data starts 64-byte aligned in the file (so in a mapping of it) */
    size_t tlen = strlen(text), padded = (tlen + 8 + 63) / 64 * 64 - 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(text);
        return lnx_error(LNX_E_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    lnx_status rc = LNX_OK;
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, tlen, f) == tlen;
    for (size_t i = tlen; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    free(text);
    if (progress && progress(0, total, user_data))
        rc = lnx_error(LNX_E_ABORTED, "quantizing aborted");
    for (size_t i = 0; ok && rc == LNX_OK && i < n; i++) {
        const lnx_st_tensor *t = lnx_st_at(src, i);
        lnx_dtype to;
        if (!changes(t, mode, &to)) {
            ok = t->nbytes == 0 || fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
            continue;
        }
        size_t bytes = converted_bytes(t, to);
        void *buf = lnx_amalloc(bytes ? bytes : 1);
        rc = buf ? convert_tensor(t, to, pool, buf) : lnx_error(LNX_E_NOMEM, "out of memory converting '%s'", t->name);
        if (rc == LNX_OK)
            ok = fwrite(buf, 1, bytes, f) == bytes;
        lnx_afree(buf);
        if (rc == LNX_OK && ok && progress && progress(++done, total, user_data))
            rc = lnx_error(LNX_E_ABORTED, "quantizing aborted");
    }
    if (fclose(f) != 0)
        ok = 0;
    if (rc == LNX_OK && !ok)
        rc = lnx_error(LNX_E_IO, "%s: write failed: %s", path, strerror(errno));
    if (rc != LNX_OK)
        remove(path);
    return rc;
}
