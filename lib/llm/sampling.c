#include "sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lnx_rng_seed(lnx_rng *r, uint64_t seed)
{
    r->state = seed;
}

static uint64_t splitmix64(lnx_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double lnx_rng_uniform(lnx_rng *r)
{
    return (double)(splitmix64(r) >> 11) / 9007199254740992.0;
}

lnx_status lnx_sample_scratch_init(lnx_sample_scratch *s, int32_t vocab)
{
    s->vocab = vocab;
    s->order = malloc(sizeof *s->order * (size_t)vocab);
    s->seen = calloc((size_t)vocab, 1);
    if (!s->order || !s->seen) {
        lnx_sample_scratch_free(s);
        return lnx_error(LNX_E_NOMEM, "out of memory for the sampler");
    }
    return LNX_OK;
}

void lnx_sample_scratch_free(lnx_sample_scratch *s)
{
    free(s->order);
    free(s->seen);
    s->order = NULL;
    s->seen = NULL;
}

int32_t lnx_argmax(const float *x, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

void lnx_repetition_penalty(float *logits, int32_t vocab, const int32_t *history, int64_t n, float penalty,
                            lnx_sample_scratch *s)
{
    if (penalty == 1.0f || n <= 0)
        return;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = history[i];
        if (id < 0 || id >= vocab || s->seen[id])
            continue;
        s->seen[id] = 1;
        logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
    }
    for (int64_t i = 0; i < n; i++)
        if (history[i] >= 0 && history[i] < vocab)
            s->seen[history[i]] = 0;
}

/* qsort has no context argument: the key array is per thread, so generators on different
 * threads do not race */
static _Thread_local const float *sort_keys;

static int by_logit_desc(const void *a, const void *b)
{
    float x = sort_keys[*(const int32_t *)a], y = sort_keys[*(const int32_t *)b];
    if (x != y)
        return x > y ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

int32_t lnx_sample(const lnx_sampler_cfg *c, lnx_rng *rng, float *logits, int32_t vocab, const int32_t *history,
                   int64_t n_history, lnx_sample_scratch *s)
{
    lnx_repetition_penalty(logits, vocab, history, n_history, c->repetition_penalty, s);
    if (!(c->temperature > 0.0f))
        return lnx_argmax(logits, vocab);
    for (int32_t i = 0; i < vocab; i++)
        logits[i] /= c->temperature;
    /* candidates sorted by logit, descending; ties by id */
    int32_t *order = s->order;
    for (int32_t i = 0; i < vocab; i++)
        order[i] = i;
    int32_t n = vocab;
    /* top-k first narrows the sort to k candidates */
    if (c->top_k > 0 && c->top_k < vocab) {
        /* threshold = k-th largest value; keep everything >= it (as transformers does on ties) */
        float *tmp = malloc(sizeof(float) * (size_t)vocab);
        if (tmp) {
            memcpy(tmp, logits, sizeof(float) * (size_t)vocab);
            /* partial selection */
            int32_t lo = 0, hi = vocab - 1, k = c->top_k - 1;
            while (lo < hi) {
                float pivot = tmp[(lo + hi) / 2];
                int32_t i = lo, j = hi;
                while (i <= j) {
                    while (tmp[i] > pivot)
                        i++;
                    while (tmp[j] < pivot)
                        j--;
                    if (i <= j) {
                        float t = tmp[i];
                        tmp[i] = tmp[j];
                        tmp[j] = t;
                        i++;
                        j--;
                    }
                }
                if (k <= j)
                    hi = j;
                else if (k >= i)
                    lo = i;
                else
                    break;
            }
            float kth = tmp[k];
            free(tmp);
            n = 0;
            for (int32_t i = 0; i < vocab; i++)
                if (logits[i] >= kth)
                    order[n++] = i;
        }
    }
    sort_keys = logits;
    qsort(order, (size_t)n, sizeof *order, by_logit_desc);
    /* probabilities of the candidates */
    double mx = logits[order[0]], sum = 0.0;
    double *p = malloc(sizeof(double) * (size_t)n);
    if (!p)
        return order[0];
    for (int32_t i = 0; i < n; i++) {
        p[i] = exp((double)logits[order[i]] - mx);
        sum += p[i];
    }
    for (int32_t i = 0; i < n; i++)
        p[i] /= sum;
    int32_t keep = n;
    if (c->top_p < 1.0f) {
        /* smallest prefix whose mass reaches top_p (at least one token) */
        double cum = 0.0;
        for (int32_t i = 0; i < n; i++) {
            cum += p[i];
            if (cum >= c->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    if (c->min_p > 0.0f) {
        double thr = c->min_p * p[0];
        int32_t k2 = 1;
        while (k2 < keep && p[k2] >= thr)
            k2++;
        keep = k2;
    }
    double mass = 0.0;
    for (int32_t i = 0; i < keep; i++)
        mass += p[i];
    double u = lnx_rng_uniform(rng) * mass, acc = 0.0;
    int32_t pick = order[keep - 1];
    for (int32_t i = 0; i < keep; i++) {
        acc += p[i];
        if (u < acc) {
            pick = order[i];
            break;
        }
    }
    free(p);
    return pick;
}
