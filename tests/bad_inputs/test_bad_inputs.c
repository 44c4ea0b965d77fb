/* The bad-input catalogue: every class of broken, hostile or out-of-order input, fed through the
 * public API, gives its exact status and a message naming the problem, and never crashes (the
 * suite also runs under AddressSanitizer and UBSan, see scripts/asan-suite.sh). */
#include "../common/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "llavanext/llavanext.h"

static llavanext_model *model; /* tiny-a, shared by the cases that need a working model */

static int setup(void **s)
{
    (void)s;
    return llavanext_model_load(&model, tu_data("tiny-a"), NULL) == LLAVANEXT_OK ? 0 : -1;
}

static int teardown(void **s)
{
    (void)s;
    llavanext_model_free(model);
    return 0;
}

/* Fails the test unless `st` is `want` and the thread's message contains `needle` (if any). */
#define expect(st, want, needle) expect_at((st), (want), (needle), __FILE__, __LINE__)
static void expect_at(llavanext_status st, llavanext_status want, const char *needle, const char *file, int line)
{
    const char *msg = llavanext_last_error();
    if (st != want)
        print_error("status %d (%s), expected %d: %s\n", (int)st, llavanext_status_string(st), (int)want, msg);
    else if (needle && !strstr(msg, needle))
        print_error("message \"%s\" lacks \"%s\"\n", msg, needle);
    else
        return;
    _fail(file, line);
}

/* ---------------------------------------------------------------------------------------------
 * Checkpoints: tiny-a's small files with a crafted model.safetensors
 * ------------------------------------------------------------------------------------------- */

static const char *small_files[] = { "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                     "special_tokens_map.json", "added_tokens.json", "preprocessor_config.json",
                                     "processor_config.json", "chat_template.json" };

/* One header entry of a checkpoint being crafted; offsets are relative to the data section. */
typedef struct entry {
    char name[128];
    const char *dtype;
    int32_t ndim;
    int64_t shape[8];
    uint64_t begin, end;
} entry;

typedef struct ckpt {
    entry e[160];
    size_t n;
    unsigned char *data; /* the data section (owned) */
    size_t len;
} ckpt;

/* tiny-a's weights as entries plus their data, to be edited and written back. */
static void ckpt_load(ckpt *c)
{
    size_t n;
    char *file = tu_read_file(tu_data("tiny-a/model.safetensors"), &n);
    assert_non_null(file);
    lnx_st *st;
    assert_int_equal(lnx_st_open_buffer(&st, file, n, "tiny-a"), LNX_OK);
    uint64_t hlen;
    memcpy(&hlen, file, 8);
    uint64_t start = 8 + hlen;
    memset(c, 0, sizeof *c);
    assert_true(lnx_st_count(st) <= sizeof c->e / sizeof c->e[0]);
    for (size_t i = 0; i < lnx_st_count(st); i++) {
        const lnx_st_tensor *t = lnx_st_at(st, i);
        entry *e = &c->e[c->n++];
        snprintf(e->name, sizeof e->name, "%s", t->name);
        e->dtype = lnx_st_dtype_name(t->dtype);
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof e->shape);
        e->begin = t->offset - start;
        e->end = e->begin + t->nbytes;
    }
    lnx_st_close(st);
    c->len = n - start;
    c->data = malloc(c->len);
    assert_non_null(c->data);
    memcpy(c->data, file + start, c->len);
    free(file);
}

static entry *ckpt_find(ckpt *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0)
            return &c->e[i];
    fail_msg("tiny-a has no tensor %s", name);
    return NULL;
}

static entry *ckpt_add(ckpt *c, const char *name, const char *dtype, int64_t dim0, uint64_t begin, uint64_t end)
{
    assert_true(c->n < sizeof c->e / sizeof c->e[0]);
    entry *e = &c->e[c->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->dtype = dtype;
    e->ndim = 1;
    e->shape[0] = dim0;
    e->begin = begin;
    e->end = end;
    return e;
}

/* The file's bytes: header length, JSON header (padded to 8 bytes), data. */
static unsigned char *ckpt_bytes(const ckpt *c, size_t *out_len)
{
    size_t cap = 64 + c->n * 400, hl = 0;
    char *h = malloc(cap);
    assert_non_null(h);
    hl += (size_t)snprintf(h + hl, cap - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < c->n; i++) {
        const entry *e = &c->e[i];
        hl += (size_t)snprintf(h + hl, cap - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", e->name, e->dtype);
        for (int32_t d = 0; d < e->ndim; d++)
            hl += (size_t)snprintf(h + hl, cap - hl, "%s%lld", d ? "," : "", (long long)e->shape[d]);
        hl += (size_t)snprintf(h + hl, cap - hl, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)e->begin,
                               (unsigned long long)e->end);
    }
    hl += (size_t)snprintf(h + hl, cap - hl, "}");
    while (hl % 8)
        h[hl++] = ' ';
    assert_true(hl < cap);
    unsigned char *b = malloc(8 + hl + c->len);
    assert_non_null(b);
    uint64_t v = hl;
    memcpy(b, &v, 8);
    memcpy(b + 8, h, hl);
    memcpy(b + 8 + hl, c->data, c->len);
    free(h);
    *out_len = 8 + hl + c->len;
    return b;
}

/* A checkpoint directory with tiny-a's small files and `bytes` as model.safetensors. */
static char *make_dir(const void *bytes, size_t len)
{
    char *dir = tu_tempdir();
    assert_non_null(dir);
    char path[4096];
    for (size_t i = 0; i < sizeof small_files / sizeof small_files[0]; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tiny-a/%s", small_files[i]);
        size_t n;
        char *data = tu_read_file(tu_data(rel), &n);
        assert_non_null(data);
        snprintf(path, sizeof path, "%s/%s", dir, small_files[i]);
        assert_int_equal(tu_write_file(path, data, n), 0);
        free(data);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(tu_write_file(path, bytes, len), 0);
    return dir;
}

/* Loads `bytes` as a checkpoint (check_finite on) and expects `want` with `needle`. */
static void expect_load(const void *bytes, size_t len, int32_t check_finite, llavanext_status want,
                        const char *needle)
{
    char *dir = make_dir(bytes, len);
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    p.check_finite = check_finite;
    for (int32_t mode = LLAVANEXT_LOAD_MMAP; mode <= LLAVANEXT_LOAD_READ; mode++) {
        p.load_mode = mode;
        llavanext_model *m = (llavanext_model *)&p; /* must be reset to NULL on failure */
        llavanext_status st = llavanext_model_load(&m, dir, &p);
        expect(st, want, needle);
        if (want != LLAVANEXT_OK) {
            assert_null(m);
            assert_non_null(strstr(llavanext_last_error(), "model.safetensors"));
        }
        llavanext_model_free(want == LLAVANEXT_OK ? m : NULL);
    }
    tu_rmtree(dir);
    free(dir);
}

static void expect_ckpt(const ckpt *c, int32_t check_finite, llavanext_status want, const char *needle)
{
    size_t len;
    unsigned char *b = ckpt_bytes(c, &len);
    expect_load(b, len, check_finite, want, needle);
    free(b);
}

static const char *victim = "language_model.model.layers.1.mlp.up_proj.weight";
static const char *embed = "language_model.model.embed_tokens.weight";

static void crafted_checkpoint_loads_unedited(void **s)
{
    (void)s;
    ckpt c;
    ckpt_load(&c);
    expect_ckpt(&c, 1, LLAVANEXT_OK, NULL);
    free(c.data);
}

static void truncated_checkpoint_is_refused(void **s)
{
    (void)s;
    ckpt c;
    ckpt_load(&c);
    size_t len;
    unsigned char *b = ckpt_bytes(&c, &len);
    expect_load(b, len * 3 / 5, 0, LLAVANEXT_E_FORMAT, "past the end");
    expect_load(b, 7, 0, LLAVANEXT_E_FORMAT, "too short");
    /* the header itself cut short */
    expect_load(b, 100, 0, LLAVANEXT_E_FORMAT, "header length");
    free(b);
    free(c.data);
}

static void oversized_header_and_dimensions_are_refused(void **s)
{
    (void)s;
    ckpt c;
    ckpt_load(&c);
    size_t len;
    unsigned char *b = ckpt_bytes(&c, &len);
    uint64_t huge = (uint64_t)1 << 40;
    memcpy(b, &huge, 8);
    expect_load(b, len, 0, LLAVANEXT_E_FORMAT, "header length");
    free(b);
    /* dimensions whose product overflows, and a tensor claiming more bytes than the file has */
    entry *e = ckpt_find(&c, victim);
    int64_t keep[8];
    memcpy(keep, e->shape, sizeof keep);
    e->shape[0] = (int64_t)1 << 62;
    e->shape[1] = 8;
    expect_ckpt(&c, 0, LLAVANEXT_E_FORMAT, "dimension 1 is invalid");
    memcpy(e->shape, keep, sizeof keep);
    e->end = (uint64_t)1 << 50;
    expect_ckpt(&c, 0, LLAVANEXT_E_FORMAT, "runs past the end");
    free(c.data);
}

static void overlapping_tensors_are_refused(void **s)
{
    (void)s;
    ckpt c;
    ckpt_load(&c);
    entry *v = ckpt_find(&c, victim);
    const entry *big = ckpt_find(&c, embed);
    uint64_t size = v->end - v->begin;
    assert_true(big->end - big->begin > size + 64);
    /* the victim's bytes inside the embedding table */
    v->begin = big->begin + 64;
    v->end = v->begin + size;
    expect_ckpt(&c, 0, LLAVANEXT_E_FORMAT, "overlap");
    /* the same overlap with an empty tensor between the two spans (this once hid the overlap,
     * because each span was compared with its predecessor only) */
    ckpt_add(&c, "extra.empty", "F32", 0, big->begin + 32, big->begin + 32);
    expect_ckpt(&c, 0, LLAVANEXT_E_FORMAT, "overlap");
    assert_non_null(strstr(llavanext_last_error(), embed));
    free(c.data);
}

static void nonfinite_weights_are_found_with_check_finite(void **s)
{
    (void)s;
    ckpt c;
    ckpt_load(&c);
    entry *v = ckpt_find(&c, victim);
    assert_string_equal(v->dtype, "BF16");
    uint16_t *w = (uint16_t *)(void *)(c.data + v->begin);
    uint16_t keep = w[7];
    w[7] = 0x7fc0; /* NaN */
    expect_ckpt(&c, 1, LLAVANEXT_E_FORMAT, "element 7 is NaN");
    assert_non_null(strstr(llavanext_last_error(), victim));
    expect_ckpt(&c, 0, LLAVANEXT_OK, NULL); /* the scan is opt-in */
    w[7] = 0xff80;                          /* -Inf */
    expect_ckpt(&c, 1, LLAVANEXT_E_FORMAT, "element 7 is infinite");
    w[7] = keep;
    free(c.data);
}

static void shape_mismatches_are_named(void **s)
{
    (void)s;
    ckpt c;
    ckpt_load(&c);
    /* transposed text weight */
    entry *v = ckpt_find(&c, victim);
    int64_t t = v->shape[0];
    v->shape[0] = v->shape[1];
    v->shape[1] = t;
    expect_ckpt(&c, 0, LLAVANEXT_E_FORMAT, victim);
    assert_non_null(strstr(llavanext_last_error(), "the config implies"));
    v->shape[1] = v->shape[0];
    v->shape[0] = t;
    /* patch embedding reshaped with the same element count */
    entry *p = ckpt_find(&c, "vision_tower.vision_model.embeddings.patch_embedding.weight");
    assert_int_equal(p->ndim, 4);
    p->shape[2] = 7;
    p->shape[3] = 28;
    expect_ckpt(&c, 0, LLAVANEXT_E_FORMAT, "patch_embedding");
    p->shape[2] = p->shape[3] = 14;
    /* a vector with a wrong length, its bytes adjusted to match */
    entry *n = ckpt_find(&c, "language_model.model.norm.weight");
    n->shape[0] -= 1;
    n->end -= 2;
    expect_ckpt(&c, 0, LLAVANEXT_E_FORMAT, "language_model.model.norm.weight");
    free(c.data);
}

/* ---------------------------------------------------------------------------------------------
 * Text: malformed UTF-8, placeholders, chat messages
 * ------------------------------------------------------------------------------------------- */

static const struct {
    const char *text;
    const char *where;
} bad_utf8[] = {
    { "ab\xff", "byte offset 2 (byte 0xFF)" },       /* never valid */
    { "\x80x", "byte offset 0 (byte 0x80)" },        /* stray continuation */
    { "\xc0\xaf", "byte offset 0 (byte 0xC0)" },     /* overlong '/' */
    { "\xed\xa0\x80", "byte offset 0 (byte 0xED)" }, /* UTF-16 surrogate */
    { "\xf4\x90\x80\x80", "byte offset 0" },         /* beyond U+10FFFF */
    { "ok \xe2\x82", "byte offset 3 (byte 0xE2)" },  /* cut short at the end */
    { "<video>\xe2(", "byte offset 7" },             /* bad continuation after a special token */
};

static void malformed_utf8_is_refused_with_its_offset(void **s)
{
    (void)s;
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, NULL), LLAVANEXT_OK);
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        const char *t = bad_utf8[i].text;
        int32_t *ids = (int32_t *)&g;
        size_t n = 99;
        expect(llavanext_model_tokenize(&ids, &n, model, t, strlen(t), 1), LLAVANEXT_E_INVALID_ARGUMENT,
               bad_utf8[i].where);
        assert_null(ids);
        assert_int_equal(n, 0);
        expect(llavanext_generator_append_prompt(g, t, strlen(t), NULL, 0), LLAVANEXT_E_INVALID_ARGUMENT,
               bad_utf8[i].where);
        assert_int_equal(llavanext_generator_position(g), 0); /* nothing was appended */
        double lp;
        expect(llavanext_generator_score(&lp, NULL, g, t, strlen(t)), LLAVANEXT_E_STATE, NULL);
    }
    /* an embedded NUL is text, not an error */
    int32_t *ids;
    size_t n;
    expect(llavanext_model_tokenize(&ids, &n, model, "a\0b", 3, 0), LLAVANEXT_OK, NULL);
    llavanext_free(ids);
    llavanext_generator_free(g);
}

static llavanext_tensor *embeddings(int32_t kind, int64_t rows, int64_t dim)
{
    int64_t dims[2] = { rows, dim };
    float *data = calloc((size_t)(rows * dim), sizeof *data);
    llavanext_tensor *t;
    assert_int_equal(llavanext_tensor_create(&t, kind, 2, dims, data, kind == LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS ? 8 : 0,
                                             kind == LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS ? 8 : 0),
                     LLAVANEXT_OK);
    free(data);
    return t;
}

static void placeholders_and_media_must_match(void **s)
{
    (void)s;
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, NULL), LLAVANEXT_OK);
    llavanext_tensor *video = embeddings(LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS, 4, 64);
    llavanext_tensor *image = embeddings(LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS, 4, 64);
    llavanext_tensor *narrow = embeddings(LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS, 4, 32);
    const llavanext_tensor *one[1] = { video };
    const char *two = "USER: <video> and <video>? ASSISTANT:";
    expect(llavanext_generator_append_prompt(g, two, strlen(two), one, 1), LLAVANEXT_E_INVALID_ARGUMENT,
           "2 <video>/<image> placeholders but 1 media");
    expect(llavanext_generator_append_prompt(g, two, strlen(two), NULL, 0), LLAVANEXT_E_INVALID_ARGUMENT,
           "2 <video>/<image> placeholders but 0 media");
    const char *none = "USER: nothing here ASSISTANT:";
    expect(llavanext_generator_append_prompt(g, none, strlen(none), one, 1), LLAVANEXT_E_INVALID_ARGUMENT,
           "0 <video>/<image> placeholders but 1 media");
    const char *img = "USER: <image> ASSISTANT:";
    expect(llavanext_generator_append_prompt(g, img, strlen(img), one, 1), LLAVANEXT_E_INVALID_ARGUMENT,
           "placeholder 1 is <image>");
    const llavanext_tensor *wrong[1] = { narrow };
    const char *vid = "USER: <video> ASSISTANT:";
    expect(llavanext_generator_append_prompt(g, vid, strlen(vid), wrong, 1), LLAVANEXT_E_INVALID_ARGUMENT,
           "hidden size 64");
    const llavanext_tensor *holes[2] = { video, NULL };
    expect(llavanext_generator_append_prompt(g, two, strlen(two), holes, 2), LLAVANEXT_E_INVALID_ARGUMENT,
           "media[1] is NULL");
    expect(llavanext_generator_append_prompt(g, vid, strlen(vid), one, -1), LLAVANEXT_E_INVALID_ARGUMENT, NULL);
    assert_int_equal(llavanext_generator_position(g), 0);
    const llavanext_tensor *both[2] = { image, video };
    const char *mixed = "USER: <image> then <video> ASSISTANT:";
    expect(llavanext_generator_append_prompt(g, mixed, strlen(mixed), both, 2), LLAVANEXT_OK, NULL);
    llavanext_tensor_free(video);
    llavanext_tensor_free(image);
    llavanext_tensor_free(narrow);
    llavanext_generator_free(g);
}

static void malformed_chat_messages_are_refused(void **s)
{
    (void)s;
    char *out = (char *)&out;
    expect(llavanext_model_render_chat(&out, model, "[{\"role\": \"user\", \"content\": ", 1), LLAVANEXT_E_FORMAT,
           "invalid JSON");
    assert_null(out);
    expect(llavanext_model_render_chat(&out, model, "{\"role\": \"user\"}", 1), LLAVANEXT_E_INVALID_ARGUMENT,
           "JSON array");
    expect(llavanext_model_render_chat(&out, model, "[{\"role\": \"user\", \"content\": \"a\", \"role\": \"x\"}]", 1),
           LLAVANEXT_E_FORMAT, "duplicate");
    int32_t bad_ids[2] = { 5, 1 << 30 };
    expect(llavanext_model_detokenize(&out, model, bad_ids, 2, 0), LLAVANEXT_E_INVALID_ARGUMENT, "position 1");
    int32_t neg = -3;
    expect(llavanext_model_detokenize(&out, model, &neg, 1, 1), LLAVANEXT_E_INVALID_ARGUMENT, "id -3");
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, NULL), LLAVANEXT_OK);
    expect(llavanext_generator_append_tokens(g, bad_ids, 2), LLAVANEXT_E_INVALID_ARGUMENT, "outside the vocabulary");
    char stop[600];
    memset(stop, 'x', sizeof stop - 1);
    stop[sizeof stop - 1] = '\0';
    expect(llavanext_generator_add_stop_string(g, stop), LLAVANEXT_E_INVALID_ARGUMENT, "1 to 512 bytes");
    expect(llavanext_generator_add_stop_string(g, ""), LLAVANEXT_E_INVALID_ARGUMENT, "1 to 512 bytes");
    for (int i = 0; i < 16; i++)
        expect(llavanext_generator_add_stop_string(g, "stop"), LLAVANEXT_OK, NULL);
    expect(llavanext_generator_add_stop_string(g, "stop"), LLAVANEXT_E_LIMIT, "at most 16");
    llavanext_generator_free(g);
}

/* ---------------------------------------------------------------------------------------------
 * Media: no frames, forged sizes, frame counts
 * ------------------------------------------------------------------------------------------- */

static uint32_t crc32_of(const unsigned char *b, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= b[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* A PNG signature, an IHDR claiming side x side RGB pixels (valid CRC) and IEND: no pixels. */
static size_t forged_png(unsigned char *b, uint32_t side)
{
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    unsigned char *c = b + 8;
    put_be32(c, 13);
    memcpy(c + 4, "IHDR", 4);
    put_be32(c + 8, side);
    put_be32(c + 12, side);
    memcpy(c + 16, "\x08\x02\x00\x00\x00", 5);
    put_be32(c + 21, crc32_of(c + 4, 17));
    unsigned char *e = c + 25;
    put_be32(e, 0);
    memcpy(e + 4, "IEND", 4);
    put_be32(e + 8, crc32_of(e + 4, 4));
    return 8 + 25 + 12;
}

/* A BMP file header and BITMAPINFOHEADER claiming side x side 24-bit pixels, and no pixels. */
static size_t forged_bmp(unsigned char *b, uint32_t side)
{
    memset(b, 0, 54);
    b[0] = 'B';
    b[1] = 'M';
    put_le32(b + 2, 54);
    put_le32(b + 10, 54);
    put_le32(b + 14, 40);
    put_le32(b + 18, side);
    put_le32(b + 22, side);
    b[26] = 1;
    b[28] = 24;
    return 54;
}

static void media_without_frames_is_refused(void **s)
{
    (void)s;
    /* a y4m stream header with no FRAME after it */
    static const char y4m[] = "YUV4MPEG2 W8 H8 F25:1 Ip A1:1 C420jpeg\n";
    llavanext_frame_sampler *fs = (llavanext_frame_sampler *)&fs;
    expect(llavanext_frame_sampler_open_memory(&fs, y4m, sizeof y4m - 1, NULL), LLAVANEXT_E_MEDIA, "no frames");
    assert_null(fs);
    char *dir = tu_tempdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/empty.y4m", dir);
    assert_int_equal(tu_write_file(path, y4m, sizeof y4m - 1), 0);
    expect(llavanext_frame_sampler_open(&fs, path, NULL), LLAVANEXT_E_MEDIA, "no frames");
    snprintf(path, sizeof path, "%s/zero.mp4", dir);
    assert_int_equal(tu_write_file(path, "", 0), 0);
    expect(llavanext_frame_sampler_open(&fs, path, NULL), LLAVANEXT_E_FORMAT, NULL);
    snprintf(path, sizeof path, "%s/missing.mp4", dir);
    expect(llavanext_frame_sampler_open(&fs, path, NULL), LLAVANEXT_E_IO, "missing.mp4");
    tu_rmtree(dir);
    free(dir);
    expect(llavanext_frame_sampler_open_memory(&fs, "", 0, NULL), LLAVANEXT_E_FORMAT, "empty");
    static const char junk[] = "this is not a video, just some text long enough to probe";
    expect(llavanext_frame_sampler_open_memory(&fs, junk, sizeof junk - 1, NULL), LLAVANEXT_E_FORMAT,
           "not a recognised media format");
}

static void forged_65535_square_images_are_refused(void **s)
{
    (void)s;
    unsigned char b[64];
    llavanext_frame_sampler *fs = (llavanext_frame_sampler *)&fs;
    size_t n = forged_png(b, 65535);
    expect(llavanext_frame_sampler_open_memory(&fs, b, n, NULL), LLAVANEXT_E_LIMIT, "65535x65535");
    assert_null(fs);
    n = forged_bmp(b, 65535);
    expect(llavanext_frame_sampler_open_memory(&fs, b, n, NULL), LLAVANEXT_E_LIMIT, "65535x65535");
    /* a host limit below the real size of an image is honoured too */
    llavanext_frame_sampler_params p;
    llavanext_frame_sampler_params_init(&p, sizeof p);
    p.max_frame_pixels = 1000;
    expect(llavanext_frame_sampler_open(&fs, tu_data("media/image_120x80.png"), &p), LLAVANEXT_E_LIMIT, "120x80");
    p.max_frame_pixels = -1;
    expect(llavanext_frame_sampler_open(&fs, tu_data("media/image_120x80.png"), &p), LLAVANEXT_E_INVALID_ARGUMENT,
           "max_frame_pixels");
    /* host frames of the same forged size, and of no size */
    static const uint8_t px[3] = { 1, 2, 3 };
    const uint8_t *planes[3] = { px, NULL, NULL };
    const int32_t strides[3] = { 65535 * 3, 0, 0 };
    llavanext_frames *f = (llavanext_frames *)&f;
    expect(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_RGB24, planes, strides, 65535, 65535), LLAVANEXT_E_LIMIT,
           "65535x65535");
    assert_null(f);
    expect(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_RGB24, planes, strides, 0, 1), LLAVANEXT_E_INVALID_ARGUMENT,
           "0x1");
    const int32_t short_rows[3] = { 2, 0, 0 };
    expect(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_RGB24, planes, short_rows, 1, 1),
           LLAVANEXT_E_INVALID_ARGUMENT, "stride");
    expect(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_YUV420P, planes, strides, 2, 2), LLAVANEXT_E_INVALID_ARGUMENT,
           "plane 1 is NULL");
    expect(llavanext_frames_from_host(&f, 7, planes, strides, 1, 1), LLAVANEXT_E_INVALID_ARGUMENT, "pixel format 7");
}

static void frame_counts_out_of_range_are_refused(void **s)
{
    (void)s;
    llavanext_frame_sampler *fs;
    assert_int_equal(llavanext_frame_sampler_open(&fs, tu_data("media/clip_h264_90x50_41f.mp4"), NULL), LLAVANEXT_OK);
    llavanext_frames *f = (llavanext_frames *)&f;
    expect(llavanext_frame_sampler_uniform(&f, fs, 0), LLAVANEXT_E_INVALID_ARGUMENT, "frame count 0");
    assert_null(f);
    expect(llavanext_frame_sampler_uniform(&f, fs, -4), LLAVANEXT_E_INVALID_ARGUMENT, "frame count -4");
    expect(llavanext_frame_sampler_uniform(&f, fs, 42), LLAVANEXT_E_INVALID_ARGUMENT, "41");
    expect(llavanext_frame_sampler_begin_uniform(fs, 0), LLAVANEXT_E_INVALID_ARGUMENT, "frame count 0");
    expect(llavanext_frame_sampler_by_fps(&f, fs, 1.0, 0), LLAVANEXT_E_INVALID_ARGUMENT, "max_count 0");
    expect(llavanext_frame_sampler_by_fps(&f, fs, 0.0, 4), LLAVANEXT_E_INVALID_ARGUMENT, "fps 0");
    expect(llavanext_frame_sampler_by_fps(&f, fs, -INFINITY, 4), LLAVANEXT_E_INVALID_ARGUMENT, "fps");
    expect(llavanext_frame_sampler_by_fps(&f, fs, NAN, 4), LLAVANEXT_E_INVALID_ARGUMENT, "fps");
    static const int64_t idx[2] = { 3, 41 };
    expect(llavanext_frame_sampler_at_indices(&f, fs, idx, 0), LLAVANEXT_E_INVALID_ARGUMENT, "count 0");
    expect(llavanext_frame_sampler_at_indices(&f, fs, idx, 2), LLAVANEXT_E_INVALID_ARGUMENT, "41");
    static const int64_t neg[1] = { -1 };
    expect(llavanext_frame_sampler_at_indices(&f, fs, neg, 1), LLAVANEXT_E_INVALID_ARGUMENT, "-1");
    static const double nan_time[1] = { NAN };
    expect(llavanext_frame_sampler_at_times(&f, fs, nan_time, 1), LLAVANEXT_E_INVALID_ARGUMENT, "NaN");
    expect(llavanext_frame_sampler_at_times(&f, fs, nan_time, 0), LLAVANEXT_E_INVALID_ARGUMENT, "count 0");
    /* the pull interface: next without a plan is the end of an empty plan; batch 0 is refused */
    expect(llavanext_frame_sampler_next(&f, fs, 4), LLAVANEXT_DONE, NULL);
    assert_null(f);
    assert_int_equal(llavanext_frame_sampler_begin_uniform(fs, 3), LLAVANEXT_OK);
    expect(llavanext_frame_sampler_next(&f, fs, 0), LLAVANEXT_E_INVALID_ARGUMENT, "max_batch 0");
    llavanext_media_info info;
    info.struct_size = 0;
    expect(llavanext_frame_sampler_info(&info, fs), LLAVANEXT_E_INVALID_ARGUMENT, "struct_size");
    llavanext_frame_sampler_free(fs);
}

/* ---------------------------------------------------------------------------------------------
 * Generator: context overflow, cancellation, wrong order
 * ------------------------------------------------------------------------------------------- */

static llavanext_generator *generator(int64_t ctx, int32_t chunk, llavanext_progress_callback cb, void *user)
{
    llavanext_generator_params p;
    llavanext_generator_params_init(&p, sizeof p);
    p.context_length = ctx;
    p.prefill_chunk = chunk;
    p.max_new_tokens = 64;
    p.temperature = 0;
    p.threads = 1;
    p.progress = cb;
    p.progress_user_data = user;
    llavanext_generator *g = NULL;
    if (llavanext_generator_create(&g, model, &p) != LLAVANEXT_OK)
        fail_msg("create: %s", llavanext_last_error());
    return g;
}

static const char *long_prompt = "USER: Tell me everything you know about the history of the city of Rome, from its "
                                 "founding to the present day, in great detail. ASSISTANT:";

static void context_overflow_is_refused_without_truncation(void **s)
{
    (void)s;
    llavanext_generator *g = generator(16, 0, NULL, NULL);
    expect(llavanext_generator_append_prompt(g, long_prompt, strlen(long_prompt), NULL, 0), LLAVANEXT_E_CONTEXT_FULL,
           "capacity 16");
    assert_int_equal(llavanext_generator_position(g), 0);
    /* video embeddings that alone exceed the context */
    llavanext_tensor *video = embeddings(LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS, 40, 64);
    const llavanext_tensor *one[1] = { video };
    expect(llavanext_generator_append_prompt(g, "<video>", 7, one, 1), LLAVANEXT_E_CONTEXT_FULL, "context is full");
    llavanext_tensor_free(video);
    int32_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = 100 + i;
    expect(llavanext_generator_append_tokens(g, ids, 20), LLAVANEXT_E_CONTEXT_FULL, "20 more requested");
    /* generation fills the context, then stops with CONTEXT_FULL, not a crash or a wrap-around */
    expect(llavanext_generator_append_tokens(g, ids, 14), LLAVANEXT_OK, NULL);
    llavanext_status st;
    int produced = 0;
    while ((st = llavanext_generator_next(g, NULL, NULL, NULL)) == LLAVANEXT_OK)
        produced++;
    if (st != LLAVANEXT_DONE) {
        expect(st, LLAVANEXT_E_CONTEXT_FULL, "all 16 positions are used");
        assert_int_equal(produced, 2);
        assert_int_equal(llavanext_generator_position(g), 16);
    }
    double lp;
    expect(llavanext_generator_score(&lp, NULL, g, " more", 5), LLAVANEXT_E_CONTEXT_FULL, "capacity 16");
    llavanext_generator_free(g);
    /* a context longer than RoPE scaling allows */
    llavanext_generator_params p;
    llavanext_generator_params_init(&p, sizeof p);
    p.context_length = 100000;
    llavanext_generator *big = (llavanext_generator *)&p;
    expect(llavanext_generator_create(&big, model, &p), LLAVANEXT_E_INVALID_ARGUMENT, "raise rope_scale");
    assert_null(big);
}

typedef struct cancel_ctx {
    llavanext_generator *g;
    llavanext_vision_encoder *e;
    int calls, cancel_at, stop_at;
} cancel_ctx;

static int32_t cancel_progress(int32_t stage, int64_t done, int64_t total, void *user)
{
    (void)stage;
    (void)done;
    (void)total;
    cancel_ctx *c = user;
    c->calls++;
    if (c->calls == c->cancel_at) {
        if (c->g)
            llavanext_generator_cancel(c->g);
        if (c->e)
            llavanext_vision_encoder_cancel(c->e);
    }
    return c->calls == c->stop_at;
}

static void prefill_cancellation_leaves_a_usable_generator(void **s)
{
    (void)s;
    cancel_ctx c = { 0 };
    llavanext_generator *g = generator(0, 4, cancel_progress, &c);
    c.g = g;
    /* cancel from the progress callback after the first block: the next block refuses to start */
    c.cancel_at = 1;
    expect(llavanext_generator_append_prompt(g, long_prompt, strlen(long_prompt), NULL, 0), LLAVANEXT_OK, NULL);
    expect(llavanext_generator_prefill(g), LLAVANEXT_E_ABORTED, "prefill cancelled after 4 of");
    assert_int_equal(llavanext_generator_position(g), 4); /* what was evaluated is kept */
    const float *logits;
    expect(llavanext_generator_logits(&logits, NULL, g), LLAVANEXT_E_STATE, "nothing has been evaluated");
    /* the progress callback returning non-zero aborts too */
    llavanext_generator_reset(g);
    c.calls = 0;
    c.cancel_at = -1;
    c.stop_at = 2;
    expect(llavanext_generator_append_prompt(g, long_prompt, strlen(long_prompt), NULL, 0), LLAVANEXT_OK, NULL);
    expect(llavanext_generator_next(g, NULL, NULL, NULL), LLAVANEXT_E_ABORTED, "after 8 of");
    /* and the generator still works afterwards */
    llavanext_generator_reset(g);
    c.stop_at = -1;
    expect(llavanext_generator_append_prompt(g, long_prompt, strlen(long_prompt), NULL, 0), LLAVANEXT_OK, NULL);
    expect(llavanext_generator_next(g, NULL, NULL, NULL), LLAVANEXT_OK, NULL);
    llavanext_generator_free(g);
}

static void calls_in_the_wrong_order_are_state_errors(void **s)
{
    (void)s;
    llavanext_generator *g = generator(0, 0, NULL, NULL);
    expect(llavanext_generator_next(g, NULL, NULL, NULL), LLAVANEXT_E_STATE, "append a prompt first");
    const float *logits = (const float *)&g;
    int32_t count = 7;
    expect(llavanext_generator_logits(&logits, &count, g), LLAVANEXT_E_STATE, "nothing has been evaluated");
    assert_null(logits);
    assert_int_equal(count, 0);
    double lp = 1;
    int32_t nt = 5;
    expect(llavanext_generator_score(&lp, &nt, g, "x", 1), LLAVANEXT_E_STATE, "append a prompt first");
    assert_int_equal(nt, 0);
    expect(llavanext_generator_prefill(g), LLAVANEXT_OK, NULL); /* nothing to evaluate: a no-op */
    expect(llavanext_generator_generate(g, NULL, NULL), LLAVANEXT_E_STATE, NULL);
    /* appended but not yet evaluated: logits are still unavailable */
    expect(llavanext_generator_append_prompt(g, "USER: hi", 8, NULL, 0), LLAVANEXT_OK, NULL);
    expect(llavanext_generator_logits(&logits, &count, g), LLAVANEXT_E_STATE, NULL);
    expect(llavanext_generator_prefill(g), LLAVANEXT_OK, NULL);
    expect(llavanext_generator_logits(&logits, &count, g), LLAVANEXT_OK, NULL);
    assert_int_equal(count, 32064);
    llavanext_generator_free(g);
    /* a model loaded without weights serves text but creates no compute handles */
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.load_mode = LLAVANEXT_LOAD_NO_WEIGHTS;
    llavanext_model *text_only;
    assert_int_equal(llavanext_model_load(&text_only, tu_data("tiny-a"), &mp), LLAVANEXT_OK);
    llavanext_generator *tg = (llavanext_generator *)&mp;
    expect(llavanext_generator_create(&tg, text_only, NULL), LLAVANEXT_E_STATE, "without weights");
    assert_null(tg);
    llavanext_vision_encoder *te;
    expect(llavanext_vision_encoder_create(&te, text_only, NULL), LLAVANEXT_E_STATE, "without weights");
    llavanext_pooler *tp;
    expect(llavanext_pooler_create(&tp, text_only, NULL), LLAVANEXT_E_STATE, "without weights");
    llavanext_model_free(text_only);
}

/* ---------------------------------------------------------------------------------------------
 * Vision encoder and pooler: cancellation, wrong tensors, the memory cap
 * ------------------------------------------------------------------------------------------- */

static llavanext_frames *video_frames(int32_t count)
{
    llavanext_frame_sampler *fs;
    assert_int_equal(llavanext_frame_sampler_open(&fs, tu_data("media/clip_h264_90x50_41f.mp4"), NULL), LLAVANEXT_OK);
    llavanext_frames *f;
    assert_int_equal(llavanext_frame_sampler_uniform(&f, fs, count), LLAVANEXT_OK);
    llavanext_frame_sampler_free(fs);
    return f;
}

static llavanext_vision_encoder *encoder(int32_t batch, int64_t max_bytes, llavanext_progress_callback cb, void *user)
{
    llavanext_vision_encoder_params p;
    llavanext_vision_encoder_params_init(&p, sizeof p);
    p.threads = 1;
    p.max_batch_frames = batch;
    p.max_request_bytes = max_bytes;
    p.progress = cb;
    p.progress_user_data = user;
    llavanext_vision_encoder *e = NULL;
    if (llavanext_vision_encoder_create(&e, model, &p) != LLAVANEXT_OK)
        fail_msg("create: %s", llavanext_last_error());
    return e;
}

static void encode_cancellation_is_reported_and_cleared(void **s)
{
    (void)s;
    cancel_ctx c = { 0 };
    llavanext_vision_encoder *e = encoder(2, 0, cancel_progress, &c);
    c.e = e;
    llavanext_frames *f = video_frames(6);
    llavanext_tensor *out = (llavanext_tensor *)&out;
    /* the progress callback cancels the encoder: the tower stops at the next layer */
    c.cancel_at = 2;
    c.stop_at = -1;
    expect(llavanext_vision_encoder_encode_video(&out, e, f), LLAVANEXT_E_ABORTED, "aborted after layer");
    assert_null(out);
    /* a non-zero return aborts as well */
    c.calls = 0;
    c.cancel_at = -1;
    c.stop_at = 3;
    expect(llavanext_vision_encoder_encode_video(&out, e, f), LLAVANEXT_E_ABORTED, "aborted after layer");
    /* the cancel request is cleared by the next encode */
    c.stop_at = -1;
    expect(llavanext_vision_encoder_encode_video(&out, e, f), LLAVANEXT_OK, NULL);
    assert_int_equal(llavanext_tensor_dim(out, 0), 6);
    llavanext_tensor_free(out);
    llavanext_frames_free(f);
    llavanext_vision_encoder_free(e);
}

static void tensors_of_the_wrong_kind_or_shape_are_refused(void **s)
{
    (void)s;
    llavanext_vision_encoder *e = encoder(0, 0, NULL, NULL);
    llavanext_pooler *pl;
    assert_int_equal(llavanext_pooler_create(&pl, model, NULL), LLAVANEXT_OK);
    llavanext_tensor *emb = embeddings(LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS, 4, 64);
    llavanext_tensor *out = (llavanext_tensor *)&out;
    expect(llavanext_vision_encoder_encode_pixels(&out, e, emb), LLAVANEXT_E_INVALID_ARGUMENT, "is not pixels");
    assert_null(out);
    int64_t dims[4] = { 1, 3, 28, 28 };
    float *zeros = calloc(3 * 56 * 56, sizeof *zeros);
    llavanext_tensor *small;
    assert_int_equal(llavanext_tensor_create(&small, LLAVANEXT_TENSOR_VIDEO_PIXELS, 4, dims, zeros, 0, 0), LLAVANEXT_OK);
    expect(llavanext_vision_encoder_encode_pixels(&out, e, small), LLAVANEXT_E_INVALID_ARGUMENT, "[N, 3, 56, 56]");
    expect(llavanext_pooler_pool(&out, pl, emb), LLAVANEXT_E_INVALID_ARGUMENT, "is not the expected");
    expect(llavanext_pooler_project(&out, pl, small), LLAVANEXT_E_INVALID_ARGUMENT, "neither VIDEO_POOLED");
    expect(llavanext_pooler_apply(&out, pl, emb), LLAVANEXT_E_INVALID_ARGUMENT, "neither VIDEO_FEATURES");
    int64_t pdims[3] = { 1, 16, 64 };
    llavanext_tensor *projected;
    assert_int_equal(llavanext_tensor_create(&projected, LLAVANEXT_TENSOR_IMAGE_PROJECTED, 3, pdims, zeros, 0, 0),
                     LLAVANEXT_OK);
    expect(llavanext_pooler_pack_image(&out, pl, projected), LLAVANEXT_E_INVALID_ARGUMENT, "no image size");
    llavanext_tensor_free(projected);
    assert_int_equal(llavanext_tensor_create(&projected, LLAVANEXT_TENSOR_IMAGE_PROJECTED, 3, pdims, zeros, 80, 120),
                     LLAVANEXT_OK);
    expect(llavanext_pooler_pack_image(&out, pl, projected), LLAVANEXT_E_INVALID_ARGUMENT, "1 patches");
    llavanext_tensor_free(projected);
    /* tensor values themselves */
    expect(llavanext_tensor_create(&out, 99, 4, dims, zeros, 0, 0), LLAVANEXT_E_INVALID_ARGUMENT, "kind 99");
    expect(llavanext_tensor_create(&out, LLAVANEXT_TENSOR_OTHER, 9, dims, zeros, 0, 0), LLAVANEXT_E_INVALID_ARGUMENT,
           "9 dimensions");
    int64_t negative[2] = { 2, -1 };
    expect(llavanext_tensor_create(&out, LLAVANEXT_TENSOR_OTHER, 2, negative, zeros, 0, 0),
           LLAVANEXT_E_INVALID_ARGUMENT, "dimension 1");
    int64_t huge[2] = { (int64_t)1 << 40, (int64_t)1 << 40 };
    expect(llavanext_tensor_create(&out, LLAVANEXT_TENSOR_OTHER, 2, huge, zeros, 0, 0), LLAVANEXT_E_INVALID_ARGUMENT,
           "dimension 1");
    const llavanext_tensor *mixed[2] = { emb, small };
    expect(llavanext_tensor_concat(&out, mixed, 2), LLAVANEXT_E_INVALID_ARGUMENT, "kind or rank");
    expect(llavanext_tensor_concat(&out, mixed, 0), LLAVANEXT_E_INVALID_ARGUMENT, "no tensors");
    free(zeros);
    llavanext_tensor_free(small);
    llavanext_tensor_free(emb);
    llavanext_pooler_free(pl);
    llavanext_vision_encoder_free(e);
}

static void requests_over_the_memory_cap_are_refused_up_front(void **s)
{
    (void)s;
    llavanext_frames *f = video_frames(8);
    /* 8 frames of 56x56: 301 KiB of pixels, 32 KiB of features and per batch of 2 frames about
     * 50 KiB of activations */
    llavanext_vision_encoder *e = encoder(2, 256 << 10, NULL, NULL);
    llavanext_tensor *out = (llavanext_tensor *)&out;
    expect(llavanext_vision_encoder_encode_video(&out, e, f), LLAVANEXT_E_LIMIT, "max_request_bytes = 262144");
    assert_null(out);
    assert_non_null(strstr(llavanext_last_error(), "8 images of 56x56"));
    expect(llavanext_vision_encoder_preprocess_video(&out, e, f), LLAVANEXT_E_LIMIT, "max_request_bytes");
    expect(llavanext_vision_encoder_encode_image(&out, e, f, 0), LLAVANEXT_OK, NULL); /* a few patches fit */
    llavanext_tensor_free(out);
    llavanext_vision_encoder_free(e);
    /* the same request under the default cap works */
    e = encoder(2, 0, NULL, NULL);
    expect(llavanext_vision_encoder_encode_video(&out, e, f), LLAVANEXT_OK, NULL);
    llavanext_tensor *features = out;
    llavanext_vision_encoder_free(e);
    llavanext_tensor_free(features);
    llavanext_frames_free(f);
    /* encode_pixels counts features and activations, not the caller's pixels: one frame needs
     * 37 KiB of pixels, 4 KiB of features and 58 KiB of activations */
    f = video_frames(1);
    e = encoder(1, 0, NULL, NULL);
    llavanext_tensor *pixels;
    expect(llavanext_vision_encoder_preprocess_video(&pixels, e, f), LLAVANEXT_OK, NULL);
    llavanext_vision_encoder_free(e);
    e = encoder(1, 70000, NULL, NULL);
    expect(llavanext_vision_encoder_encode_pixels(&out, e, pixels), LLAVANEXT_OK, NULL);
    llavanext_tensor_free(out);
    expect(llavanext_vision_encoder_encode_video(&out, e, f), LLAVANEXT_E_LIMIT, "1 images of 56x56");
    llavanext_vision_encoder_free(e);
    llavanext_tensor_free(pixels);
    llavanext_frames_free(f);
    /* a negative cap is a bad parameter */
    llavanext_vision_encoder_params vp;
    llavanext_vision_encoder_params_init(&vp, sizeof vp);
    vp.max_request_bytes = -1;
    expect(llavanext_vision_encoder_create(&e, model, &vp), LLAVANEXT_E_INVALID_ARGUMENT, "max_request_bytes");
    /* the generator's cap covers its KV cache, prompt rows, activations, logits and scoring rows:
     * 9.7 MiB for 512 positions, 8.3 MiB for 64 (mostly logits over the 32064-token vocabulary) */
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.max_request_bytes = 9 << 20;
    llavanext_generator *g = (llavanext_generator *)&gp;
    expect(llavanext_generator_create(&g, model, &gp), LLAVANEXT_E_LIMIT, "lower context_length");
    assert_null(g);
    assert_non_null(strstr(llavanext_last_error(), "512 positions"));
    gp.context_length = 64;
    expect(llavanext_generator_create(&g, model, &gp), LLAVANEXT_OK, NULL);
    llavanext_generator_free(g);
    gp.max_request_bytes = -5;
    expect(llavanext_generator_create(&g, model, &gp), LLAVANEXT_E_INVALID_ARGUMENT, "max_request_bytes");
    /* a KV cache type that does not exist */
    gp.max_request_bytes = 0;
    gp.kv_cache = 4;
    expect(llavanext_generator_create(&g, model, &gp), LLAVANEXT_E_INVALID_ARGUMENT, "kv_cache = 4");
    gp.kv_cache = -1;
    expect(llavanext_generator_create(&g, model, &gp), LLAVANEXT_E_INVALID_ARGUMENT, "kv_cache = -1");
}

/* Numbers at the edges of their types: no overflow (UBSan checks) and a clear answer. */
static void extreme_numbers_are_refused_or_bounded(void **s)
{
    (void)s;
    llavanext_budget b;
    b.struct_size = sizeof b;
    expect(llavanext_model_plan_budget(&b, model, INT32_MAX, 0, INT64_MAX, INT64_MAX, INT32_MAX, 0, 0),
           LLAVANEXT_E_INVALID_ARGUMENT, "image or text tokens");
    expect(llavanext_model_plan_budget(&b, model, 1, 0, 0, 0, 0, 1e300, 0), LLAVANEXT_E_INVALID_ARGUMENT,
           "rope_scale");
    expect(llavanext_model_plan_budget(&b, model, 1, 0, 0, 0, 0, NAN, 0), LLAVANEXT_E_INVALID_ARGUMENT, "rope_scale");
    expect(llavanext_model_plan_budget(&b, model, INT32_MAX, 0, 0, 0, INT32_MAX, -1, 0), LLAVANEXT_OK, NULL);
    assert_false(b.fits);
    expect(llavanext_model_plan_budget(&b, model, 1, 99, 0, 0, 0, 0, 0), LLAVANEXT_E_INVALID_ARGUMENT, "pool stride 99");
    assert_int_equal(llavanext_model_context_length(model, 1e300), 0);
    assert_int_equal(llavanext_model_context_length(model, NAN), 0);
    assert_int_equal(llavanext_model_context_length(model, 1024), 256 * 1024);
    assert_true(llavanext_model_image_tokens(model, 65535, 65535) > 0);
    assert_int_equal(llavanext_model_image_tokens(model, INT32_MAX, INT32_MAX), -1);
    assert_int_equal(llavanext_model_image_tokens(model, 0, 10), -1);
    assert_int_equal(llavanext_model_image_tokens(model, 10, -10), -1);
    assert_int_equal(llavanext_model_tokens_per_frame(model, -1), 0);
    /* one-pixel-wide and one-pixel-high host frames through the whole vision path */
    llavanext_vision_encoder *e = encoder(0, 0, NULL, NULL);
    llavanext_pooler *pl;
    assert_int_equal(llavanext_pooler_create(&pl, model, NULL), LLAVANEXT_OK);
    static const int32_t sizes[3][2] = { { 1, 4096 }, { 4096, 1 }, { 1, 1 } };
    for (int i = 0; i < 3; i++) {
        int32_t w = sizes[i][0], h = sizes[i][1];
        uint8_t *px = calloc((size_t)w * (size_t)h * 3, 1);
        const uint8_t *planes[3] = { px, NULL, NULL };
        const int32_t strides[3] = { w * 3, 0, 0 };
        llavanext_frames *f;
        expect(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_RGB24, planes, strides, w, h), LLAVANEXT_OK, NULL);
        llavanext_tensor *features, *emb;
        expect(llavanext_vision_encoder_encode_image(&features, e, f, 0), LLAVANEXT_OK, NULL);
        expect(llavanext_pooler_apply(&emb, pl, features), LLAVANEXT_OK, NULL);
        assert_int_equal(llavanext_tensor_dim(emb, 0), llavanext_model_image_tokens(model, h, w));
        llavanext_tensor_free(emb);
        llavanext_tensor_free(features);
        expect(llavanext_vision_encoder_encode_video(&features, e, f), LLAVANEXT_OK, NULL);
        llavanext_tensor_free(features);
        llavanext_frames_free(f);
        free(px);
    }
    llavanext_pooler_free(pl);
    llavanext_vision_encoder_free(e);
}

/* ---------------------------------------------------------------------------------------------
 * NULL arguments: every public function that takes a pointer
 * ------------------------------------------------------------------------------------------- */

#define EXPECT_INVALID(call) expect((call), LLAVANEXT_E_INVALID_ARGUMENT, NULL)

static void null_arguments_are_refused_or_ignored(void **s)
{
    (void)s;
    /* documented no-ops and neutral answers */
    llavanext_free(NULL);
    llavanext_set_default_log(NULL, NULL);
    llavanext_model_params_init(NULL, 64);
    llavanext_frame_sampler_params_init(NULL, 64);
    llavanext_vision_encoder_params_init(NULL, 64);
    llavanext_pooler_params_init(NULL, 64);
    llavanext_generator_params_init(NULL, 64);
    llavanext_model_free(NULL);
    llavanext_frames_free(NULL);
    llavanext_frame_sampler_free(NULL);
    llavanext_tensor_free(NULL);
    llavanext_vision_encoder_free(NULL);
    llavanext_vision_encoder_cancel(NULL);
    llavanext_pooler_free(NULL);
    llavanext_generator_free(NULL);
    llavanext_generator_cancel(NULL);
    llavanext_generator_reset(NULL);
    assert_non_null(llavanext_status_string(-12345));
    assert_int_equal(llavanext_model_token_id(NULL, LLAVANEXT_TOKEN_BOS), -1);
    assert_int_equal(llavanext_model_vocab_size(NULL), 0);
    assert_int_equal(llavanext_model_context_length(NULL, 0), 0);
    assert_int_equal(llavanext_model_tokens_per_frame(NULL, 0), 0);
    assert_int_equal(llavanext_model_image_tokens(NULL, 10, 10), -1);
    assert_int_equal(llavanext_frames_count(NULL), 0);
    assert_int_equal(llavanext_frames_width(NULL), 0);
    assert_int_equal(llavanext_frames_height(NULL), 0);
    assert_null(llavanext_frames_data(NULL, 0));
    assert_int_equal(llavanext_frames_source_index(NULL, 0), -1);
    assert_true(isnan(llavanext_frames_timestamp(NULL, 0)));
    assert_int_equal(llavanext_tensor_kind(NULL), LLAVANEXT_TENSOR_OTHER);
    assert_int_equal(llavanext_tensor_ndim(NULL), 0);
    assert_int_equal(llavanext_tensor_dim(NULL, 0), 0);
    assert_int_equal(llavanext_tensor_numel(NULL), 0);
    assert_null(llavanext_tensor_data(NULL));
    assert_int_equal(llavanext_tensor_image_height(NULL), 0);
    assert_int_equal(llavanext_tensor_image_width(NULL), 0);
    assert_int_equal(llavanext_pooler_tokens_per_frame(NULL), 0);
    assert_int_equal(llavanext_generator_position(NULL), 0);
    assert_int_equal(llavanext_generator_context_length(NULL), 0);
    assert_null(llavanext_generator_tokens(NULL));

    /* model */
    llavanext_model *m;
    EXPECT_INVALID(llavanext_model_load(NULL, tu_data("tiny-a"), NULL));
    EXPECT_INVALID(llavanext_model_load(&m, NULL, NULL));
    char *str;
    EXPECT_INVALID(llavanext_model_describe(NULL, model));
    EXPECT_INVALID(llavanext_model_describe(&str, NULL));
    int32_t *ids;
    size_t n;
    EXPECT_INVALID(llavanext_model_tokenize(NULL, &n, model, "a", 1, 1));
    EXPECT_INVALID(llavanext_model_tokenize(&ids, NULL, model, "a", 1, 1));
    EXPECT_INVALID(llavanext_model_tokenize(&ids, &n, NULL, "a", 1, 1));
    EXPECT_INVALID(llavanext_model_tokenize(&ids, &n, model, NULL, 1, 1));
    expect(llavanext_model_tokenize(&ids, &n, model, NULL, 0, 0), LLAVANEXT_OK, NULL); /* empty text */
    assert_int_equal(n, 0);
    llavanext_free(ids);
    int32_t one = 5;
    EXPECT_INVALID(llavanext_model_detokenize(NULL, model, &one, 1, 0));
    EXPECT_INVALID(llavanext_model_detokenize(&str, NULL, &one, 1, 0));
    EXPECT_INVALID(llavanext_model_detokenize(&str, model, NULL, 1, 0));
    EXPECT_INVALID(llavanext_model_render_chat(NULL, model, "[]", 1));
    EXPECT_INVALID(llavanext_model_render_chat(&str, NULL, "[]", 1));
    EXPECT_INVALID(llavanext_model_render_chat(&str, model, NULL, 1));
    llavanext_budget b;
    b.struct_size = sizeof b;
    EXPECT_INVALID(llavanext_model_plan_budget(NULL, model, 1, 0, 0, 0, 0, 0, 0));
    EXPECT_INVALID(llavanext_model_plan_budget(&b, NULL, 1, 0, 0, 0, 0, 0, 0));

    /* frames and tensors */
    llavanext_frames *f;
    const uint8_t *planes[3] = { NULL, NULL, NULL };
    const int32_t strides[3] = { 3, 0, 0 };
    EXPECT_INVALID(llavanext_frames_from_host(NULL, LLAVANEXT_PIXEL_RGB24, planes, strides, 1, 1));
    EXPECT_INVALID(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_RGB24, NULL, strides, 1, 1));
    EXPECT_INVALID(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_RGB24, planes, NULL, 1, 1));
    EXPECT_INVALID(llavanext_frames_from_host(&f, LLAVANEXT_PIXEL_RGB24, planes, strides, 1, 1));
    llavanext_tensor *t;
    int64_t dims[1] = { 2 };
    float vals[2] = { 1, 2 };
    EXPECT_INVALID(llavanext_tensor_create(NULL, LLAVANEXT_TENSOR_OTHER, 1, dims, vals, 0, 0));
    EXPECT_INVALID(llavanext_tensor_create(&t, LLAVANEXT_TENSOR_OTHER, 1, NULL, vals, 0, 0));
    EXPECT_INVALID(llavanext_tensor_create(&t, LLAVANEXT_TENSOR_OTHER, 1, dims, NULL, 0, 0));
    EXPECT_INVALID(llavanext_tensor_concat(NULL, NULL, 1));
    EXPECT_INVALID(llavanext_tensor_concat(&t, NULL, 1));
    const llavanext_tensor *holes[2] = { NULL, NULL };
    EXPECT_INVALID(llavanext_tensor_concat(&t, holes, 2));

    /* frame sampler */
    llavanext_frame_sampler *fs;
    EXPECT_INVALID(llavanext_frame_sampler_open(NULL, tu_data("media/image_120x80.png"), NULL));
    EXPECT_INVALID(llavanext_frame_sampler_open(&fs, NULL, NULL));
    EXPECT_INVALID(llavanext_frame_sampler_open_memory(NULL, "x", 1, NULL));
    EXPECT_INVALID(llavanext_frame_sampler_open_memory(&fs, NULL, 10, NULL));
    EXPECT_INVALID(llavanext_frame_sampler_open_callbacks(NULL, NULL, NULL, NULL, NULL));
    EXPECT_INVALID(llavanext_frame_sampler_open_callbacks(&fs, NULL, NULL, NULL, NULL));
    llavanext_media_info info;
    info.struct_size = sizeof info;
    EXPECT_INVALID(llavanext_frame_sampler_info(NULL, NULL));
    EXPECT_INVALID(llavanext_frame_sampler_info(&info, NULL));
    assert_int_equal(llavanext_frame_sampler_open(&fs, tu_data("media/image_120x80.png"), NULL), LLAVANEXT_OK);
    EXPECT_INVALID(llavanext_frame_sampler_info(NULL, fs));
    EXPECT_INVALID(llavanext_frame_sampler_uniform(NULL, fs, 1));
    EXPECT_INVALID(llavanext_frame_sampler_uniform(&f, NULL, 1));
    EXPECT_INVALID(llavanext_frame_sampler_by_fps(NULL, fs, 1, 1));
    EXPECT_INVALID(llavanext_frame_sampler_by_fps(&f, NULL, 1, 1));
    double times[1] = { 0 };
    int64_t idx[1] = { 0 };
    EXPECT_INVALID(llavanext_frame_sampler_at_times(NULL, fs, times, 1));
    EXPECT_INVALID(llavanext_frame_sampler_at_times(&f, NULL, times, 1));
    EXPECT_INVALID(llavanext_frame_sampler_at_times(&f, fs, NULL, 1));
    EXPECT_INVALID(llavanext_frame_sampler_at_indices(NULL, fs, idx, 1));
    EXPECT_INVALID(llavanext_frame_sampler_at_indices(&f, NULL, idx, 1));
    EXPECT_INVALID(llavanext_frame_sampler_at_indices(&f, fs, NULL, 1));
    EXPECT_INVALID(llavanext_frame_sampler_begin_uniform(NULL, 1));
    EXPECT_INVALID(llavanext_frame_sampler_next(NULL, fs, 1));
    EXPECT_INVALID(llavanext_frame_sampler_next(&f, NULL, 1));
    llavanext_frames *image;
    assert_int_equal(llavanext_frame_sampler_uniform(&image, fs, 1), LLAVANEXT_OK);
    llavanext_frame_sampler_free(fs);

    /* vision encoder */
    llavanext_vision_encoder *e;
    EXPECT_INVALID(llavanext_vision_encoder_create(NULL, model, NULL));
    EXPECT_INVALID(llavanext_vision_encoder_create(&e, NULL, NULL));
    e = encoder(0, 0, NULL, NULL);
    llavanext_tensor *px;
    assert_int_equal(llavanext_vision_encoder_preprocess_video(&px, e, image), LLAVANEXT_OK);
    EXPECT_INVALID(llavanext_vision_encoder_preprocess_video(NULL, e, image));
    EXPECT_INVALID(llavanext_vision_encoder_preprocess_video(&t, NULL, image));
    EXPECT_INVALID(llavanext_vision_encoder_preprocess_video(&t, e, NULL));
    EXPECT_INVALID(llavanext_vision_encoder_preprocess_image(NULL, e, image, 0));
    EXPECT_INVALID(llavanext_vision_encoder_preprocess_image(&t, NULL, image, 0));
    EXPECT_INVALID(llavanext_vision_encoder_preprocess_image(&t, e, NULL, 0));
    EXPECT_INVALID(llavanext_vision_encoder_preprocess_image(&t, e, image, 1));
    EXPECT_INVALID(llavanext_vision_encoder_encode_pixels(NULL, e, px));
    EXPECT_INVALID(llavanext_vision_encoder_encode_pixels(&t, NULL, px));
    EXPECT_INVALID(llavanext_vision_encoder_encode_pixels(&t, e, NULL));
    EXPECT_INVALID(llavanext_vision_encoder_encode_video(NULL, e, image));
    EXPECT_INVALID(llavanext_vision_encoder_encode_video(&t, NULL, image));
    EXPECT_INVALID(llavanext_vision_encoder_encode_video(&t, e, NULL));
    EXPECT_INVALID(llavanext_vision_encoder_encode_image(NULL, e, image, 0));
    EXPECT_INVALID(llavanext_vision_encoder_encode_image(&t, NULL, image, 0));
    EXPECT_INVALID(llavanext_vision_encoder_encode_image(&t, e, NULL, 0));
    EXPECT_INVALID(llavanext_vision_encoder_encode_image(&t, e, image, -1));
    llavanext_tensor *features;
    assert_int_equal(llavanext_vision_encoder_encode_pixels(&features, e, px), LLAVANEXT_OK);
    llavanext_tensor_free(px);
    llavanext_vision_encoder_free(e);
    llavanext_frames_free(image);

    /* pooler */
    llavanext_pooler *pl;
    EXPECT_INVALID(llavanext_pooler_create(NULL, model, NULL));
    EXPECT_INVALID(llavanext_pooler_create(&pl, NULL, NULL));
    assert_int_equal(llavanext_pooler_create(&pl, model, NULL), LLAVANEXT_OK);
    EXPECT_INVALID(llavanext_pooler_pool(NULL, pl, features));
    EXPECT_INVALID(llavanext_pooler_pool(&t, NULL, features));
    EXPECT_INVALID(llavanext_pooler_pool(&t, pl, NULL));
    EXPECT_INVALID(llavanext_pooler_project(NULL, pl, features));
    EXPECT_INVALID(llavanext_pooler_project(&t, NULL, features));
    EXPECT_INVALID(llavanext_pooler_project(&t, pl, NULL));
    EXPECT_INVALID(llavanext_pooler_pack_image(NULL, pl, features));
    EXPECT_INVALID(llavanext_pooler_pack_image(&t, NULL, features));
    EXPECT_INVALID(llavanext_pooler_pack_image(&t, pl, NULL));
    EXPECT_INVALID(llavanext_pooler_apply(NULL, pl, features));
    EXPECT_INVALID(llavanext_pooler_apply(&t, NULL, features));
    EXPECT_INVALID(llavanext_pooler_apply(&t, pl, NULL));
    llavanext_tensor *video;
    assert_int_equal(llavanext_pooler_apply(&video, pl, features), LLAVANEXT_OK);
    llavanext_pooler_free(pl);
    llavanext_tensor_free(features);

    /* generator */
    llavanext_generator *g;
    EXPECT_INVALID(llavanext_generator_create(NULL, model, NULL));
    EXPECT_INVALID(llavanext_generator_create(&g, NULL, NULL));
    g = generator(0, 0, NULL, NULL);
    EXPECT_INVALID(llavanext_generator_append_prompt(NULL, "a", 1, NULL, 0));
    EXPECT_INVALID(llavanext_generator_append_prompt(g, NULL, 1, NULL, 0));
    EXPECT_INVALID(llavanext_generator_append_prompt(g, "<video>", 7, NULL, 1));
    EXPECT_INVALID(llavanext_generator_append_tokens(NULL, &one, 1));
    EXPECT_INVALID(llavanext_generator_append_tokens(g, NULL, 1));
    EXPECT_INVALID(llavanext_generator_prefill(NULL));
    EXPECT_INVALID(llavanext_generator_next(NULL, NULL, NULL, NULL));
    EXPECT_INVALID(llavanext_generator_generate(NULL, NULL, NULL));
    EXPECT_INVALID(llavanext_generator_add_stop_string(NULL, "x"));
    EXPECT_INVALID(llavanext_generator_add_stop_string(g, NULL));
    double lp;
    EXPECT_INVALID(llavanext_generator_score(NULL, NULL, g, "a", 1));
    EXPECT_INVALID(llavanext_generator_score(&lp, NULL, NULL, "a", 1));
    EXPECT_INVALID(llavanext_generator_score(&lp, NULL, g, NULL, 1));
    const float *logits;
    EXPECT_INVALID(llavanext_generator_logits(NULL, NULL, g));
    EXPECT_INVALID(llavanext_generator_logits(&logits, NULL, NULL));
    /* with a valid generator every output argument of next may be NULL */
    const llavanext_tensor *media[1] = { video };
    expect(llavanext_generator_append_prompt(g, "USER: <video> hi", 16, media, 1), LLAVANEXT_OK, NULL);
    expect(llavanext_generator_next(g, NULL, NULL, NULL), LLAVANEXT_OK, NULL);
    expect(llavanext_generator_generate(g, NULL, NULL), LLAVANEXT_OK, NULL);
    llavanext_generator_free(g);
    llavanext_tensor_free(video);
}

/* Parameter structs from a newer caller with fields this library does not know, or from no init
 * call at all. */
static void bad_parameter_structs_are_refused(void **s)
{
    (void)s;
    struct {
        llavanext_generator_params p;
        int64_t unknown;
    } newer;
    memset(&newer, 0, sizeof newer);
    llavanext_generator_params_init(&newer.p, sizeof newer);
    newer.unknown = 1;
    llavanext_generator *g;
    expect(llavanext_generator_create(&g, model, &newer.p), LLAVANEXT_E_INVALID_ARGUMENT, "knows only");
    newer.unknown = 0;
    expect(llavanext_generator_create(&g, model, &newer.p), LLAVANEXT_OK, NULL);
    llavanext_generator_free(g);
    llavanext_vision_encoder_params vp;
    memset(&vp, 0, sizeof vp);
    llavanext_vision_encoder *e;
    expect(llavanext_vision_encoder_create(&e, model, &vp), LLAVANEXT_E_INVALID_ARGUMENT, "struct_size 0");
    llavanext_vision_encoder_params_init(&vp, sizeof vp);
    vp.struct_size = 1u << 20;
    expect(llavanext_vision_encoder_create(&e, model, &vp), LLAVANEXT_E_INVALID_ARGUMENT, "implausibly large");
    /* an older caller's struct (without max_request_bytes) gets the default for the rest */
    llavanext_vision_encoder_params_init(&vp, offsetof(llavanext_vision_encoder_params, max_request_bytes));
    expect(llavanext_vision_encoder_create(&e, model, &vp), LLAVANEXT_OK, NULL);
    llavanext_vision_encoder_free(e);
    llavanext_pooler_params pp;
    llavanext_pooler_params_init(&pp, sizeof pp);
    pp.pool_stride = 99;
    llavanext_pooler *pl;
    expect(llavanext_pooler_create(&pl, model, &pp), LLAVANEXT_E_INVALID_ARGUMENT, "pool_stride 99");
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.temperature = NAN;
    expect(llavanext_generator_create(&g, model, &gp), LLAVANEXT_E_INVALID_ARGUMENT, "finite");
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.load_mode = 9;
    llavanext_model *m;
    expect(llavanext_model_load(&m, tu_data("tiny-a"), &mp), LLAVANEXT_E_INVALID_ARGUMENT, "load_mode 9");
    expect(llavanext_model_load(&m, tu_data("media"), NULL), LLAVANEXT_E_IO, "config.json");
    expect(llavanext_model_load(&m, tu_data("no-such-model"), NULL), LLAVANEXT_E_IO, "not a directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crafted_checkpoint_loads_unedited),
        cmocka_unit_test(truncated_checkpoint_is_refused),
        cmocka_unit_test(oversized_header_and_dimensions_are_refused),
        cmocka_unit_test(overlapping_tensors_are_refused),
        cmocka_unit_test(nonfinite_weights_are_found_with_check_finite),
        cmocka_unit_test(shape_mismatches_are_named),
        cmocka_unit_test(malformed_utf8_is_refused_with_its_offset),
        cmocka_unit_test(placeholders_and_media_must_match),
        cmocka_unit_test(malformed_chat_messages_are_refused),
        cmocka_unit_test(media_without_frames_is_refused),
        cmocka_unit_test(forged_65535_square_images_are_refused),
        cmocka_unit_test(frame_counts_out_of_range_are_refused),
        cmocka_unit_test(context_overflow_is_refused_without_truncation),
        cmocka_unit_test(prefill_cancellation_leaves_a_usable_generator),
        cmocka_unit_test(calls_in_the_wrong_order_are_state_errors),
        cmocka_unit_test(encode_cancellation_is_reported_and_cleared),
        cmocka_unit_test(tensors_of_the_wrong_kind_or_shape_are_refused),
        cmocka_unit_test(requests_over_the_memory_cap_are_refused_up_front),
        cmocka_unit_test(extreme_numbers_are_refused_or_bounded),
        cmocka_unit_test(null_arguments_are_refused_or_ignored),
        cmocka_unit_test(bad_parameter_structs_are_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
