/* The persistent embedding cache: one safetensors file per entry, named by the SHA-256 of a
 * canonical key string, written to a temporary file and renamed into place, checked in full
 * (key, shape, checksum of the values) on every read, with LRU eviction by modification time. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../base/sha256.h"

#define CACHE_FORMAT "llavanext-embedding-cache/1"
#define DEFAULT_MAX_BYTES ((int64_t)4 << 30)
#define ENTRY_SUFFIX ".safetensors"
#define TEMP_PREFIX ".tmp-"
#define STALE_TEMP_SECONDS 600
/* bytes of every weight tensor hashed per stride into the model fingerprint */
#define SAMPLE_BYTES 256
#define SAMPLE_STRIDE 65536

struct llavanext_embedding_cache {
    char *dir;
    int64_t max_bytes;
    pthread_mutex_t mu; /* the counters, and one eviction pass at a time */
    int64_t hits, misses, corrupt, writes, evictions;
    lnx_err_slot err;   /* the message of the most recent failed call */
};

/* numbers temporary files: unique within the process (the pid makes them unique between) */
static atomic_uint_fast64_t temp_seq;

static const llavanext_embedding_cache_params default_params = {
    .struct_size = sizeof(llavanext_embedding_cache_params),
    .max_bytes = 0,
};

LLAVANEXT_API void llavanext_embedding_cache_params_init(llavanext_embedding_cache_params *params, size_t size)
{
    lnx_params_init(params, size, &default_params, sizeof default_params);
}

LLAVANEXT_API void llavanext_embedding_key_init(llavanext_embedding_key *key, size_t size)
{
    llavanext_embedding_key d;
    memset(&d, 0, sizeof d);
    d.struct_size = sizeof d;
    d.pool_mode = LLAVANEXT_POOL_DEFAULT;
    lnx_params_init(key, size, &d, sizeof d);
}

LLAVANEXT_API llavanext_status llavanext_embedding_cache_open(llavanext_embedding_cache **out, const char *dir,
                                                              const llavanext_embedding_cache_params *params)
{
    API_CHECK(out, "llavanext_embedding_cache_open: out is NULL");
    *out = NULL;
    API_CHECK(dir && *dir, "llavanext_embedding_cache_open: no directory given");
    llavanext_embedding_cache_params p = default_params;
    LNX_TRY(lnx_params_copy(&p, sizeof p, params, "llavanext_embedding_cache_params"));
    API_CHECK(p.max_bytes >= 0, "llavanext_embedding_cache_params: max_bytes %lld is negative", (long long)p.max_bytes);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return lnx_error(LNX_E_IO, "%s: cannot create the cache directory: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return lnx_error(LNX_E_IO, "%s: not a directory", dir);
    if (access(dir, R_OK | W_OK | X_OK) != 0)
        return lnx_error(LNX_E_IO, "%s: the cache directory is not readable and writable: %s", dir, strerror(errno));
    llavanext_embedding_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = lnx_strdup(dir))) {
        free(c);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    c->max_bytes = p.max_bytes ? p.max_bytes : DEFAULT_MAX_BYTES;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return LNX_OK;
}

LLAVANEXT_API void llavanext_embedding_cache_free(llavanext_embedding_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->dir);
    free(c);
}

LLAVANEXT_API llavanext_status llavanext_media_hash_memory(uint8_t *out, const void *data, size_t size)
{
    API_CHECK(out && (data || size == 0), "llavanext_media_hash_memory: NULL argument");
    lnx_sha256_buffer(data, size, out);
    return LNX_OK;
}

LLAVANEXT_API llavanext_status llavanext_media_hash_file(uint8_t *out, const char *path)
{
    API_CHECK(out && path, "llavanext_media_hash_file: NULL argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lnx_error(LNX_E_IO, "%s: %s", path, strerror(errno));
    enum { BLOCK = 1 << 20 };
    uint8_t *buf = malloc(BLOCK);
    if (!buf) {
        close(fd);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    lnx_sha256 s;
    lnx_sha256_init(&s);
    lnx_status st = LNX_OK;
    for (;;) {
        ssize_t n = read(fd, buf, BLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = lnx_error(LNX_E_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        lnx_sha256_update(&s, buf, (size_t)n);
    }
    free(buf);
    close(fd);
    if (st == LNX_OK)
        lnx_sha256_final(&s, out);
    return st;
}

/* ---- keys ---- */

static int is_vision_weight(const char *name)
{
    return strstr(name, "vision_tower") || strstr(name, "multi_modal_projector") || strstr(name, "image_newline");
}

/* What makes one model's embeddings differ from another's: the settings of the vision side and
 * projector, the compute precision, and the vision and projector weights (their names, types,
 * shapes and a strided sample of their bytes: a fine-tuned checkpoint changes essentially every
 * value, and hashing all of a 7B model's 600 MB tower on every lookup would cost seconds). */
static lnx_status model_fingerprint(const llavanext_model *m, uint8_t out[32])
{
    if (!m->st)
        return lnx_error(LNX_E_STATE, "embedding cache: the model was loaded without weights");
    const lnx_model_cfg *c = &m->cfg;
    char desc[1024];
    int n = snprintf(desc, sizeof desc,
                     "vision %d %d %d %d %d %d %d %.9g %d|proc %d %d %d %.9g %.9g %.9g %.9g %.9g %.9g %.17g %d %d %d %d "
                     "%d|layer %d select %d|projector %d %d|text %d|newline %d|precision %d|pinpoints %d",
                     c->vision.hidden, c->vision.layers, c->vision.heads, c->vision.intermediate, c->vision.image_size,
                     c->vision.patch_size, c->vision.channels, c->vision.ln_eps, (int)c->vision.act,
                     c->proc.shortest_edge, c->proc.crop_h, c->proc.crop_w, c->proc.mean[0], c->proc.mean[1],
                     c->proc.mean[2], c->proc.std[0], c->proc.std[1], c->proc.std[2], c->proc.rescale_factor,
                     c->proc.do_resize, c->proc.do_center_crop, c->proc.do_rescale, c->proc.do_normalize, c->proc.resample,
                     c->vision_feature_layer, c->select_strategy, (int)c->projector_act, c->projector_bias, c->text.hidden,
                     c->use_image_newline, (int)lnx_gemm_ctx_precision(m->gemm), c->n_pinpoints);
    lnx_sha256 s;
    lnx_sha256_init(&s);
    lnx_sha256_update(&s, desc, (size_t)n < sizeof desc ? (size_t)n : sizeof desc - 1);
    lnx_sha256_update(&s, c->pinpoints, sizeof(c->pinpoints[0]) * (size_t)c->n_pinpoints);
    size_t count = lnx_st_count(m->st);
    for (size_t i = 0; i < count; i++) {
        const lnx_st_tensor *t = lnx_st_at(m->st, i);
        if (!is_vision_weight(t->name))
            continue;
        char head[512];
        int hn = snprintf(head, sizeof head, "|%s %s %d", t->name, lnx_st_dtype_name(t->dtype), (int)t->ndim);
        lnx_sha256_update(&s, head, (size_t)hn < sizeof head ? (size_t)hn : sizeof head - 1);
        lnx_sha256_update(&s, t->shape, sizeof(t->shape[0]) * (size_t)t->ndim);
        const uint8_t *d = t->data;
        for (size_t off = 0; off < t->nbytes; off += SAMPLE_STRIDE)
            lnx_sha256_update(&s, d + off, t->nbytes - off < SAMPLE_BYTES ? t->nbytes - off : SAMPLE_BYTES);
        if (t->nbytes > SAMPLE_BYTES)
            lnx_sha256_update(&s, d + t->nbytes - SAMPLE_BYTES, SAMPLE_BYTES);
    }
    lnx_sha256_final(&s, out);
    return LNX_OK;
}

typedef struct entry_key {
    char text[512];  /* canonical key, stored in the entry's metadata */
    char path[4096]; /* where the entry lives */
    int32_t kind;    /* the tensor kind it holds */
} entry_key;

static lnx_status make_key(entry_key *ek, const llavanext_embedding_cache *c, const llavanext_model *m,
                           const llavanext_embedding_key *key, const char *fn)
{
    API_CHECK(c && m && key, "%s: NULL argument", fn);
    llavanext_embedding_key k;
    llavanext_embedding_key_init(&k, sizeof k);
    LNX_TRY(lnx_params_copy(&k, sizeof k, key, "llavanext_embedding_key"));
    static const char *names[] = { "uniform", "fps", "image" };
    API_CHECK(k.sampling >= 0 && k.sampling <= 2, "%s: sampling %d is unknown", fn, (int)k.sampling);
    if (k.sampling == LLAVANEXT_CACHE_UNIFORM)
        API_CHECK(k.frames >= 1 && k.fps == 0, "%s: a uniform key needs frames >= 1 and fps 0", fn);
    if (k.sampling == LLAVANEXT_CACHE_FPS)
        API_CHECK(k.frames >= 0 && isfinite(k.fps) && k.fps > 0, "%s: an fps key needs fps > 0 and frames >= 0", fn);
    if (k.sampling == LLAVANEXT_CACHE_IMAGE)
        API_CHECK(k.frames == 0 && k.fps == 0, "%s: an image key has frames and fps 0", fn);
    API_CHECK(k.pool_stride >= 0 && k.pool_mode >= -1 && k.pool_mode <= 1, "%s: pool_stride %d / pool_mode %d invalid",
              fn, (int)k.pool_stride, (int)k.pool_mode);
    int32_t stride = 0, mode = 0;
    if (k.sampling != LLAVANEXT_CACHE_IMAGE) {
        stride = k.pool_stride ? k.pool_stride : m->cfg.pool_stride;
        mode = k.pool_mode >= 0 ? k.pool_mode : m->cfg.pool_mode;
    }
    uint8_t fp[32], name[32];
    LNX_TRY(model_fingerprint(m, fp));
    char fph[65], mh[65], nh[65];
    lnx_hex(fp, 32, fph);
    lnx_hex(k.media_sha256, 32, mh);
    snprintf(ek->text, sizeof ek->text,
             "%s model=%s media=%s sampling=%s frames=%d fps=%.17g stride=%d mode=%d rotation=%s", CACHE_FORMAT, fph, mh,
             names[k.sampling], (int)k.frames, k.fps, (int)stride, (int)mode, k.raw_orientation ? "raw" : "applied");
    lnx_sha256_buffer(ek->text, strlen(ek->text), name);
    lnx_hex(name, 32, nh);
    int pn = snprintf(ek->path, sizeof ek->path, "%s/%s%s", c->dir, nh, ENTRY_SUFFIX);
    if (pn < 0 || (size_t)pn >= sizeof ek->path)
        return lnx_error(LNX_E_INVALID, "%s: cache directory path too long", fn);
    ek->kind = k.sampling == LLAVANEXT_CACHE_IMAGE ? LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS : LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS;
    return LNX_OK;
}

/* ---- reading ---- */

static void count(llavanext_embedding_cache *c, int64_t *counter, int64_t n)
{
    pthread_mutex_lock(&c->mu);
    *counter += n;
    pthread_mutex_unlock(&c->mu);
}

static int read_all(int fd, uint8_t *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        done += (size_t)r;
    }
    return 1;
}

static const char *meta_str(json_t *meta, const char *key)
{
    const char *s = json_string_value(json_object_get(meta, key));
    return s ? s : "";
}

/* Checks a whole entry image against the key and the model; on success *out holds the tensor. */
static int parse_entry(llavanext_tensor **out, const uint8_t *buf, size_t size, const entry_key *ek,
                       const llavanext_model *m)
{
    if (size < 8)
        return 0;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > size - 8)
        return 0;
    json_t *h = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, NULL);
    if (!h)
        return 0;
    int ok = 0;
    json_t *meta = json_object_get(h, "__metadata__");
    json_t *e = json_object_get(h, "embeddings");
    json_t *shape = json_object_get(e, "shape"), *offs = json_object_get(e, "data_offsets");
    const uint8_t *data = buf + 8 + hlen;
    size_t nbytes = size - 8 - (size_t)hlen;
    char *end = NULL;
    long kind = strtol(meta_str(meta, "kind"), &end, 10);
    long ih = strtol(meta_str(meta, "image_height"), NULL, 10), iw = strtol(meta_str(meta, "image_width"), NULL, 10);
    int want_ndim = ek->kind == LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS ? 2 : 3;
    if (json_object_size(h) != 2 || strcmp(meta_str(meta, "format"), CACHE_FORMAT) != 0 ||
        strcmp(meta_str(meta, "key"), ek->text) != 0 || kind != ek->kind || !end || *end ||
        strcmp(json_string_value(json_object_get(e, "dtype")) ? json_string_value(json_object_get(e, "dtype")) : "",
               "F32") != 0 ||
        !json_is_array(shape) || (int)json_array_size(shape) != want_ndim || json_array_size(offs) != 2 ||
        json_integer_value(json_array_get(offs, 0)) != 0 ||
        json_integer_value(json_array_get(offs, 1)) != (json_int_t)nbytes || ih < 0 || iw < 0 || ih > INT32_MAX ||
        iw > INT32_MAX)
        goto done;
    int64_t dims[3];
    size_t numel = 1;
    for (int i = 0; i < want_ndim; i++) {
        json_t *d = json_array_get(shape, (size_t)i);
        dims[i] = json_is_integer(d) ? json_integer_value(d) : -1;
        if (dims[i] < 1 || !lnx_mul_size(numel, (size_t)dims[i], &numel))
            goto done;
    }
    if (dims[want_ndim - 1] != m->cfg.text.hidden || numel > SIZE_MAX / sizeof(float) || numel * sizeof(float) != nbytes)
        goto done;
    uint8_t digest[32];
    char hex[65];
    lnx_sha256_buffer(data, nbytes, digest);
    lnx_hex(digest, 32, hex);
    if (strcmp(meta_str(meta, "sha256"), hex) != 0)
        goto done;
    llavanext_tensor *t = NULL;
    if (lnx_tensor_new(&t, ek->kind, want_ndim, dims) != LNX_OK)
        goto done;
    memcpy(t->data, data, nbytes);
    t->image_h = (int32_t)ih;
    t->image_w = (int32_t)iw;
    *out = t;
    ok = 1;
done:
    json_decref(h);
    return ok;
}

static llavanext_status api_embedding_cache_get(llavanext_tensor **out, llavanext_embedding_cache *c,
                                                const llavanext_model *m, const llavanext_embedding_key *key)
{
    API_CHECK(out, "llavanext_embedding_cache_get: out is NULL");
    *out = NULL;
    entry_key ek;
    LNX_TRY(make_key(&ek, c, m, key, "llavanext_embedding_cache_get"));
    int fd = open(ek.path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        count(c, &c->misses, 1);
        if (errno == ENOENT)
            return LNX_OK;
        return lnx_error(LNX_E_IO, "%s: %s", ek.path, strerror(errno));
    }
    struct stat sb;
    uint8_t *buf = NULL;
    int ok = 0;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= 8 && sb.st_size <= c->max_bytes &&
        (buf = malloc((size_t)sb.st_size)) && read_all(fd, buf, (size_t)sb.st_size))
        ok = parse_entry(out, buf, (size_t)sb.st_size, &ek, m);
    if (ok)
        futimens(fd, NULL); /* most recently used */
    close(fd);
    free(buf);
    if (ok) {
        count(c, &c->hits, 1);
        return LNX_OK;
    }
    /* damaged (or written by another format): never trusted, removed so the next put replaces it */
    unlink(ek.path);
    pthread_mutex_lock(&c->mu);
    c->corrupt++;
    c->misses++;
    pthread_mutex_unlock(&c->mu);
    return LNX_OK;
}

/* ---- writing and eviction ---- */

typedef struct entry_file {
    char name[80];
    int64_t bytes;
    struct timespec used;
} entry_file;

static int is_entry_name(const char *n)
{
    size_t len = strlen(n);
    if (len != 64 + strlen(ENTRY_SUFFIX) || strcmp(n + 64, ENTRY_SUFFIX) != 0)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'a' && n[i] <= 'f')))
            return 0;
    return 1;
}

static int older(const entry_file *a, const entry_file *b)
{
    return a->used.tv_sec != b->used.tv_sec ? a->used.tv_sec < b->used.tv_sec : a->used.tv_nsec < b->used.tv_nsec;
}

static int cmp_used(const void *x, const void *y)
{
    const entry_file *a = x, *b = y;
    return older(a, b) ? -1 : older(b, a) ? 1 : strcmp(a->name, b->name);
}

/* Lists the entries (and removes temporary files of dead writers). *out is malloc'ed. */
static lnx_status scan(const llavanext_embedding_cache *c, entry_file **out, size_t *out_n, int64_t *out_bytes)
{
    *out = NULL;
    *out_n = 0;
    *out_bytes = 0;
    DIR *d = opendir(c->dir);
    if (!d)
        return lnx_error(LNX_E_IO, "%s: %s", c->dir, strerror(errno));
    entry_file *v = NULL;
    size_t n = 0, cap = 0;
    time_t now = time(NULL);
    struct dirent *de;
    lnx_status st = LNX_OK;
    while ((de = readdir(d))) {
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (strncmp(de->d_name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0) {
            if (now - sb.st_mtim.tv_sec > STALE_TEMP_SECONDS)
                unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (!is_entry_name(de->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            entry_file *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                st = lnx_error(LNX_E_NOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        snprintf(v[n].name, sizeof v[n].name, "%s", de->d_name);
        v[n].bytes = (int64_t)sb.st_size;
        v[n].used = sb.st_mtim;
        *out_bytes += v[n].bytes;
        n++;
    }
    closedir(d);
    if (st != LNX_OK) {
        free(v);
        *out_bytes = 0;
        return st;
    }
    *out = v;
    *out_n = n;
    return LNX_OK;
}

static lnx_status evict(llavanext_embedding_cache *c)
{
    pthread_mutex_lock(&c->mu);
    entry_file *v;
    size_t n;
    int64_t total;
    lnx_status st = scan(c, &v, &n, &total);
    if (st == LNX_OK && total > c->max_bytes) {
        qsort(v, n, sizeof *v, cmp_used);
        for (size_t i = 0; i < n && total > c->max_bytes; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", c->dir, v[i].name);
            if (unlink(path) == 0)
                c->evictions++;
            total -= v[i].bytes;
        }
    }
    pthread_mutex_unlock(&c->mu);
    free(v);
    return st;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 0;
        b += w;
        n -= (size_t)w;
    }
    return 1;
}

static llavanext_status api_embedding_cache_put(llavanext_embedding_cache *c, const llavanext_model *m,
                                                const llavanext_embedding_key *key, const llavanext_tensor *t)
{
    entry_key ek;
    API_CHECK(t, "llavanext_embedding_cache_put: embeddings is NULL");
    LNX_TRY(make_key(&ek, c, m, key, "llavanext_embedding_cache_put"));
    int want_ndim = ek.kind == LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS ? 2 : 3;
    API_CHECK(t->kind == ek.kind && t->ndim == want_ndim && t->dims[want_ndim - 1] == m->cfg.text.hidden && t->numel > 0,
              "llavanext_embedding_cache_put: the key wants %s [%s, %d] but the tensor is of kind %d with %d dimensions",
              want_ndim == 2 ? "IMAGE_EMBEDDINGS" : "VIDEO_EMBEDDINGS", want_ndim == 2 ? "tokens" : "frames, tokens",
              (int)m->cfg.text.hidden, (int)t->kind, (int)t->ndim);
    size_t nbytes = (size_t)t->numel * sizeof(float);
    uint8_t digest[32];
    char hex[65], num[32];
    lnx_sha256_buffer(t->data, nbytes, digest);
    lnx_hex(digest, 32, hex);
    json_t *shape = json_array();
    for (int32_t i = 0; i < t->ndim; i++)
        json_array_append_new(shape, json_integer(t->dims[i]));
    json_t *meta = json_object();
    json_object_set_new(meta, "format", json_string(CACHE_FORMAT));
    json_object_set_new(meta, "key", json_string(ek.text));
    snprintf(num, sizeof num, "%d", (int)t->kind);
    json_object_set_new(meta, "kind", json_string(num));
    snprintf(num, sizeof num, "%d", (int)t->image_h);
    json_object_set_new(meta, "image_height", json_string(num));
    snprintf(num, sizeof num, "%d", (int)t->image_w);
    json_object_set_new(meta, "image_width", json_string(num));
    json_object_set_new(meta, "sha256", json_string(hex));
    json_t *h = json_pack("{s:o, s:{s:s, s:o, s:[i, I]}}", "__metadata__", meta, "embeddings", "dtype", "F32", "shape",
                          shape, "data_offsets", 0, (json_int_t)nbytes);
    char *hs = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(h);
    if (!hs)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    size_t hlen = strlen(hs), padded = (hlen + 7) & ~(size_t)7;
    if ((int64_t)(8 + padded + nbytes) > c->max_bytes) {
        free(hs);
        return lnx_error(LNX_E_LIMIT, "llavanext_embedding_cache_put: the entry (%zu bytes) is larger than the cache's cap (%lld)",
                         8 + padded + nbytes, (long long)c->max_bytes);
    }
    uint8_t prefix[8];
    for (int i = 0; i < 8; i++)
        prefix[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/%s%ld-%llu", c->dir, TEMP_PREFIX, (long)getpid(),
             (unsigned long long)atomic_fetch_add(&temp_seq, 1));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(hs);
        return lnx_error(LNX_E_IO, "%s: %s", tmp, strerror(errno));
    }
    static const char spaces[8] = "        ";
    int ok = write_all(fd, prefix, 8) && write_all(fd, hs, hlen) && write_all(fd, spaces, padded - hlen) &&
             write_all(fd, t->data, nbytes);
    int err = errno;
    free(hs);
    if (close(fd) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (!ok || rename(tmp, ek.path) != 0) {
        if (ok)
            err = errno;
        unlink(tmp);
        return lnx_error(LNX_E_IO, "%s: cannot write the cache entry: %s", ek.path, strerror(err));
    }
    count(c, &c->writes, 1);
    return evict(c);
}

static llavanext_status api_embedding_cache_stats_get(llavanext_embedding_cache_stats *out,
                                                      llavanext_embedding_cache *c)
{
    API_CHECK(out && c, "llavanext_embedding_cache_stats_get: NULL argument");
    API_CHECK(out->struct_size >= sizeof(uint32_t), "llavanext_embedding_cache_stats_get: set out->struct_size first");
    entry_file *v;
    size_t n;
    llavanext_embedding_cache_stats r;
    memset(&r, 0, sizeof r);
    LNX_TRY(scan(c, &v, &n, &r.bytes));
    free(v);
    r.entries = (int64_t)n;
    pthread_mutex_lock(&c->mu);
    r.hits = c->hits;
    r.misses = c->misses;
    r.corrupt = c->corrupt;
    r.writes = c->writes;
    r.evictions = c->evictions;
    pthread_mutex_unlock(&c->mu);
    r.struct_size = out->struct_size < sizeof r ? out->struct_size : (uint32_t)sizeof r;
    memcpy(out, &r, r.struct_size);
    return LNX_OK;
}

LLAVANEXT_API llavanext_status llavanext_embedding_cache_get(llavanext_tensor **out, llavanext_embedding_cache *c,
                                                             const llavanext_model *m,
                                                             const llavanext_embedding_key *key)
{
    return lnx_err_record(c ? &c->err : NULL, api_embedding_cache_get(out, c, m, key));
}

LLAVANEXT_API llavanext_status llavanext_embedding_cache_put(llavanext_embedding_cache *c, const llavanext_model *m,
                                                             const llavanext_embedding_key *key,
                                                             const llavanext_tensor *t)
{
    return lnx_err_record(c ? &c->err : NULL, api_embedding_cache_put(c, m, key, t));
}

LLAVANEXT_API llavanext_status llavanext_embedding_cache_stats_get(llavanext_embedding_cache_stats *out,
                                                                   llavanext_embedding_cache *c)
{
    return lnx_err_record(c ? &c->err : NULL, api_embedding_cache_stats_get(out, c));
}

LLAVANEXT_API size_t llavanext_embedding_cache_last_error(const llavanext_embedding_cache *c, char *buf, size_t size)
{
    return lnx_err_copy(c ? &c->err : NULL, buf, size);
}
