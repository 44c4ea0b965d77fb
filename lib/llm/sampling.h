/* Token sampling: repetition penalty, temperature, top-k, top-p, min-p, seeded RNG. */
#ifndef LNX_LLM_SAMPLING_H
#define LNX_LLM_SAMPLING_H

#include <stdint.h>

#include "../base/status.h"

typedef struct lnx_sampler_cfg {
    float temperature;        /* <= 0: greedy */
    int32_t top_k;            /* <= 0: off */
    float top_p;              /* >= 1: off */
    float min_p;              /* <= 0: off */
    float repetition_penalty; /* 1: off */
} lnx_sampler_cfg;

typedef struct lnx_rng {
    uint64_t state;
} lnx_rng;

void lnx_rng_seed(lnx_rng *r, uint64_t seed);
/* Uniform in [0, 1) with 53 random bits. */
double lnx_rng_uniform(lnx_rng *r);

/* Working memory for one vocabulary size. */
typedef struct lnx_sample_scratch {
    int32_t vocab;
    int32_t *order;
    uint8_t *seen;
} lnx_sample_scratch;
lnx_status lnx_sample_scratch_init(lnx_sample_scratch *s, int32_t vocab);
void lnx_sample_scratch_free(lnx_sample_scratch *s);

/* Index of the largest value (the first one on ties, as torch.argmax). */
int32_t lnx_argmax(const float *x, int32_t n);

/* Applies the repetition penalty of the transformers processor to `logits` in place: each
 * distinct id in history has its logit divided by the penalty when positive, multiplied when
 * negative. */
void lnx_repetition_penalty(float *logits, int32_t vocab, const int32_t *history, int64_t n, float penalty,
                            lnx_sample_scratch *s);

/* Picks the next token from `logits` (modified in place) in the transformers order:
 * repetition penalty, then temperature, top-k, top-p, min-p, then a draw from the softmax. */
int32_t lnx_sample(const lnx_sampler_cfg *c, lnx_rng *rng, float *logits, int32_t vocab, const int32_t *history,
                   int64_t n_history, lnx_sample_scratch *s);

#endif
