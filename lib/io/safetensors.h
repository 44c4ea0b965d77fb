/* safetensors files: reading (memory-mapped or read into memory, single file or a sharded
 * index) with every entry validated, and writing (for tensor dumps). */
#ifndef LNX_IO_SAFETENSORS_H
#define LNX_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../base/status.h"

typedef enum lnx_st_dtype {
    LNX_ST_F32,
    LNX_ST_F16,
    LNX_ST_BF16,
    LNX_ST_F64,
    LNX_ST_I64,
    LNX_ST_I32,
    LNX_ST_I16,
    LNX_ST_I8,
    LNX_ST_U8,
    LNX_ST_BOOL,
} lnx_st_dtype;

#define LNX_ST_MAX_DIMS 8

typedef struct lnx_st_tensor {
    const char *name;
    lnx_st_dtype dtype;
    int32_t ndim;
    int64_t shape[LNX_ST_MAX_DIMS];
    int64_t numel;
    const void *data;  /* inside the mapping or buffer; not necessarily aligned */
    size_t nbytes;
    uint64_t offset;   /* byte offset of the data in its file */
    const char *file;  /* path of the file holding it */
} lnx_st_tensor;

typedef struct lnx_st lnx_st;

enum { LNX_ST_MMAP = 0, LNX_ST_READ = 1 };

/* Bytes per element and the safetensors name ("F32", "BF16", ...). */
size_t lnx_st_dtype_size(lnx_st_dtype dt);
const char *lnx_st_dtype_name(lnx_st_dtype dt);

/* Opens one .safetensors file. mode: LNX_ST_MMAP (zero-copy) or LNX_ST_READ (into memory). */
lnx_status lnx_st_open(lnx_st **out, const char *path, int mode);
/* Opens the shards named by a model.safetensors.index.json (paths relative to its folder);
 * every tensor must be in the shard the index names. */
lnx_status lnx_st_open_index(lnx_st **out, const char *index_path, int mode);
/* Parses a safetensors image held by the caller (borrowed; must outlive the result). */
lnx_status lnx_st_open_buffer(lnx_st **out, const void *data, size_t len, const char *origin);
void lnx_st_close(lnx_st *st);

size_t lnx_st_count(const lnx_st *st);
const lnx_st_tensor *lnx_st_at(const lnx_st *st, size_t i);
/* NULL when absent. */
const lnx_st_tensor *lnx_st_find(const lnx_st *st, const char *name);
/* Total bytes of tensor data (all shards). */
uint64_t lnx_st_data_bytes(const lnx_st *st);

/* Writer: collects tensors (copied) and writes one file. */
typedef struct lnx_st_writer lnx_st_writer;
lnx_status lnx_st_writer_create(lnx_st_writer **out);
lnx_status lnx_st_writer_add(lnx_st_writer *w, const char *name, lnx_st_dtype dtype, int32_t ndim,
                             const int64_t *shape, const void *data);
lnx_status lnx_st_writer_save(const lnx_st_writer *w, const char *path);
void lnx_st_writer_free(lnx_st_writer *w);

#endif
