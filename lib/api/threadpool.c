/* llavanext_threadpool: the internal lnx_pool, reference counted, shared by handles. */
#include "api.h"
#include "internal.h"

#include "../base/parallel.h"

LLAVANEXT_API llavanext_status llavanext_threadpool_create(llavanext_threadpool **out, int32_t threads)
{
    API_CHECK(out, "llavanext_threadpool_create: out is NULL");
    *out = NULL;
    API_CHECK(threads >= 0 && threads <= 1024, "llavanext_threadpool_create: threads = %d (0 .. 1024)", (int)threads);
    lnx_pool *pool;
    LNX_TRY(lnx_pool_create(&pool, threads));
    *out = (llavanext_threadpool *)pool;
    return LNX_OK;
}

LLAVANEXT_API void llavanext_threadpool_free(llavanext_threadpool *pool)
{
    lnx_pool_free((lnx_pool *)pool);
}

LLAVANEXT_API int32_t llavanext_threadpool_threads(const llavanext_threadpool *pool)
{
    return pool ? lnx_pool_size((const lnx_pool *)pool) : 0;
}

lnx_status lnx_api_pool(lnx_pool **out, int32_t threads, llavanext_threadpool *shared)
{
    if (shared) {
        lnx_pool_retain((lnx_pool *)shared);
        *out = (lnx_pool *)shared;
        return LNX_OK;
    }
    return lnx_pool_create(out, threads);
}
