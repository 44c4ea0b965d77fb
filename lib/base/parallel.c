#include "parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "alloc.h"

/* Threads that may hold a scratch buffer of one pool at once (a pool shared by several handles
 * used from several host threads); a thread beyond them gets none (the caller then allocates). */
#define POOL_SCRATCH_SLOTS 8

struct lnx_pool {
    int size;
    pid_t pid;     /* the process whose threads these are (a forked child has none of them) */
    pthread_t *threads;
    _Atomic int refs; /* lnx_pool_retain / lnx_pool_free */
    pthread_mutex_t run; /* one loop at a time: held by the caller for the whole loop */
    pthread_mutex_t lock;
    pthread_cond_t start;  /* a new loop (or stop) for workers that went to sleep */
    pthread_cond_t finish; /* the last worker is done, for a caller that went to sleep */
    _Atomic uint64_t generation;
    _Atomic int pending;
    _Atomic int stop;
    int sleepers; /* workers blocked on `start` (under lock) */
    lnx_range_fn fn;
    void *ctx;
    int64_t n;
    pthread_mutex_t scratch_lock;
    struct {
        pthread_t owner;
        int used;
        void *buf;
        size_t bytes;
    } scratch[POOL_SCRATCH_SLOTS]; /* lnx_pool_scratch's buffers, one per calling thread */
};

/* Workers and the caller spin this many pause instructions (about 0.1-0.2 ms) waiting for the
 * next loop or the last worker before blocking on a condition variable: a wake-up through the
 * kernel measured 65 us per loop here, and decode runs about 500 short loops per token. */
#define SPIN_PAUSES 2048

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

typedef struct worker_arg {
    lnx_pool *pool;
    int index;
} worker_arg;

static _Thread_local int inside_loop;
static _Thread_local int on_worker;

int lnx_pool_on_worker(void)
{
    return on_worker;
}

static void run_chunk(lnx_pool *pool, int worker)
{
    int64_t n = pool->n;
    int64_t begin = n * worker / pool->size;
    int64_t end = n * (worker + 1) / pool->size;
    if (begin < end) {
        inside_loop = 1;
        pool->fn(pool->ctx, begin, end, worker);
        inside_loop = 0;
    }
}

static void *worker_main(void *p)
{
    worker_arg *arg = p;
    lnx_pool *pool = arg->pool;
    int index = arg->index;
    free(arg);
    on_worker = 1;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&pool->stop, memory_order_acquire)) {
            if (++spins < SPIN_PAUSES) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool->lock);
            pool->sleepers++;
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->start, &pool->lock);
            pool->sleepers--;
            pthread_mutex_unlock(&pool->lock);
        }
        if (atomic_load_explicit(&pool->stop, memory_order_acquire))
            break;
        seen = g;
        run_chunk(pool, index);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            /* the caller may be blocked (it checks `pending` under the lock before waiting) */
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->finish);
            pthread_mutex_unlock(&pool->lock);
        }
    }
    return NULL;
}

int lnx_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static lnx_status start_workers(lnx_pool *pool, int nthreads);

lnx_status lnx_pool_create(lnx_pool **out, int32_t nthreads)
{
    *out = NULL;
    if (nthreads <= 0)
        nthreads = lnx_cpu_count();
    if (nthreads > 1024)
        return lnx_error(LNX_E_INVALID, "thread count %d is larger than 1024", (int)nthreads);
    lnx_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return lnx_error(LNX_E_NOMEM, "out of memory creating a thread pool");
    pool->size = nthreads;
    pool->pid = getpid();
    atomic_init(&pool->refs, 1);
    pthread_mutex_init(&pool->run, NULL);
    pthread_mutex_init(&pool->scratch_lock, NULL);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->start, NULL);
    pthread_cond_init(&pool->finish, NULL);
    lnx_status st = start_workers(pool, nthreads);
    if (st != LNX_OK) {
        lnx_pool_free(pool);
        return st;
    }
    *out = pool;
    return LNX_OK;
}

/* Starts workers 1..nthreads-1; on failure pool->size is the number that exist (plus the caller). */
static lnx_status start_workers(lnx_pool *pool, int nthreads)
{
    if (nthreads > 1) {
        pool->threads = calloc((size_t)nthreads - 1, sizeof *pool->threads);
        if (!pool->threads) {
            pool->size = 1;
            return lnx_error(LNX_E_NOMEM, "out of memory creating a thread pool");
        }
    }
    for (int i = 1; i < nthreads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (arg) {
            arg->pool = pool;
            arg->index = i;
        }
        if (!arg || pthread_create(&pool->threads[i - 1], NULL, worker_main, arg) != 0) {
            free(arg);
            pool->size = i; /* threads 1..i-1 exist */
            return lnx_error(LNX_E_NOMEM, "could not start worker thread %d of %d", i, (int)nthreads);
        }
    }
    return LNX_OK;
}

/* Tells workers 1..size-1 to stop and joins them. */
static void stop_workers(lnx_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->size; i++)
        pthread_join(pool->threads[i - 1], NULL);
}

/* In a child forked after the pool started, only the forking thread exists: the workers, and the
 * state of the lock they may have held, stayed in the parent. Start afresh with new workers (or
 * serially if they cannot be started); the parent's pool is untouched. */
static void restart_after_fork(lnx_pool *pool)
{
    int wanted = pool->size;
    pool->pid = getpid();
    pthread_mutex_init(&pool->run, NULL);
    pthread_mutex_init(&pool->scratch_lock, NULL);
    for (int i = 0; i < POOL_SCRATCH_SLOTS; i++)
        pool->scratch[i].used = 0; /* the parent's threads are not here */
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->start, NULL);
    pthread_cond_init(&pool->finish, NULL);
    atomic_store(&pool->generation, 0);
    atomic_store(&pool->pending, 0);
    atomic_store(&pool->stop, 0);
    pool->sleepers = 0;
    free(pool->threads);
    pool->threads = NULL;
    pool->size = 1;
    if (start_workers(pool, wanted) != LNX_OK) {
        /* the workers that did start are joined; the pool then runs on the caller alone */
        stop_workers(pool);
        atomic_store(&pool->stop, 0);
        pool->size = 1;
        lnx_clear_error();
    }
}

static void free_scratch(lnx_pool *pool)
{
    for (int i = 0; i < POOL_SCRATCH_SLOTS; i++)
        lnx_afree(pool->scratch[i].buf);
}

void lnx_pool_retain(lnx_pool *pool)
{
    if (pool)
        atomic_fetch_add_explicit(&pool->refs, 1, memory_order_relaxed);
}

void lnx_pool_free(lnx_pool *pool)
{
    if (!pool || atomic_fetch_sub_explicit(&pool->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (pool->pid != getpid()) {
        /* freed in a forked child that never used it: its workers are the parent's */
        free(pool->threads);
        free_scratch(pool);
        free(pool);
        return;
    }
    stop_workers(pool);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->run);
    pthread_mutex_destroy(&pool->scratch_lock);
    pthread_cond_destroy(&pool->start);
    pthread_cond_destroy(&pool->finish);
    free(pool->threads);
    free_scratch(pool);
    free(pool);
}

void *lnx_pool_scratch(lnx_pool *pool, size_t bytes)
{
    /* inside a loop several workers could ask at once: they get none */
    if (!pool || inside_loop)
        return NULL;
    pthread_t self = pthread_self();
    void *out = NULL;
    pthread_mutex_lock(&pool->scratch_lock);
    int slot = -1;
    for (int i = 0; i < POOL_SCRATCH_SLOTS && slot < 0; i++)
        if (pool->scratch[i].used && pthread_equal(pool->scratch[i].owner, self))
            slot = i;
    for (int i = 0; i < POOL_SCRATCH_SLOTS && slot < 0; i++)
        if (!pool->scratch[i].used) {
            slot = i;
            pool->scratch[i].used = 1;
            pool->scratch[i].owner = self;
        }
    if (slot >= 0) {
        if (pool->scratch[slot].bytes < bytes) {
            lnx_afree(pool->scratch[slot].buf);
            pool->scratch[slot].buf = lnx_amalloc(bytes);
            pool->scratch[slot].bytes = pool->scratch[slot].buf ? bytes : 0;
        }
        out = pool->scratch[slot].buf;
    }
    pthread_mutex_unlock(&pool->scratch_lock);
    return out;
}

int lnx_pool_size(const lnx_pool *pool)
{
    return pool ? pool->size : 1;
}

void lnx_parallel_for(lnx_pool *pool, int64_t n, lnx_range_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (pool && !inside_loop && pool->pid != getpid())
        restart_after_fork(pool);
    if (!pool || pool->size == 1 || n == 1 || inside_loop) {
        fn(ctx, 0, n, 0);
        return;
    }
    /* another thread's loop on the same (shared) pool finishes first */
    pthread_mutex_lock(&pool->run);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->n = n;
    atomic_store_explicit(&pool->pending, pool->size - 1, memory_order_relaxed);
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    if (pool->sleepers > 0)
        pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->lock);

    run_chunk(pool, 0);

    int spins = 0;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0) {
        if (++spins < SPIN_PAUSES) {
            cpu_relax();
            continue;
        }
        pthread_mutex_lock(&pool->lock);
        while (atomic_load(&pool->pending) > 0)
            pthread_cond_wait(&pool->finish, &pool->lock);
        pthread_mutex_unlock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->run);
}
