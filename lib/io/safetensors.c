#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/alloc.h"
#include "../base/file.h"
#include "json.h"

/* A header larger than this is refused before it is read (real ones are well under 1 MiB). */
#define MAX_HEADER_BYTES (100u << 20)

typedef struct st_file {
    char *path;
    void *base;      /* mapping or buffer of the whole file */
    size_t size;
    int mapped;      /* 1: munmap, 0 and owned: lnx_afree, borrowed: nothing */
    int owned;
} st_file;

struct lnx_st {
    st_file *files;
    size_t nfiles;
    lnx_st_tensor *tensors;
    size_t count;
    char **names;    /* owned copies of the names */
    const lnx_st_tensor **by_name; /* the tensors sorted by name, for lookups in O(log n) */
    void **copies;   /* aligned copies of tensors whose data the file left misaligned */
    size_t ncopies;
    uint64_t data_bytes;
};

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [LNX_ST_F32] = { "F32", 4 }, [LNX_ST_F16] = { "F16", 2 }, [LNX_ST_BF16] = { "BF16", 2 },
    [LNX_ST_F64] = { "F64", 8 }, [LNX_ST_I64] = { "I64", 8 }, [LNX_ST_I32] = { "I32", 4 },
    [LNX_ST_I16] = { "I16", 2 }, [LNX_ST_I8] = { "I8", 1 },   [LNX_ST_U8] = { "U8", 1 },
    [LNX_ST_BOOL] = { "BOOL", 1 },
};

size_t lnx_st_dtype_size(lnx_st_dtype dt)
{
    return dtypes[dt].size;
}

const char *lnx_st_dtype_name(lnx_st_dtype dt)
{
    return dtypes[dt].name;
}

static int dtype_from_name(const char *s, lnx_st_dtype *out)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (lnx_st_dtype)i;
            return 1;
        }
    }
    return 0;
}

static void file_release(st_file *f)
{
    if (f->base && f->owned) {
        if (f->mapped)
            munmap(f->base, f->size);
        else
            lnx_afree(f->base);
    }
    free(f->path);
}

void lnx_st_close(lnx_st *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nfiles; i++)
        file_release(&st->files[i]);
    for (size_t i = 0; i < st->count; i++)
        free(st->names[i]);
    for (size_t i = 0; i < st->ncopies; i++)
        lnx_afree(st->copies[i]);
    free(st->copies);
    free(st->by_name);
    free(st->names);
    free(st->files);
    free(st->tensors);
    free(st);
}

static lnx_status file_load(st_file *f, const char *path, int mode)
{
    memset(f, 0, sizeof *f);
    f->path = lnx_strdup(path);
    if (!f->path)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    int fd;
    off_t fsize;
    LNX_TRY(lnx_open_regular(path, &fd, &fsize));
    if (fsize < 8) {
        close(fd);
        return lnx_error(LNX_E_FORMAT, "%s: file is %lld bytes, too short for a safetensors header", path,
                         (long long)fsize);
    }
    f->size = (size_t)fsize;
    f->owned = 1;
    if (mode == LNX_ST_MMAP) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
            return lnx_error(LNX_E_IO, "%s: cannot map %zu bytes: %s", path, f->size, strerror(errno));
        f->base = p;
        f->mapped = 1;
        return LNX_OK;
    }
    f->base = lnx_amalloc(f->size);
    if (!f->base) {
        close(fd);
        return lnx_error(LNX_E_NOMEM, "%s: cannot allocate %zu bytes to read it", path, f->size);
    }
    size_t got = 0;
    while (got < f->size) {
        ssize_t r = read(fd, (char *)f->base + got, f->size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            close(fd);
            return lnx_error(LNX_E_IO, "%s: read failed at byte %zu of %zu", path, got, f->size);
        }
        got += (size_t)r;
    }
    close(fd);
    return LNX_OK;
}

typedef struct span {
    uint64_t begin, end;
    size_t index;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

static lnx_status grow(lnx_st *st, size_t extra)
{
    size_t n = st->count + extra;
    lnx_st_tensor *t = realloc(st->tensors, (n ? n : 1) * sizeof *t);
    if (!t)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    st->tensors = t;
    char **names = realloc(st->names, (n ? n : 1) * sizeof *names);
    if (!names)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    st->names = names;
    return LNX_OK;
}

/* Parses and validates the header of files[fi], appending its tensors. */
static lnx_status parse_file(lnx_st *st, size_t fi)
{
    const st_file *f = &st->files[fi];
    const unsigned char *b = f->base;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | b[i];
    if (hlen > f->size - 8)
        return lnx_error(LNX_E_FORMAT, "%s: header length %llu is larger than the file (%zu bytes)", f->path,
                         (unsigned long long)hlen, f->size);
    if (hlen > MAX_HEADER_BYTES)
        return lnx_error(LNX_E_FORMAT, "%s: header length %llu exceeds the %u byte limit", f->path,
                         (unsigned long long)hlen, MAX_HEADER_BYTES);
    json_t *root;
    lnx_status st_ = lnx_json_load_buffer(&root, (const char *)b + 8, (size_t)hlen, f->path);
    if (st_ != LNX_OK)
        return st_;
    if (!json_is_object(root)) {
        json_decref(root);
        return lnx_error(LNX_E_FORMAT, "%s: header is not a JSON object", f->path);
    }
    const uint64_t data_start = 8 + hlen;
    const uint64_t data_size = f->size - data_start;
    size_t n = json_object_size(root);
    lnx_status rc = grow(st, n);
    span *spans = calloc(n ? n : 1, sizeof *spans);
    if (!spans && rc == LNX_OK)
        rc = lnx_error(LNX_E_NOMEM, "out of memory");
    size_t nspans = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (rc != LNX_OK)
            break;
        if (strcmp(key, "__metadata__") == 0)
            continue;
        const char *where = f->path;
        if (!json_is_object(val)) {
            rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s': entry is not an object", where, key);
            break;
        }
        const char *dts = json_string_value(json_object_get(val, "dtype"));
        lnx_st_tensor t;
        memset(&t, 0, sizeof t);
        if (!dts || !dtype_from_name(dts, &t.dtype)) {
            rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s': unknown dtype %s", where, key, dts ? dts : "(missing)");
            break;
        }
        const json_t *shape = json_object_get(val, "shape");
        if (!json_is_array(shape) || json_array_size(shape) > LNX_ST_MAX_DIMS) {
            rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s': shape must be an array of at most %d sizes", where, key,
                           LNX_ST_MAX_DIMS);
            break;
        }
        t.ndim = (int32_t)json_array_size(shape);
        size_t numel = 1;
        for (int32_t d = 0; d < t.ndim && rc == LNX_OK; d++) {
            const json_t *dim = json_array_get(shape, (size_t)d);
            json_int_t v = json_is_integer(dim) ? json_integer_value(dim) : -1;
            if (v < 0 || !lnx_mul_size(numel, (size_t)v, &numel))
                rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s': dimension %d is invalid", where, key, (int)d);
            t.shape[d] = v;
        }
        if (rc != LNX_OK)
            break;
        size_t nbytes;
        if (!lnx_mul_size(numel, dtypes[t.dtype].size, &nbytes)) {
            rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s': size overflows", where, key);
            break;
        }
        const json_t *offs = json_object_get(val, "data_offsets");
        const json_t *o0 = json_array_get(offs, 0), *o1 = json_array_get(offs, 1);
        if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(o0) || !json_is_integer(o1) ||
            json_integer_value(o0) < 0 || json_integer_value(o1) < json_integer_value(o0)) {
            rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with begin <= end",
                           where, key);
            break;
        }
        uint64_t begin = (uint64_t)json_integer_value(o0), end = (uint64_t)json_integer_value(o1);
        if (end > data_size) {
            rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s': data [%llu, %llu) runs past the end of the data (%llu bytes)",
                           where, key, (unsigned long long)begin, (unsigned long long)end,
                           (unsigned long long)data_size);
            break;
        }
        if (end - begin != nbytes) {
            rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s': %llu data bytes but dtype %s and shape need %zu", where,
                           key, (unsigned long long)(end - begin), dts, nbytes);
            break;
        }
        char *name = lnx_strdup(key);
        if (!name) {
            rc = lnx_error(LNX_E_NOMEM, "out of memory");
            break;
        }
        t.name = name;
        t.numel = (int64_t)numel;
        t.nbytes = nbytes;
        t.offset = data_start + begin;
        t.data = (const char *)f->base + data_start + begin;
        t.file = f->path;
        spans[nspans].begin = begin;
        spans[nspans].end = end;
        spans[nspans].index = st->count;
        nspans++;
        st->names[st->count] = name;
        st->tensors[st->count++] = t;
        st->data_bytes += nbytes;
    }
    if (rc == LNX_OK && nspans > 1) {
        qsort(spans, nspans, sizeof *spans, cmp_span);
        /* compare each span with the one reaching furthest so far, not just its predecessor: an
         * empty tensor inside another one must not hide a later overlap */
        size_t far = 0;
        for (size_t i = 1; i < nspans; i++) {
            if (spans[i].begin < spans[far].end && spans[i].end > spans[i].begin) {
                rc = lnx_error(LNX_E_FORMAT, "%s: tensors '%s' and '%s' overlap (bytes %llu..%llu and %llu..%llu)",
                               f->path, st->tensors[spans[far].index].name, st->tensors[spans[i].index].name,
                               (unsigned long long)spans[far].begin, (unsigned long long)spans[far].end,
                               (unsigned long long)spans[i].begin, (unsigned long long)spans[i].end);
                break;
            }
            if (spans[i].end > spans[far].end)
                far = i;
        }
    }
    free(spans);
    json_decref(root);
    return rc;
}

static int cmp_by_name(const void *a, const void *b)
{
    const lnx_st_tensor *x = *(const lnx_st_tensor *const *)a, *y = *(const lnx_st_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x > y) - (x < y);
}

/* Sorts the name index (O(n log n)) and, since names within one header are unique (duplicate JSON
 * keys are rejected), finds a name that two shards both hold among neighbours. */
static lnx_status index_names(lnx_st *st)
{
    free(st->by_name);
    st->by_name = malloc((st->count ? st->count : 1) * sizeof *st->by_name);
    if (!st->by_name)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    for (size_t i = 0; i < st->count; i++)
        st->by_name[i] = &st->tensors[i];
    qsort(st->by_name, st->count, sizeof *st->by_name, cmp_by_name);
    for (size_t k = 1; k < st->count; k++) {
        const lnx_st_tensor *a = st->by_name[k - 1], *b = st->by_name[k];
        if (strcmp(a->name, b->name) == 0)
            return lnx_error(LNX_E_FORMAT, "tensor '%s' appears in both %s and %s", a->name, a->file, b->file);
    }
    return LNX_OK;
}

/* The format promises no alignment: a tensor whose data does not start at a multiple of its
 * element size is copied to aligned memory once, so that no kernel ever loads a misaligned
 * element (the copy costs memory only for such tensors). */
static lnx_status align_tensors(lnx_st *st)
{
    for (size_t i = 0; i < st->count; i++) {
        lnx_st_tensor *t = &st->tensors[i];
        size_t es = dtypes[t->dtype].size;
        if (t->nbytes == 0 || (uintptr_t)t->data % es == 0)
            continue;
        void **c = realloc(st->copies, (st->ncopies + 1) * sizeof *c);
        if (!c)
            return lnx_error(LNX_E_NOMEM, "out of memory");
        st->copies = c;
        void *p = lnx_amalloc(t->nbytes);
        if (!p)
            return lnx_error(LNX_E_NOMEM, "%s: cannot allocate %zu bytes for an aligned copy of tensor '%s'", t->file,
                             t->nbytes, t->name);
        memcpy(p, t->data, t->nbytes);
        st->copies[st->ncopies++] = p;
        t->data = p;
    }
    return LNX_OK;
}

/* Work done once every file's header is parsed. */
static lnx_status finish_open(lnx_st *st)
{
    LNX_TRY(index_names(st));
    return align_tensors(st);
}

lnx_status lnx_st_open(lnx_st **out, const char *path, int mode)
{
    *out = NULL;
    lnx_st *st = calloc(1, sizeof *st);
    if (!st || !(st->files = calloc(1, sizeof *st->files))) {
        free(st);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    st->nfiles = 1;
    lnx_status rc = file_load(&st->files[0], path, mode);
    if (rc == LNX_OK)
        rc = parse_file(st, 0);
    if (rc == LNX_OK)
        rc = finish_open(st);
    if (rc != LNX_OK) {
        lnx_st_close(st);
        return rc;
    }
    *out = st;
    return LNX_OK;
}

lnx_status lnx_st_open_buffer(lnx_st **out, const void *data, size_t len, const char *origin)
{
    *out = NULL;
    if (len < 8)
        return lnx_error(LNX_E_FORMAT, "%s: %zu bytes, too short for a safetensors header", origin, len);
    lnx_st *st = calloc(1, sizeof *st);
    if (!st || !(st->files = calloc(1, sizeof *st->files))) {
        free(st);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    st->nfiles = 1;
    st->files[0].path = lnx_strdup(origin);
    st->files[0].base = (void *)data;
    st->files[0].size = len;
    lnx_status rc = st->files[0].path ? parse_file(st, 0) : lnx_error(LNX_E_NOMEM, "out of memory");
    if (rc == LNX_OK)
        rc = finish_open(st);
    if (rc != LNX_OK) {
        lnx_st_close(st);
        return rc;
    }
    *out = st;
    return LNX_OK;
}

lnx_status lnx_st_open_index(lnx_st **out, const char *index_path, int mode)
{
    *out = NULL;
    json_t *root;
    lnx_status rc = lnx_json_load_file(&root, index_path);
    if (rc != LNX_OK)
        return rc;
    const json_t *map = json_object_get(root, "weight_map");
    if (!json_is_object(map)) {
        json_decref(root);
        return lnx_error(LNX_E_FORMAT, "%s: no \"weight_map\" object", index_path);
    }
    char dir[PATH_MAX];
    if (strlen(index_path) >= sizeof dir) {
        json_decref(root);
        return lnx_error(LNX_E_INVALID, "%s: path too long", index_path);
    }
    snprintf(dir, sizeof dir, "%s", index_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");

    lnx_st *st = calloc(1, sizeof *st);
    if (!st) {
        json_decref(root);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    /* distinct shard names, in first-seen order (a hash table would make this linear; real
     * checkpoints have a few dozen shards, so a scan of the distinct names is enough) */
    const char *key;
    json_t *val;
    size_t cap = 0;
    const char **shards = NULL;
    json_object_foreach((json_t *)map, key, val) {
        if (!json_is_string(val)) {
            rc = lnx_error(LNX_E_FORMAT, "%s: weight_map[\"%s\"] is not a file name", index_path, key);
            break;
        }
        const char *s = json_string_value(val);
        if (strchr(s, '/') || strcmp(s, "..") == 0) {
            rc = lnx_error(LNX_E_FORMAT, "%s: shard name \"%s\" must be a plain file name", index_path, s);
            break;
        }
        size_t i;
        for (i = 0; i < st->nfiles; i++)
            if (strcmp(shards[i], s) == 0)
                break;
        if (i == st->nfiles) {
            if (st->nfiles == cap) {
                cap = cap ? cap * 2 : 4;
                const char **ns = realloc(shards, cap * sizeof *ns);
                if (!ns) {
                    rc = lnx_error(LNX_E_NOMEM, "out of memory");
                    break;
                }
                shards = ns;
            }
            shards[st->nfiles++] = s;
        }
    }
    if (rc == LNX_OK && st->nfiles == 0)
        rc = lnx_error(LNX_E_FORMAT, "%s: weight_map is empty", index_path);
    if (rc == LNX_OK && !(st->files = calloc(st->nfiles, sizeof *st->files)))
        rc = lnx_error(LNX_E_NOMEM, "out of memory");
    size_t loaded = 0;
    for (size_t i = 0; rc == LNX_OK && i < st->nfiles; i++) {
        char path[PATH_MAX];
        rc = lnx_path_join(path, sizeof path, dir, shards[i]);
        if (rc != LNX_OK) {
            lnx_error_prefix("%s: shard \"%.40s...\"", index_path, shards[i]);
            break;
        }
        rc = file_load(&st->files[i], path, mode);
        loaded = i + 1;
        if (rc == LNX_OK)
            rc = parse_file(st, i);
    }
    if (rc != LNX_OK)
        st->nfiles = loaded;
    if (rc == LNX_OK)
        rc = finish_open(st);
    /* every tensor named by the index is in the shard it names */
    json_object_foreach((json_t *)map, key, val) {
        if (rc != LNX_OK)
            break;
        const lnx_st_tensor *t = lnx_st_find(st, key);
        if (!t) {
            rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s' is listed in the index but not in %s", index_path, key,
                           json_string_value(val));
            break;
        }
        const char *base = strrchr(t->file, '/');
        base = base ? base + 1 : t->file;
        if (strcmp(base, json_string_value(val)) != 0)
            rc = lnx_error(LNX_E_FORMAT, "%s: tensor '%s' is in %s, the index says %s", index_path, key, base,
                           json_string_value(val));
    }
    free(shards);
    json_decref(root);
    if (rc != LNX_OK) {
        lnx_st_close(st);
        return rc;
    }
    *out = st;
    return LNX_OK;
}

size_t lnx_st_count(const lnx_st *st)
{
    return st->count;
}

const lnx_st_tensor *lnx_st_at(const lnx_st *st, size_t i)
{
    return i < st->count ? &st->tensors[i] : NULL;
}

const lnx_st_tensor *lnx_st_find(const lnx_st *st, const char *name)
{
    size_t lo = 0, hi = st->by_name ? st->count : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const lnx_st_tensor *t = st->by_name[mid];
        int c = strcmp(t->name, name);
        if (c == 0)
            return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

uint64_t lnx_st_data_bytes(const lnx_st *st)
{
    return st->data_bytes;
}

/* ---- writer ---- */

typedef struct wentry {
    char *name;
    lnx_st_dtype dtype;
    int32_t ndim;
    int64_t shape[LNX_ST_MAX_DIMS];
    void *data;
    size_t nbytes;
} wentry;

struct lnx_st_writer {
    wentry *e;
    size_t n, cap;
};

lnx_status lnx_st_writer_create(lnx_st_writer **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? LNX_OK : lnx_error(LNX_E_NOMEM, "out of memory");
}

void lnx_st_writer_free(lnx_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].data);
    }
    free(w->e);
    free(w);
}

lnx_status lnx_st_writer_add(lnx_st_writer *w, const char *name, lnx_st_dtype dtype, int32_t ndim,
                             const int64_t *shape, const void *data)
{
    if (ndim < 0 || ndim > LNX_ST_MAX_DIMS)
        return lnx_error(LNX_E_INVALID, "tensor '%s': %d dimensions", name, (int)ndim);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return lnx_error(LNX_E_INVALID, "tensor '%s' added twice", name);
    size_t nbytes = dtypes[dtype].size;
    for (int32_t d = 0; d < ndim; d++)
        if (shape[d] < 0 || !lnx_mul_size(nbytes, (size_t)shape[d], &nbytes))
            return lnx_error(LNX_E_INVALID, "tensor '%s': bad shape", name);
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        wentry *ne = realloc(w->e, cap * sizeof *ne);
        if (!ne)
            return lnx_error(LNX_E_NOMEM, "out of memory");
        w->e = ne;
        w->cap = cap;
    }
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = lnx_strdup(name);
    e->data = malloc(nbytes ? nbytes : 1);
    if (!e->name || !e->data) {
        free(e->name);
        free(e->data);
        return lnx_error(LNX_E_NOMEM, "out of memory");
    }
    if (nbytes)
        memcpy(e->data, data, nbytes);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int32_t d = 0; d < ndim; d++)
        e->shape[d] = shape[d];
    e->nbytes = nbytes;
    w->n++;
    return LNX_OK;
}

lnx_status lnx_st_writer_save(const lnx_st_writer *w, const char *path)
{
    json_t *hdr = json_object();
    uint64_t off = 0;
    for (size_t i = 0; hdr && i < w->n; i++) {
        const wentry *e = &w->e[i];
        json_t *shape = json_array();
        for (int32_t d = 0; d < e->ndim; d++)
            json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *ent = json_pack("{s:s, s:o, s:[I, I]}", "dtype", dtypes[e->dtype].name, "shape", shape,
                                "data_offsets", (json_int_t)off, (json_int_t)(off + e->nbytes));
        if (!ent || json_object_set_new(hdr, e->name, ent) != 0) {
            json_decref(hdr);
            return lnx_error(LNX_E_NOMEM, "out of memory");
        }
        off += e->nbytes;
    }
    char *text = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
    json_decref(hdr);
    if (!text)
        return lnx_error(LNX_E_NOMEM, "out of memory");
    size_t tlen = strlen(text);
    size_t padded = (tlen + 7) & ~(size_t)7;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(text);
        return lnx_error(LNX_E_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(text, 1, tlen, f) == tlen;
    for (size_t i = tlen; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    for (size_t i = 0; ok && i < w->n; i++)
        ok = w->e[i].nbytes == 0 || fwrite(w->e[i].data, 1, w->e[i].nbytes, f) == w->e[i].nbytes;
    free(text);
    if (fclose(f) != 0 || !ok)
        return lnx_error(LNX_E_IO, "%s: write failed", path);
    return LNX_OK;
}
