/* llavanext_model: the weight conversion on load (llavanext_model_params.weights). */
#include "internal.h"

#include "../io/quantize.h"

typedef struct convert_progress {
    const llavanext_model_params *p;
    int64_t total;
} convert_progress;

/* conversion units first, then the three binding steps model.c reports */
static int on_progress(int64_t done, int64_t total, void *user_data)
{
    convert_progress *c = user_data;
    c->total = total;
    return c->p->progress && c->p->progress(LLAVANEXT_STAGE_LOAD, done, total + 3, c->p->progress_user_data);
}

lnx_status lnx_model_convert(llavanext_model *m, const llavanext_model_params *p, int64_t *converted)
{
    *converted = 0;
    if (p->weights == LLAVANEXT_WEIGHTS_STORED)
        return LNX_OK;
    lnx_pool *pool;
    LNX_TRY(lnx_pool_create(&pool, p->threads));
    convert_progress c = { p, 0 };
    /* a mapped checkpoint's source pages are dropped as each tensor is converted */
    lnx_status rc = lnx_wstore_convert(m->ws, (int32_t)p->weights, pool, p->load_mode == LLAVANEXT_LOAD_MMAP,
                                       on_progress, &c);
    lnx_pool_free(pool);
    if (rc != LNX_OK)
        return rc;
    *converted = c.total;
    lnx_log(&m->log, LNX_LOG_INFO, "weights %s: %lld tensors converted on load (%.2f GB)", lnx_weights_name((int32_t)p->weights),
            (long long)c.total, (double)lnx_wstore_adopted_bytes(m->ws) / 1e9);
    return LNX_OK;
}
