/* `threads` means it: a whole request (frame sampling, vision encoder, pooler, prefill and
 * generation) made with threads = 1 keeps one core busy (its CPU time, all the process's threads
 * counted, is at most 1.1x its wall time), and handles sharing one llavanext_threadpool compute
 * exactly what handles with their own pools of the same size do, also when called from two
 * threads at once. */
#include "../common/testutil.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "llavanext/llavanext.h"

static llavanext_model *model;

#define FRAMES 8
#define NEW_TOKENS 12

static int setup(void **state)
{
    (void)state;
    llavanext_model_params mp;
    llavanext_model_params_init(&mp, sizeof mp);
    mp.load_mode = LLAVANEXT_LOAD_READ;
    mp.threads = 1;
    if (llavanext_model_load(&model, tu_data("tiny-a"), &mp) != LLAVANEXT_OK)
        fail_msg("load: %s", llavanext_last_error());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    llavanext_model_free(model);
    return 0;
}

static double wall_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* user + system time of every thread of the process */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

typedef struct result {
    float emb[4]; /* a few values of the video embeddings */
    int64_t emb_numel;
    int32_t tokens[NEW_TOKENS];
    int32_t n_tokens;
} result;

/* One request with handles of `threads` threads, or on `pool` when not NULL. */
static void request(int32_t threads, llavanext_threadpool *pool, result *out)
{
    llavanext_frame_sampler_params sp;
    llavanext_frame_sampler_params_init(&sp, sizeof sp);
    sp.threads = threads ? threads : 0;
    llavanext_frame_sampler *s;
    assert_int_equal(llavanext_frame_sampler_open(&s, tu_data("media/clip_h264_160x120_97f.mp4"), &sp), LLAVANEXT_OK);
    llavanext_frames *f;
    assert_int_equal(llavanext_frame_sampler_uniform(&f, s, FRAMES), LLAVANEXT_OK);

    llavanext_vision_encoder_params ep;
    llavanext_vision_encoder_params_init(&ep, sizeof ep);
    ep.threads = threads;
    ep.threadpool = pool;
    llavanext_pooler_params pp;
    llavanext_pooler_params_init(&pp, sizeof pp);
    pp.threads = threads;
    pp.threadpool = pool;
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.threads = threads;
    gp.threadpool = pool;
    gp.temperature = 0;
    gp.max_new_tokens = NEW_TOKENS;
    llavanext_vision_encoder *enc;
    llavanext_pooler *pl;
    llavanext_generator *gen;
    assert_int_equal(llavanext_vision_encoder_create(&enc, model, &ep), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_create(&pl, model, &pp), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_create(&gen, model, &gp), LLAVANEXT_OK);

    llavanext_tensor *feat, *emb;
    assert_int_equal(llavanext_vision_encoder_encode_video(&feat, enc, f), LLAVANEXT_OK);
    assert_int_equal(llavanext_pooler_apply(&emb, pl, feat), LLAVANEXT_OK);
    out->emb_numel = llavanext_tensor_numel(emb);
    const float *e = llavanext_tensor_data(emb);
    for (int i = 0; i < 4; i++)
        out->emb[i] = e[(out->emb_numel - 1) * i / 3];
    const char *prompt = "USER: <video>\nWhat happens in this video? ASSISTANT:";
    const llavanext_tensor *media[1] = { emb };
    assert_int_equal(llavanext_generator_append_prompt(gen, prompt, strlen(prompt), media, 1), LLAVANEXT_OK);
    out->n_tokens = 0;
    for (;;) {
        const char *piece;
        size_t len;
        int32_t tok;
        llavanext_status st = llavanext_generator_next(gen, &piece, &len, &tok);
        if (st == LLAVANEXT_DONE)
            break;
        assert_int_equal(st, LLAVANEXT_OK);
        assert_true(out->n_tokens < NEW_TOKENS);
        out->tokens[out->n_tokens++] = tok;
    }
    llavanext_tensor_free(emb);
    llavanext_tensor_free(feat);
    llavanext_generator_free(gen);
    llavanext_pooler_free(pl);
    llavanext_vision_encoder_free(enc);
    llavanext_frames_free(f);
    llavanext_frame_sampler_free(s);
}

static void assert_same(const result *a, const result *b)
{
    assert_int_equal(a->emb_numel, b->emb_numel);
    assert_memory_equal(a->emb, b->emb, sizeof a->emb);
    assert_int_equal(a->n_tokens, b->n_tokens);
    assert_memory_equal(a->tokens, b->tokens, sizeof(int32_t) * (size_t)a->n_tokens);
}

/* Requests repeated for at least `seconds` of wall time: CPU time / wall time. */
static double cpu_per_wall(int32_t threads, llavanext_threadpool *pool, double seconds)
{
    result r;
    request(threads, pool, &r); /* warm-up (first touches, oneDNN's kernel generation) */
    double w0 = wall_now(), c0 = cpu_now();
    int n = 0;
    do {
        request(threads, pool, &r);
        n++;
    } while (wall_now() - w0 < seconds);
    double wall = wall_now() - w0, cpu = cpu_now() - c0;
    printf("    threads %d%s: %d requests, %.3f s wall, %.3f s CPU: %.2f cores\n", (int)threads, pool ? " (shared pool)" : "",
           n, wall, cpu, cpu / wall);
    return cpu / wall;
}

static void one_thread_keeps_one_core_busy(void **state)
{
    (void)state;
    assert_true(cpu_per_wall(1, NULL, 1.5) <= 1.1);
}

static void one_thread_shared_pool_keeps_one_core_busy(void **state)
{
    (void)state;
    llavanext_threadpool *pool;
    assert_int_equal(llavanext_threadpool_create(&pool, 1), LLAVANEXT_OK);
    assert_int_equal(llavanext_threadpool_threads(pool), 1);
    /* the sampler is not a pool user: one decoder thread */
    assert_true(cpu_per_wall(1, pool, 1.0) <= 1.1);
    llavanext_threadpool_free(pool);
}

static void shared_pool_computes_what_own_pools_do(void **state)
{
    (void)state;
    result own, shared;
    request(3, NULL, &own);
    llavanext_threadpool *pool;
    assert_int_equal(llavanext_threadpool_create(&pool, 3), LLAVANEXT_OK);
    assert_int_equal(llavanext_threadpool_threads(pool), 3);
    request(3, pool, &shared);
    assert_same(&own, &shared);
    /* the handles keep the pool alive: freed by the host first, then used */
    llavanext_vision_encoder_params ep;
    llavanext_vision_encoder_params_init(&ep, sizeof ep);
    ep.threadpool = pool;
    llavanext_vision_encoder *enc;
    assert_int_equal(llavanext_vision_encoder_create(&enc, model, &ep), LLAVANEXT_OK);
    llavanext_threadpool_free(pool);
    llavanext_frame_sampler *s;
    assert_int_equal(llavanext_frame_sampler_open(&s, tu_data("media/clip_h264_160x120_97f.mp4"), NULL), LLAVANEXT_OK);
    llavanext_frames *f;
    assert_int_equal(llavanext_frame_sampler_uniform(&f, s, 2), LLAVANEXT_OK);
    llavanext_tensor *feat;
    assert_int_equal(llavanext_vision_encoder_encode_video(&feat, enc, f), LLAVANEXT_OK);
    llavanext_tensor_free(feat);
    llavanext_frames_free(f);
    llavanext_frame_sampler_free(s);
    llavanext_vision_encoder_free(enc);
}

typedef struct job {
    llavanext_threadpool *pool;
    result r[3];
} job;

static void *run_job(void *p)
{
    job *j = p;
    for (int i = 0; i < 3; i++)
        request(2, j->pool, &j->r[i]);
    return NULL;
}

static void shared_pool_serves_two_threads_at_once(void **state)
{
    (void)state;
    result want;
    request(2, NULL, &want);
    llavanext_threadpool *pool;
    assert_int_equal(llavanext_threadpool_create(&pool, 2), LLAVANEXT_OK);
    job a = { pool, { { { 0 }, 0, { 0 }, 0 } } }, b = a;
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, run_job, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, run_job, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    for (int i = 0; i < 3; i++) {
        assert_same(&want, &a.r[i]);
        assert_same(&want, &b.r[i]);
    }
    llavanext_threadpool_free(pool);
}

static void bad_threadpool_arguments(void **state)
{
    (void)state;
    llavanext_threadpool *pool = (llavanext_threadpool *)&pool;
    assert_int_equal(llavanext_threadpool_create(&pool, -1), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(pool);
    assert_int_equal(llavanext_threadpool_create(&pool, 1025), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_int_equal(llavanext_threadpool_create(NULL, 1), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_int_equal(llavanext_threadpool_threads(NULL), 0);
    llavanext_threadpool_free(NULL);
    assert_int_equal(llavanext_threadpool_create(&pool, 0), LLAVANEXT_OK);
    assert_true(llavanext_threadpool_threads(pool) >= 1);
    llavanext_threadpool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_threadpool_arguments),
        cmocka_unit_test(one_thread_keeps_one_core_busy),
        cmocka_unit_test(one_thread_shared_pool_keeps_one_core_busy),
        cmocka_unit_test(shared_pool_computes_what_own_pools_do),
        cmocka_unit_test(shared_pool_serves_two_threads_at_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
