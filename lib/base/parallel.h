/* A small persistent thread pool and a parallel-for over it. Each handle that computes owns one
 * pool sized by its own thread-count parameter; nothing here is process-wide. */
#ifndef LNX_BASE_PARALLEL_H
#define LNX_BASE_PARALLEL_H

#include <stdint.h>

#include "status.h"

typedef struct lnx_pool lnx_pool;

/* Body of a parallel loop: handles [begin, end) on worker `worker` (0 .. size-1). */
typedef void (*lnx_range_fn)(void *ctx, int64_t begin, int64_t end, int worker);

/* nthreads <= 0 means the number of online CPUs. The calling thread counts as worker 0.
 * A pool may be shared by several handles (lnx_pool_retain adds a reference, lnx_pool_free drops
 * one and frees on the last) and used from several threads at once: their loops take turns (one
 * loop at a time, the others' callers wait asleep), so the pool never keeps more than its size of
 * cores busy. */
lnx_status lnx_pool_create(lnx_pool **out, int32_t nthreads);
void lnx_pool_retain(lnx_pool *pool);
void lnx_pool_free(lnx_pool *pool);
/* A buffer of at least `bytes` (64-byte aligned, contents undefined) that the pool keeps for the
 * calling thread's next call and frees with the pool, so that a product run once per layer and
 * chunk does not map and fault in a fresh buffer each time. One per calling thread (up to 8
 * threads per pool), for the float32 GEMM's widened weight blocks: call it outside parallel loops,
 * and do not hold it across another call on the same thread that may ask for it. NULL for a NULL
 * pool, inside a parallel loop, for a ninth thread, or when out of memory. */
void *lnx_pool_scratch(lnx_pool *pool, size_t bytes);

/* Number of workers (1 for a NULL pool). */
int lnx_pool_size(const lnx_pool *pool);

/* Splits [0, n) into one contiguous chunk per worker and waits for all of them. A NULL pool, a
 * single worker, or a call made from inside a running loop of any pool runs serially. */
void lnx_parallel_for(lnx_pool *pool, int64_t n, lnx_range_fn fn, void *ctx);

/* Non-zero on a pool's own worker thread (never on a thread that called lnx_parallel_for). */
int lnx_pool_on_worker(void);

/* Number of CPUs the process may run on (at least 1). */
int lnx_cpu_count(void);

#endif
