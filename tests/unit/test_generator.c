/* The generator's behaviours through the public API: context limits, placeholder matching,
 * cancellation, conversation continuation, scoring, stop conditions, RoPE override. */
#include "../common/testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "llavanext/llavanext.h"

static llavanext_model *model;
static const char *prompt = "USER: Describe a sunny day at the beach. ASSISTANT:";

static int setup(void **s)
{
    (void)s;
    return llavanext_model_load(&model, tu_data("tiny-a"), NULL) == LLAVANEXT_OK ? 0 : -1;
}

static int teardown(void **s)
{
    (void)s;
    llavanext_model_free(model);
    return 0;
}

static llavanext_generator *make(int64_t ctx, int32_t max_new, float temperature, uint64_t seed)
{
    llavanext_generator_params p;
    llavanext_generator_params_init(&p, sizeof p);
    p.context_length = ctx;
    p.max_new_tokens = max_new;
    p.temperature = temperature;
    p.seed = seed;
    p.threads = 2;
    llavanext_generator *g = NULL;
    if (llavanext_generator_create(&g, model, &p) != LLAVANEXT_OK)
        fail_msg("create: %s", llavanext_last_error());
    return g;
}

static int collect(llavanext_generator *g, int32_t *ids, int cap)
{
    int n = 0;
    for (;;) {
        int32_t tok;
        llavanext_status st = llavanext_generator_next(g, NULL, NULL, &tok);
        if (st == LLAVANEXT_DONE)
            return n;
        if (st != LLAVANEXT_OK)
            fail_msg("next: %d %s", st, llavanext_last_error());
        if (n < cap)
            ids[n] = tok;
        n++;
    }
}

static void nothing_to_generate_from_is_a_state_error(void **s)
{
    (void)s;
    llavanext_generator *g = make(0, 4, 0, 1);
    const float *logits;
    assert_int_equal(llavanext_generator_logits(&logits, NULL, g), LLAVANEXT_E_STATE);
    assert_int_equal(llavanext_generator_next(g, NULL, NULL, NULL), LLAVANEXT_E_STATE);
    assert_int_equal(llavanext_generator_position(g), 0);
    assert_int_equal(llavanext_generator_context_length(g), 512);
    llavanext_generator_free(g);
}

static void max_new_tokens_is_respected(void **s)
{
    (void)s;
    llavanext_generator *g = make(0, 5, 0, 1);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    int32_t ids[16];
    assert_int_equal(collect(g, ids, 16), 5);
    /* after DONE, next keeps answering DONE */
    assert_int_equal(llavanext_generator_next(g, NULL, NULL, NULL), LLAVANEXT_DONE);
    llavanext_generator_free(g);
}

static void context_full_is_reported_not_truncated(void **s)
{
    (void)s;
    llavanext_generator *g = make(20, 100, 0, 1);
    /* a prompt longer than the context is refused whole */
    const char *longp = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                        "sixteen seventeen eighteen nineteen twenty";
    assert_int_equal(llavanext_generator_append_prompt(g, longp, strlen(longp), NULL, 0), LLAVANEXT_E_CONTEXT_FULL);
    assert_string_contains(llavanext_last_error(), "capacity 20");
    assert_int_equal(llavanext_generator_position(g), 0);
    /* generating until the cache is full stops with CONTEXT_FULL */
    assert_int_equal(llavanext_generator_append_prompt(g, "Hello", 5, NULL, 0), LLAVANEXT_OK);
    int n = 0;
    llavanext_status st;
    while ((st = llavanext_generator_next(g, NULL, NULL, NULL)) == LLAVANEXT_OK)
        n++;
    assert_int_equal(st, LLAVANEXT_E_CONTEXT_FULL);
    assert_int_equal(llavanext_generator_position(g), 20);
    assert_int_equal(n, 20 - 2);
    llavanext_generator_free(g);
    /* a context beyond what the RoPE scaling allows is refused at creation */
    llavanext_generator_params p;
    llavanext_generator_params_init(&p, sizeof p);
    p.context_length = 513;
    llavanext_generator *bad = (llavanext_generator *)1;
    assert_int_equal(llavanext_generator_create(&bad, model, &p), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_null(bad);
    assert_string_contains(llavanext_last_error(), "rope_scale");
}

static void placeholders_must_match_media(void **s)
{
    (void)s;
    llavanext_generator *g = make(0, 4, 0, 1);
    const char *p = "USER: <video>\n<image>\nWhat? ASSISTANT:";
    assert_int_equal(llavanext_generator_append_prompt(g, p, strlen(p), NULL, 0), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_string_contains(llavanext_last_error(), "2 <video>/<image> placeholders but 0 media");
    float data[4 * 64] = { 0 };
    int64_t dims[3] = { 1, 4, 64 };
    llavanext_tensor *video, *wrong;
    assert_int_equal(llavanext_tensor_create(&video, LLAVANEXT_TENSOR_VIDEO_EMBEDDINGS, 3, dims, data, 0, 0), LLAVANEXT_OK);
    int64_t d2[2] = { 4, 32 };
    assert_int_equal(llavanext_tensor_create(&wrong, LLAVANEXT_TENSOR_IMAGE_EMBEDDINGS, 2, d2, data, 5, 5), LLAVANEXT_OK);
    const llavanext_tensor *m2[2] = { video, video };
    assert_int_equal(llavanext_generator_append_prompt(g, p, strlen(p), m2, 2), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_string_contains(llavanext_last_error(), "<image>");
    const llavanext_tensor *m3[2] = { video, wrong };
    assert_int_equal(llavanext_generator_append_prompt(g, p, strlen(p), m3, 2), LLAVANEXT_E_INVALID_ARGUMENT);
    assert_string_contains(llavanext_last_error(), "hidden size 64");
    const char *one = "USER: <video>\nWhat? ASSISTANT:";
    const llavanext_tensor *m1[1] = { video };
    assert_int_equal(llavanext_generator_append_prompt(g, one, strlen(one), m1, 1), LLAVANEXT_OK);
    /* the placeholder became exactly the tensor's 4 rows */
    const int32_t *toks = llavanext_generator_tokens(g);
    assert_int_equal(toks[0], 1);
    int64_t first = -1, count = 0;
    for (int64_t i = 0; i < llavanext_generator_position(g); i++) {
        if (toks[i] == 32000) {
            if (first < 0)
                first = i;
            count++;
        }
    }
    assert_int_equal(count, 4);
    assert_int_equal(toks[first + 3], 32000);
    llavanext_tensor_free(video);
    llavanext_tensor_free(wrong);
    llavanext_generator_free(g);
}

static int32_t abort_prefill(int32_t stage, int64_t done, int64_t total, void *ud)
{
    (void)done; (void)total;
    *(int *)ud += 1;
    return stage == LLAVANEXT_STAGE_PREFILL;
}

static void prefill_can_be_cancelled_and_the_generator_reused(void **s)
{
    (void)s;
    llavanext_generator_params p;
    llavanext_generator_params_init(&p, sizeof p);
    p.temperature = 0;
    p.max_new_tokens = 4;
    p.prefill_chunk = 4;
    int calls = 0;
    p.progress = abort_prefill;
    p.progress_user_data = &calls;
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, &p), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_prefill(g), LLAVANEXT_E_ABORTED);
    assert_int_equal(calls, 1);
    /* what was not evaluated is dropped: the conversation is consistent and usable */
    assert_int_equal(llavanext_generator_position(g), 4);
    llavanext_generator_reset(g);
    assert_int_equal(llavanext_generator_position(g), 0);
    llavanext_generator_cancel(g); /* freeing with a request pending is fine */
    llavanext_generator_free(g);
    llavanext_generator *ok = make(0, 4, 0, 1);
    assert_int_equal(llavanext_generator_append_prompt(ok, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    /* a request made before the call stops that call (it is never lost), and only that one */
    llavanext_generator_cancel(ok);
    assert_int_equal(llavanext_generator_prefill(ok), LLAVANEXT_E_ABORTED);
    assert_int_equal(llavanext_generator_prefill(ok), LLAVANEXT_OK);
    llavanext_generator_free(ok);
}

static void a_conversation_continues_from_its_cache(void **s)
{
    (void)s;
    /* A: two turns through the cache */
    llavanext_generator *a = make(0, 6, 0, 1);
    assert_int_equal(llavanext_generator_append_prompt(a, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    int32_t first[8], second[8];
    collect(a, first, 8);
    const char *q2 = " USER: And at night? ASSISTANT:";
    assert_int_equal(llavanext_generator_append_prompt(a, q2, strlen(q2), NULL, 0), LLAVANEXT_OK);
    int64_t before = llavanext_generator_position(a);
    int32_t *history = malloc(sizeof(int32_t) * (size_t)before);
    memcpy(history, llavanext_generator_tokens(a), sizeof(int32_t) * (size_t)before);
    collect(a, second, 8);
    /* B: the same tokens evaluated in one prefill */
    llavanext_generator *b = make(0, 6, 0, 1);
    assert_int_equal(llavanext_generator_append_tokens(b, history, (size_t)before), LLAVANEXT_OK);
    int32_t again[8];
    assert_int_equal(collect(b, again, 8), 6);
    assert_memory_equal(second, again, sizeof(int32_t) * 6);
    free(history);
    llavanext_generator_free(a);
    llavanext_generator_free(b);
}

static void score_equals_stepwise_log_probabilities_and_leaves_state(void **s)
{
    (void)s;
    const char *cont = " The sea is calm";
    llavanext_generator *g = make(0, 4, 0, 1);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    double score;
    int32_t n;
    assert_int_equal(llavanext_generator_score(&score, &n, g, cont, strlen(cont)), LLAVANEXT_OK);
    int64_t pos = llavanext_generator_position(g);
    /* stepwise: append each continuation token and read the logits */
    int32_t *ids;
    size_t nids;
    assert_int_equal(llavanext_model_tokenize(&ids, &nids, model, cont, strlen(cont), 0), LLAVANEXT_OK);
    assert_int_equal(n, (int32_t)nids);
    llavanext_generator *h = make(0, 4, 0, 1);
    assert_int_equal(llavanext_generator_append_prompt(h, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    double want = 0;
    for (size_t i = 0; i < nids; i++) {
        assert_int_equal(llavanext_generator_prefill(h), LLAVANEXT_OK);
        const float *l;
        int32_t V;
        assert_int_equal(llavanext_generator_logits(&l, &V, h), LLAVANEXT_OK);
        double mx = l[0], sum = 0;
        for (int32_t v = 0; v < V; v++)
            mx = l[v] > mx ? l[v] : mx;
        for (int32_t v = 0; v < V; v++)
            sum += exp(l[v] - mx);
        want += l[ids[i]] - mx - log(sum);
        assert_int_equal(llavanext_generator_append_tokens(h, &ids[i], 1), LLAVANEXT_OK);
    }
    printf("    score %.6f, stepwise %.6f over %d tokens\n", score, want, (int)n);
    assert_true(fabs(score - want) < 1e-3);
    assert_true(score < 0);
    /* scoring did not change the conversation: generation is as without it */
    assert_int_equal(llavanext_generator_position(g), pos);
    int32_t a[4], b[4];
    collect(g, a, 4);
    llavanext_generator *fresh = make(0, 4, 0, 1);
    assert_int_equal(llavanext_generator_append_prompt(fresh, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    collect(fresh, b, 4);
    assert_memory_equal(a, b, sizeof a);
    llavanext_free(ids);
    llavanext_generator_free(g);
    llavanext_generator_free(h);
    llavanext_generator_free(fresh);
}

typedef struct text_acc {
    char buf[1024];
    size_t len;
    int stop_after;
    int calls;
} text_acc;

static int32_t accumulate(const char *piece, size_t len, int32_t tok, void *ud)
{
    (void)tok;
    text_acc *t = ud;
    memcpy(t->buf + t->len, piece, len);
    t->len += len;
    t->buf[t->len] = '\0';
    return ++t->calls == t->stop_after;
}

static void stop_strings_and_callbacks_end_generation(void **s)
{
    (void)s;
    llavanext_generator *g = make(0, 12, 0, 1);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    text_acc full = { .stop_after = -1 };
    assert_int_equal(llavanext_generator_generate(g, accumulate, &full), LLAVANEXT_OK);
    assert_int_equal(full.calls, 12);
    /* a callback returning non-zero stops after 3 pieces */
    llavanext_generator_reset(g);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    text_acc three = { .stop_after = 3 };
    assert_int_equal(llavanext_generator_generate(g, accumulate, &three), LLAVANEXT_OK);
    assert_int_equal(three.calls, 3);
    assert_int_equal(strncmp(full.buf, three.buf, three.len), 0);
    /* a stop string taken from the middle of the full answer */
    char stop[8];
    memcpy(stop, three.buf + three.len - 2, 2);
    stop[2] = '\0';
    llavanext_generator_reset(g);
    assert_int_equal(llavanext_generator_add_stop_string(g, stop), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    text_acc stopped = { .stop_after = -1 };
    assert_int_equal(llavanext_generator_generate(g, accumulate, &stopped), LLAVANEXT_OK);
    assert_non_null(strstr(stopped.buf, stop));
    assert_true(stopped.calls <= 3);
    assert_int_equal(llavanext_generator_add_stop_string(g, ""), LLAVANEXT_E_INVALID_ARGUMENT);
    llavanext_generator_free(g);
}

static void seeded_sampling_reproduces_and_reset_restarts_the_seed(void **s)
{
    (void)s;
    int32_t a[10], b[10], c[10];
    llavanext_generator *g = make(0, 10, 1.0f, 99);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    collect(g, a, 10);
    llavanext_generator_reset(g);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    collect(g, b, 10);
    assert_memory_equal(a, b, sizeof a);
    llavanext_generator *h = make(0, 10, 1.0f, 100);
    assert_int_equal(llavanext_generator_append_prompt(h, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    collect(h, c, 10);
    assert_memory_not_equal(a, c, sizeof a);
    llavanext_generator_free(g);
    llavanext_generator_free(h);
}

static void padded_vocabulary_ids_generate_no_text_and_no_error(void **s)
{
    (void)s;
    /* near-uniform sampling over the 32064 rows reaches the 62 padding ids past the tokenizer's
     * 32002 within a few hundred steps */
    int padded = 0;
    for (uint64_t seed = 1; seed <= 20 && padded == 0; seed++) {
        llavanext_generator *g = make(0, 400, 100.0f, seed);
        assert_int_equal(llavanext_generator_append_prompt(g, "Hi", 2, NULL, 0), LLAVANEXT_OK);
        for (;;) {
            int32_t tok;
            size_t len;
            const char *piece;
            llavanext_status st = llavanext_generator_next(g, &piece, &len, &tok);
            if (st == LLAVANEXT_DONE)
                break;
            assert_int_equal(st, LLAVANEXT_OK);
            if (tok >= 32002) {
                padded++;
                assert_int_equal(len, 0);
            }
        }
        llavanext_generator_free(g);
    }
    assert_true(padded > 0);
}

static void rope_override_extends_the_context(void **s)
{
    (void)s;
    llavanext_generator_params p;
    llavanext_generator_params_init(&p, sizeof p);
    p.rope_scale = 4.0;
    p.max_new_tokens = 3;
    p.temperature = 0;
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, &p), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_context_length(g), 1024);
    assert_int_equal(llavanext_model_context_length(model, 4.0), 1024);
    /* a prompt past the factor-2 limit of 512 positions */
    char *big = malloc(8000);
    size_t len = 0;
    for (int i = 0; i < 300; i++)
        len += (size_t)sprintf(big + len, "word%d ", i % 10);
    assert_int_equal(llavanext_generator_append_prompt(g, big, len, NULL, 0), LLAVANEXT_OK);
    assert_true(llavanext_generator_position(g) > 512);
    int32_t ids[4];
    assert_int_equal(collect(g, ids, 4), 3);
    free(big);
    llavanext_generator_free(g);
    p.rope_scale = 0.5;
    assert_int_equal(llavanext_generator_create(&g, model, &p), LLAVANEXT_E_INVALID_ARGUMENT);
}

typedef struct worker {
    int32_t ids[8];
    int n;
} worker;

static void *answer_in_thread(void *arg)
{
    worker *w = arg;
    llavanext_generator_params p;
    llavanext_generator_params_init(&p, sizeof p);
    p.temperature = 0;
    p.max_new_tokens = 8;
    p.threads = 1;
    llavanext_generator *g;
    if (llavanext_generator_create(&g, model, &p) != LLAVANEXT_OK)
        return NULL;
    if (llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0) == LLAVANEXT_OK)
        while (w->n < 8 && llavanext_generator_next(g, NULL, NULL, &w->ids[w->n]) == LLAVANEXT_OK)
            w->n++;
    llavanext_generator_free(g);
    return NULL;
}

static void one_model_serves_several_threads_at_once(void **s)
{
    (void)s;
    worker w[4];
    pthread_t t[4];
    memset(w, 0, sizeof w);
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, answer_in_thread, &w[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(w[i].n, 8);
        assert_memory_equal(w[i].ids, w[0].ids, sizeof w[0].ids);
    }
}

static void budget_planner_counts_and_suggests(void **s)
{
    (void)s;
    llavanext_budget b;
    b.struct_size = sizeof b;
    assert_int_equal(llavanext_model_plan_budget(&b, model, 8, 0, 0, 20, 24, 0, 0), LLAVANEXT_OK);
    assert_int_equal(b.tokens_per_frame, 4);
    assert_int_equal(b.visual_tokens, 32);
    assert_int_equal(b.total_tokens, 76);
    assert_int_equal(b.context_length, 512);
    assert_true(b.fits);
    assert_int_equal(llavanext_model_plan_budget(&b, model, 200, 1, 70, 20, 24, 0, 0), LLAVANEXT_OK);
    assert_false(b.fits);
    assert_int_equal(b.suggested_frames, (512 - 70 - 20 - 24) / 16);
    assert_int_equal(b.suggested_pool_stride, 3); /* stride 2 still needs 800 tokens */
    assert_int_equal(llavanext_model_plan_budget(&b, model, 100, 0, 0, 20, 0, -1, 0), LLAVANEXT_OK);
    assert_true(b.rope_scale == 6.0); /* ceil((400 + 1000) / 256) */
    assert_int_equal(llavanext_model_plan_budget(&b, model, 2, 0, 0, 20, 0, -1, 0), LLAVANEXT_OK);
    assert_true(b.rope_scale == 4.0); /* ceil(1008 / 256) */
    assert_int_equal(llavanext_model_plan_budget(&b, model, 0, 0, 0, 20, 0, -1, 0), LLAVANEXT_OK);
    assert_true(b.rope_scale == 4.0); /* ceil(1000 / 256): the recipe's rule on a 256-position model */
    assert_int_equal(llavanext_model_plan_budget(&b, model, 8, 0, 0, 20, 24, 0, 50), LLAVANEXT_OK);
    assert_int_equal(b.context_length, 50);
    assert_false(b.fits);
    assert_int_equal(llavanext_model_plan_budget(&b, model, 8, 9, 0, 20, 24, 0, 0), LLAVANEXT_E_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_to_generate_from_is_a_state_error),
        cmocka_unit_test(max_new_tokens_is_respected),
        cmocka_unit_test(context_full_is_reported_not_truncated),
        cmocka_unit_test(placeholders_must_match_media),
        cmocka_unit_test(prefill_can_be_cancelled_and_the_generator_reused),
        cmocka_unit_test(a_conversation_continues_from_its_cache),
        cmocka_unit_test(score_equals_stepwise_log_probabilities_and_leaves_state),
        cmocka_unit_test(stop_strings_and_callbacks_end_generation),
        cmocka_unit_test(seeded_sampling_reproduces_and_reset_restarts_the_seed),
        cmocka_unit_test(padded_vocabulary_ids_generate_no_text_and_no_error),
        cmocka_unit_test(rope_override_extends_the_context),
        cmocka_unit_test(one_model_serves_several_threads_at_once),
        cmocka_unit_test(budget_planner_counts_and_suggests),
    };
    return cmocka_run_group_tests_name("generator", tests, setup, teardown);
}
