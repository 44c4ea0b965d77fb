#include "../common/testutil.h"

#include <pthread.h>
#include <string.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "base/log.h"
#include "base/parallel.h"
#include "base/status.h"

static void error_message_is_formatted_and_returned(void **state)
{
    (void)state;
    lnx_status st = lnx_error(LNX_E_FORMAT, "%s: tensor '%s' at offset %d", "model.safetensors", "w", 42);
    assert_int_equal(st, LNX_E_FORMAT);
    assert_string_equal(lnx_last_error(), "model.safetensors: tensor 'w' at offset 42");
    lnx_error_prefix("loading %s", "dir");
    assert_string_equal(lnx_last_error(), "loading dir: model.safetensors: tensor 'w' at offset 42");
    lnx_clear_error();
    assert_string_equal(lnx_last_error(), "");
}

static void *set_error_in_thread(void *arg)
{
    lnx_error(LNX_E_IO, "thread message");
    *(int *)arg = strcmp(lnx_last_error(), "thread message") == 0;
    return NULL;
}

static void error_message_is_thread_local(void **state)
{
    (void)state;
    lnx_error(LNX_E_IO, "main message");
    int ok = 0;
    pthread_t t;
    pthread_create(&t, NULL, set_error_in_thread, &ok);
    pthread_join(t, NULL);
    assert_true(ok);
    assert_string_equal(lnx_last_error(), "main message");
}

static void long_error_message_is_truncated_safely(void **state)
{
    (void)state;
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    lnx_error(LNX_E_IO, "%s", big);
    assert_true(strlen(lnx_last_error()) < sizeof big);
    lnx_error_prefix("%s", big);
    assert_true(strlen(lnx_last_error()) < sizeof big);
}

static void status_names_are_total(void **state)
{
    (void)state;
    for (int s = -20; s <= 5; s++)
        assert_non_null(lnx_status_name(s));
    assert_string_equal(lnx_status_name(LNX_E_CONTEXT_FULL), "context is full");
    assert_string_equal(lnx_status_name(12345), "unknown status");
}

static void aligned_allocations_are_aligned_and_overflow_checked(void **state)
{
    (void)state;
    for (size_t n = 1; n < 5000; n = n * 3 + 1) {
        void *p = lnx_amalloc(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % LNX_ALIGN, 0);
        lnx_afree(p);
    }
    unsigned char *z = lnx_acalloc(100, 3);
    for (int i = 0; i < 300; i++)
        assert_int_equal(z[i], 0);
    lnx_afree(z);
    assert_null(lnx_acalloc(SIZE_MAX / 2, 4));
    size_t out;
    assert_false(lnx_mul_size(SIZE_MAX / 2, 3, &out));
    assert_true(lnx_mul_size(1000, 1000, &out));
    assert_int_equal(out, 1000000);
}

typedef struct log_capture {
    int count;
    int32_t level;
    char msg[256];
} log_capture;

static void capture_log(int32_t level, const char *msg, void *ud)
{
    log_capture *c = ud;
    c->count++;
    c->level = level;
    snprintf(c->msg, sizeof c->msg, "%s", msg);
}

static void log_goes_to_handle_callback_then_default(void **state)
{
    (void)state;
    log_capture handle = { 0 }, def = { 0 };
    lnx_log(NULL, LNX_LOG_INFO, "silent %d", 1); /* no default: nothing happens */
    lnx_logger lg = { capture_log, &handle };
    lnx_log(&lg, LNX_LOG_WARNING, "to handle %d", 7);
    assert_int_equal(handle.count, 1);
    assert_int_equal(handle.level, LNX_LOG_WARNING);
    assert_string_equal(handle.msg, "to handle 7");
    lnx_log_set_default(capture_log, &def);
    lnx_log(NULL, LNX_LOG_DEBUG, "to default");
    assert_int_equal(def.count, 1);
    assert_string_equal(def.msg, "to default");
    lnx_log(&lg, LNX_LOG_ERROR, "handle wins");
    assert_int_equal(def.count, 1);
    assert_int_equal(handle.count, 2);
    lnx_log_set_default(NULL, NULL);
}

typedef struct sum_ctx {
    int64_t *hits;
    int workers_seen[64];
} sum_ctx;

static void mark_range(void *p, int64_t begin, int64_t end, int worker)
{
    sum_ctx *c = p;
    for (int64_t i = begin; i < end; i++)
        c->hits[i]++;
    c->workers_seen[worker] = 1;
}

static void parallel_for_covers_every_index_once(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 5; threads++) {
        lnx_pool *pool;
        assert_int_equal(lnx_pool_create(&pool, threads), LNX_OK);
        assert_int_equal(lnx_pool_size(pool), threads);
        for (int64_t n = 0; n < 50; n += 7) {
            int64_t hits[64] = { 0 };
            sum_ctx c = { hits, { 0 } };
            for (int rep = 0; rep < 3; rep++)
                lnx_parallel_for(pool, n, mark_range, &c);
            for (int64_t i = 0; i < n; i++)
                assert_int_equal(hits[i], 3);
            if (n >= threads)
                for (int w = 0; w < threads; w++)
                    assert_true(c.workers_seen[w]);
        }
        lnx_pool_free(pool);
    }
    lnx_pool_free(NULL);
    assert_true(lnx_cpu_count() >= 1);
}

typedef struct nested_ctx {
    lnx_pool *pool;
    int64_t *hits;
} nested_ctx;

static void inner(void *p, int64_t b, int64_t e, int w)
{
    (void)w;
    int64_t *hits = p;
    for (int64_t i = b; i < e; i++)
        __atomic_add_fetch(&hits[i], 1, __ATOMIC_RELAXED);
}

static void outer(void *p, int64_t b, int64_t e, int w)
{
    (void)w;
    nested_ctx *c = p;
    for (int64_t i = b; i < e; i++)
        lnx_parallel_for(c->pool, 10, inner, c->hits);
}

static void nested_parallel_for_runs_serially_without_deadlock(void **state)
{
    (void)state;
    lnx_pool *pool;
    assert_int_equal(lnx_pool_create(&pool, 3), LNX_OK);
    int64_t hits[10] = { 0 };
    nested_ctx c = { pool, hits };
    lnx_parallel_for(pool, 6, outer, &c);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hits[i], 6);
    lnx_pool_free(pool);
}

static void absurd_thread_count_is_rejected(void **state)
{
    (void)state;
    lnx_pool *pool = (lnx_pool *)1;
    assert_int_equal(lnx_pool_create(&pool, 100000), LNX_E_INVALID);
    assert_null(pool);
    assert_string_contains(lnx_last_error(), "100000");
}

/* A CPU with AVX2 and FMA but no F16C (some virtual machines mask it) must not get the AVX2
 * kernels, which convert f16 with F16C instructions; and no level without the ones below it. */
static void cpu_levels_need_every_feature_they_use(void **s)
{
    (void)s;
    lnx_cpu_raw all = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    assert_int_equal(lnx_cpu_flags_from(&all), LNX_CPU_AVX2 | LNX_CPU_AVX512 | LNX_CPU_AVX512BF16 | LNX_CPU_AMX_BF16 |
                                                   LNX_CPU_AVX512VNNI | LNX_CPU_AVXVNNI | LNX_CPU_AMX_INT8);
    all.avx512vnni = all.avxvnni = all.amx_int8 = 0;
    lnx_cpu_raw r = all;
    r.f16c = 0;
    assert_int_equal(lnx_cpu_flags_from(&r), 0);
    r = all;
    r.fma = 0;
    assert_int_equal(lnx_cpu_flags_from(&r), 0);
    r = all;
    r.avx512vl = 0;
    assert_int_equal(lnx_cpu_flags_from(&r), LNX_CPU_AVX2);
    r = all;
    r.amx_tile = 0;
    assert_int_equal(lnx_cpu_flags_from(&r), LNX_CPU_AVX2 | LNX_CPU_AVX512 | LNX_CPU_AVX512BF16);
    r = all;
    r.avx512bf16 = 0;
    assert_int_equal(lnx_cpu_flags_from(&r), LNX_CPU_AVX2 | LNX_CPU_AVX512);
    r = all;
    r.avx512vnni = 1;
    r.avx512bw = 0;
    assert_int_equal(lnx_cpu_flags_from(&r), LNX_CPU_AVX2);
    r = all;
    r.amx_int8 = 1;
    r.amx_tile = 0;
    assert_int_equal(lnx_cpu_flags_from(&r), LNX_CPU_AVX2 | LNX_CPU_AVX512 | LNX_CPU_AVX512BF16);
    lnx_cpu_raw none = { 0 };
    assert_int_equal(lnx_cpu_flags_from(&none), 0);
    /* whatever this machine has, the detected flags obey the same rules */
    unsigned f = lnx_cpu_flags();
    assert_true(!(f & LNX_CPU_AVX512) || (f & LNX_CPU_AVX2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_message_is_formatted_and_returned),
        cmocka_unit_test(error_message_is_thread_local),
        cmocka_unit_test(long_error_message_is_truncated_safely),
        cmocka_unit_test(status_names_are_total),
        cmocka_unit_test(aligned_allocations_are_aligned_and_overflow_checked),
        cmocka_unit_test(log_goes_to_handle_callback_then_default),
        cmocka_unit_test(parallel_for_covers_every_index_once),
        cmocka_unit_test(nested_parallel_for_runs_serially_without_deadlock),
        cmocka_unit_test(absurd_thread_count_is_rejected),
        cmocka_unit_test(cpu_levels_need_every_feature_they_use),
    };
    return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
