/* What a real host runs into beyond bad files: the library's own output (it never prints: libav's
 * messages reach the log callback), cancels that arrive before a call starts, per-handle error
 * messages for bindings that hop threads, and processes that fork after creating handles. */
#include "../common/testutil.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "llavanext/llavanext.h"

static llavanext_model *model;

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

/* n frames of tests/data/`rel`, uniformly, through a frame sampler opened with `params`. */
static llavanext_frames *sample(const char *rel, const llavanext_frame_sampler_params *params, int32_t n)
{
    llavanext_frame_sampler *fs;
    assert_int_equal(llavanext_frame_sampler_open(&fs, tu_data(rel), params), LLAVANEXT_OK);
    llavanext_frames *f;
    assert_int_equal(llavanext_frame_sampler_uniform(&f, fs, n), LLAVANEXT_OK);
    llavanext_frame_sampler_free(fs);
    return f;
}

/* ---- logging ---- */

typedef struct captured {
    char text[16384];
    size_t used;
    int count, errors, warnings;
} captured;

static void capture(int32_t level, const char *msg, void *user_data)
{
    captured *c = user_data;
    c->count++;
    c->errors += level == LLAVANEXT_LOG_ERROR;
    c->warnings += level == LLAVANEXT_LOG_WARNING;
    int n = snprintf(c->text + c->used, sizeof c->text - c->used, "%d %s\n", (int)level, msg);
    if (n > 0 && c->used + (size_t)n < sizeof c->text)
        c->used += (size_t)n;
}

/* Runs fn with file descriptor 2 pointed at a temporary file; returns what was written there. */
static char *stderr_of(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/lnx-stderr-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fd, 2) >= 0);
    fn(arg);
    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    close(fd);
    size_t n;
    char *text = tu_read_file(path, &n);
    unlink(path);
    assert_non_null(text);
    return text;
}

static void media_work(void *arg)
{
    captured *c = arg;
    llavanext_frame_sampler_params p;
    llavanext_frame_sampler_params_init(&p, sizeof p);
    p.log = capture;
    p.log_user_data = c;
    /* MJPEG in AVI decodes to a deprecated full-range pixel format: swscale warns about it */
    llavanext_frames_free(sample("media/clip_mjpeg_96x72_45f.avi", &p, 8));
    llavanext_frame_sampler *fs;
    llavanext_frames *f;
    /* an MP4 cut short: the demuxer complains (moov atom not found, or a truncated stream) */
    size_t n;
    char *mp4 = tu_read_file(tu_data("media/clip_h264_160x120_97f.mp4"), &n);
    assert_non_null(mp4);
    llavanext_status st = llavanext_frame_sampler_open_memory(&fs, mp4, n / 3, &p);
    if (st == LLAVANEXT_OK) {
        if (llavanext_frame_sampler_uniform(&f, fs, 4) == LLAVANEXT_OK)
            llavanext_frames_free(f);
        llavanext_frame_sampler_free(fs);
    }
    free(mp4);
}

static void libav_messages_reach_the_log_callback(void **s)
{
    (void)s;
    captured c;
    memset(&c, 0, sizeof c);
    char *err = stderr_of(media_work, &c);
    printf("    %d messages through the callback (%d errors, %d warnings); stderr: %zu bytes\n", c.count, c.errors,
           c.warnings, strlen(err));
    printf("%s", c.text);
    if (*err)
        fail_msg("the library wrote to stderr: %s", err);
    free(err);
    assert_true(c.count > 0);
    assert_string_contains(c.text, "libav: ");
    assert_true(c.errors + c.warnings > 0);
}

static void default_log_work(void *arg)
{
    captured *c = arg;
    llavanext_set_default_log(capture, c);
    llavanext_frames_free(sample("media/clip_mjpeg_96x72_45f.avi", NULL, 4));
    llavanext_set_default_log(NULL, NULL);
    /* with no logger at all, still nothing on stderr */
    llavanext_frames_free(sample("media/clip_mjpeg_96x72_45f.avi", NULL, 4));
}

static void libav_messages_without_a_handle_logger(void **s)
{
    (void)s;
    captured c;
    memset(&c, 0, sizeof c);
    char *err = stderr_of(default_log_work, &c);
    if (*err)
        fail_msg("the library wrote to stderr: %s", err);
    free(err);
    assert_true(c.count > 0);
    assert_string_contains(c.text, "libav: ");
}

/* ---- cancel: a request that arrives before a call starts stops that call, exactly once ---- */

static llavanext_frames *some_frames(int32_t n)
{
    return sample("media/clip_h264_90x50_41f.mp4", NULL, n);
}

static void encoder_cancel_before_a_call(void **s)
{
    (void)s;
    llavanext_frames *f = some_frames(4);
    llavanext_vision_encoder *e;
    assert_int_equal(llavanext_vision_encoder_create(&e, model, NULL), LLAVANEXT_OK);
    llavanext_tensor *a = NULL, *b = NULL, *px = NULL;
    /* cancel with nothing running: the next call fails, the one after runs */
    llavanext_vision_encoder_cancel(e);
    assert_int_equal(llavanext_vision_encoder_encode_video(&a, e, f), LLAVANEXT_E_ABORTED);
    assert_null(a);
    printf("    %s\n", llavanext_last_error());
    assert_int_equal(llavanext_vision_encoder_encode_video(&a, e, f), LLAVANEXT_OK);
    /* the same for a bare preprocess and a bare encode of pixels */
    llavanext_vision_encoder_cancel(e);
    assert_int_equal(llavanext_vision_encoder_preprocess_video(&px, e, f), LLAVANEXT_E_ABORTED);
    assert_int_equal(llavanext_vision_encoder_preprocess_video(&px, e, f), LLAVANEXT_OK);
    llavanext_vision_encoder_cancel(e);
    assert_int_equal(llavanext_vision_encoder_encode_pixels(&b, e, px), LLAVANEXT_E_ABORTED);
    /* two cancels before a call are still one request */
    llavanext_vision_encoder_cancel(e);
    llavanext_vision_encoder_cancel(e);
    assert_int_equal(llavanext_vision_encoder_encode_pixels(&b, e, px), LLAVANEXT_E_ABORTED);
    assert_int_equal(llavanext_vision_encoder_encode_pixels(&b, e, px), LLAVANEXT_OK);
    assert_int_equal(llavanext_tensor_numel(a), llavanext_tensor_numel(b));
    assert_memory_equal(llavanext_tensor_data(a), llavanext_tensor_data(b), sizeof(float) * (size_t)llavanext_tensor_numel(a));
    llavanext_tensor_free(a);
    llavanext_tensor_free(b);
    llavanext_tensor_free(px);
    llavanext_vision_encoder_free(e);
    llavanext_frames_free(f);
}

static void greedy_tokens(llavanext_generator *g, int32_t *out, int n)
{
    for (int i = 0; i < n; i++) {
        out[i] = -1;
        llavanext_status st = llavanext_generator_next(g, NULL, NULL, &out[i]);
        if (st != LLAVANEXT_OK)
            fail_msg("next: %d %s", (int)st, llavanext_last_error());
    }
}

static void generator_cancel_before_a_call(void **s)
{
    (void)s;
    static const char prompt[] = "USER: What is in the box? ASSISTANT:";
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.temperature = 0;
    gp.max_new_tokens = 6;
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, &gp), LLAVANEXT_OK);
    int32_t want[6], got[6];
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    greedy_tokens(g, want, 6);

    /* before next(): that next fails, and the conversation continues as if it had not happened */
    llavanext_generator_reset(g);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    llavanext_generator_cancel(g);
    int32_t tok = 0;
    assert_int_equal(llavanext_generator_next(g, NULL, NULL, &tok), LLAVANEXT_E_ABORTED);
    printf("    %s\n", llavanext_last_error());
    assert_int_equal(tok, -1);
    greedy_tokens(g, got, 6);
    assert_memory_equal(got, want, sizeof got);

    /* before prefill() and score() */
    llavanext_generator_reset(g);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    llavanext_generator_cancel(g);
    assert_int_equal(llavanext_generator_prefill(g), LLAVANEXT_E_ABORTED);
    assert_int_equal(llavanext_generator_prefill(g), LLAVANEXT_OK);
    double lp;
    llavanext_generator_cancel(g);
    assert_int_equal(llavanext_generator_score(&lp, NULL, g, " yes", 4), LLAVANEXT_E_ABORTED);
    assert_int_equal(llavanext_generator_score(&lp, NULL, g, " yes", 4), LLAVANEXT_OK);

    /* between the tokens of a streamed answer: the next token fails, the one after continues */
    llavanext_generator_reset(g);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    greedy_tokens(g, got, 2);
    llavanext_generator_cancel(g);
    assert_int_equal(llavanext_generator_next(g, NULL, NULL, &tok), LLAVANEXT_E_ABORTED);
    greedy_tokens(g, got + 2, 4);
    assert_memory_equal(got, want, sizeof got);

    /* reset drops a pending cancel: a late cancel of a finished conversation spares the next */
    llavanext_generator_cancel(g);
    llavanext_generator_reset(g);
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    greedy_tokens(g, got, 6);
    assert_memory_equal(got, want, sizeof got);
    llavanext_generator_free(g);
}

/* ---- per-handle last error: read on another thread than the failed call's ---- */

typedef struct err_read {
    size_t (*get)(const void *h, char *buf, size_t size);
    const void *handle;
    char msg[1024];
    size_t len;
    char thread_msg[1024];
} err_read;

static void *read_error(void *p)
{
    err_read *r = p;
    r->len = r->get(r->handle, r->msg, sizeof r->msg);
    snprintf(r->thread_msg, sizeof r->thread_msg, "%s", llavanext_last_error());
    return NULL;
}

static void check_handle_error(size_t (*get)(const void *, char *, size_t), const void *h, const char *needle)
{
    err_read r;
    memset(&r, 0, sizeof r);
    r.get = get;
    r.handle = h;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, read_error, &r), 0);
    pthread_join(t, NULL);
    printf("    on another thread: \"%s\"\n", r.msg);
    assert_string_contains(r.msg, needle);
    assert_int_equal(r.len, strlen(r.msg));
    /* the other thread's own detail is not this call's */
    assert_null(strstr(r.thread_msg, needle));
    /* length query, and truncation to a small buffer */
    assert_int_equal(get(h, NULL, 0), r.len);
    char small[8];
    assert_int_equal(get(h, small, sizeof small), r.len);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static size_t get_model(const void *h, char *b, size_t n) { return llavanext_model_last_error(h, b, n); }
static size_t get_sampler(const void *h, char *b, size_t n) { return llavanext_frame_sampler_last_error(h, b, n); }
static size_t get_encoder(const void *h, char *b, size_t n) { return llavanext_vision_encoder_last_error(h, b, n); }
static size_t get_pooler(const void *h, char *b, size_t n) { return llavanext_pooler_last_error(h, b, n); }
static size_t get_generator(const void *h, char *b, size_t n) { return llavanext_generator_last_error(h, b, n); }

static void each_handle_keeps_its_last_error(void **s)
{
    (void)s;
    char buf[64];
    /* nothing failed yet; NULL handles */
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, NULL), LLAVANEXT_OK);
    assert_int_equal(llavanext_generator_last_error(g, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    assert_int_equal(llavanext_generator_last_error(NULL, buf, sizeof buf), 0);
    assert_int_equal(llavanext_model_last_error(NULL, NULL, 0), 0);

    /* generator: continuing before any prompt */
    assert_int_equal(llavanext_generator_next(g, NULL, NULL, NULL), LLAVANEXT_E_STATE);
    /* a later success leaves the message in place */
    static const char prompt[] = "USER: hi ASSISTANT:";
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    check_handle_error(get_generator, g, "nothing to continue from");
    llavanext_generator_free(g);

    /* model: a chat render with an unknown role type */
    char *out = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(llavanext_model_tokenize(&ids, &n, model, "\xff\xfe bad", 6, 0), LLAVANEXT_E_INVALID_ARGUMENT);
    check_handle_error(get_model, model, "UTF-8");
    (void)out;

    /* frame sampler: more frames than the video has */
    llavanext_frame_sampler *fs;
    assert_int_equal(llavanext_frame_sampler_open(&fs, tu_data("media/clip_h264_90x50_41f.mp4"), NULL), LLAVANEXT_OK);
    llavanext_frames *f = NULL;
    assert_int_equal(llavanext_frame_sampler_uniform(&f, fs, 100000), LLAVANEXT_E_INVALID_ARGUMENT);
    check_handle_error(get_sampler, fs, "100000");
    assert_int_equal(llavanext_frame_sampler_uniform(&f, fs, 2), LLAVANEXT_OK);

    /* encoder: a cancelled call */
    llavanext_vision_encoder *e;
    assert_int_equal(llavanext_vision_encoder_create(&e, model, NULL), LLAVANEXT_OK);
    llavanext_tensor *t = NULL;
    llavanext_vision_encoder_cancel(e);
    assert_int_equal(llavanext_vision_encoder_encode_video(&t, e, f), LLAVANEXT_E_ABORTED);
    check_handle_error(get_encoder, e, "cancelled");

    /* pooler: pooling a tensor of the wrong kind */
    llavanext_pooler *pl;
    assert_int_equal(llavanext_pooler_create(&pl, model, NULL), LLAVANEXT_OK);
    llavanext_tensor *bad;
    int64_t dims[3] = { 1, 2, 3 };
    float zeros[6] = { 0 };
    assert_int_equal(llavanext_tensor_create(&bad, LLAVANEXT_TENSOR_OTHER, 3, dims, zeros, 0, 0), LLAVANEXT_OK);
    assert_true(llavanext_pooler_pool(&t, pl, bad) < 0);
    check_handle_error(get_pooler, pl, "llavanext_pooler_pool");
    llavanext_tensor_free(bad);
    llavanext_pooler_free(pl);
    llavanext_vision_encoder_free(e);
    llavanext_frames_free(f);
    llavanext_frame_sampler_free(fs);
}

/* ---- fork: a child of a process that created (and ran) handles uses the library ---- */

static llavanext_frame_sampler *fork_sampler; /* opened and read (frame-threaded) in the parent */
static llavanext_frames *fork_frames;          /* what the parent read from it */

static int child_work(llavanext_generator *g, llavanext_vision_encoder *e, llavanext_frames *f, const int32_t *want,
                      const float *want_feat, int64_t feat_n)
{
    /* the parent's frame sampler: libav's decoder threads stayed in the parent */
    llavanext_frames *again;
    if (llavanext_frame_sampler_uniform(&again, fork_sampler, 6) != LLAVANEXT_OK)
        return 8;
    size_t fb = (size_t)llavanext_frames_width(again) * (size_t)llavanext_frames_height(again) * 3;
    int frames_same = llavanext_frames_count(again) == 6 &&
                      llavanext_frames_width(fork_frames) == llavanext_frames_width(again) &&
                      llavanext_frames_height(fork_frames) == llavanext_frames_height(again);
    for (int i = 0; frames_same && i < 6; i++)
        frames_same = memcmp(llavanext_frames_data(fork_frames, i), llavanext_frames_data(again, i), fb) == 0;
    llavanext_frames_free(again);
    if (!frames_same)
        return 9;
    static const char prompt[] = "USER: What is in the box? ASSISTANT:";
    int32_t got[6];
    /* the parent's generator, its pool's workers left behind in the parent */
    llavanext_generator_reset(g);
    if (llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0) != LLAVANEXT_OK)
        return 2;
    for (int i = 0; i < 6; i++)
        if (llavanext_generator_next(g, NULL, NULL, &got[i]) != LLAVANEXT_OK)
            return 3;
    if (memcmp(got, want, sizeof got) != 0)
        return 4;
    /* the parent's encoder, and a fresh generator */
    llavanext_tensor *t;
    if (llavanext_vision_encoder_encode_video(&t, e, f) != LLAVANEXT_OK)
        return 5;
    int same = llavanext_tensor_numel(t) == feat_n &&
               memcmp(llavanext_tensor_data(t), want_feat, sizeof(float) * (size_t)feat_n) == 0;
    llavanext_tensor_free(t);
    if (!same)
        return 6;
    llavanext_generator *g2;
    if (llavanext_generator_create(&g2, model, NULL) != LLAVANEXT_OK)
        return 7;
    llavanext_generator_free(g2);
    return 0;
}

static void forked_child_uses_the_library(void **s)
{
    (void)s;
    static const char prompt[] = "USER: What is in the box? ASSISTANT:";
    llavanext_generator_params gp;
    llavanext_generator_params_init(&gp, sizeof gp);
    gp.temperature = 0;
    gp.threads = 2;
    llavanext_generator *g;
    assert_int_equal(llavanext_generator_create(&g, model, &gp), LLAVANEXT_OK);
    int32_t want[6];
    assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
    greedy_tokens(g, want, 6);
    llavanext_frames *f = some_frames(4);
    llavanext_vision_encoder_params ep;
    llavanext_vision_encoder_params_init(&ep, sizeof ep);
    ep.threads = 2;
    llavanext_vision_encoder *e;
    assert_int_equal(llavanext_vision_encoder_create(&e, model, &ep), LLAVANEXT_OK);
    llavanext_tensor *feat;
    assert_int_equal(llavanext_vision_encoder_encode_video(&feat, e, f), LLAVANEXT_OK);
    llavanext_frame_sampler_params sp;
    llavanext_frame_sampler_params_init(&sp, sizeof sp);
    sp.threads = 2;
    assert_int_equal(llavanext_frame_sampler_open(&fork_sampler, tu_data("media/clip_h264_160x120_97f.mp4"), &sp),
                     LLAVANEXT_OK);
    assert_int_equal(llavanext_frame_sampler_uniform(&fork_frames, fork_sampler, 6), LLAVANEXT_OK);
    for (int round = 0; round < 2; round++) {
        fflush(stdout);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm(60); /* a hang shows as a child killed by SIGALRM */
            _exit(child_work(g, e, f, want, llavanext_tensor_data(feat), llavanext_tensor_numel(feat)));
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status))
            fail_msg("the forked child died of signal %d (14 = SIGALRM: it hung)", WTERMSIG(status));
        printf("    child %d exited with %d\n", round, WEXITSTATUS(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        /* and the parent goes on using the same handles */
        int32_t again[6];
        llavanext_generator_reset(g);
        assert_int_equal(llavanext_generator_append_prompt(g, prompt, strlen(prompt), NULL, 0), LLAVANEXT_OK);
        greedy_tokens(g, again, 6);
        assert_memory_equal(again, want, sizeof again);
    }
    llavanext_frames_free(fork_frames);
    llavanext_frame_sampler_free(fork_sampler);
    llavanext_tensor_free(feat);
    llavanext_vision_encoder_free(e);
    llavanext_frames_free(f);
    llavanext_generator_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(libav_messages_reach_the_log_callback),
        cmocka_unit_test(libav_messages_without_a_handle_logger),
        cmocka_unit_test(encoder_cancel_before_a_call),
        cmocka_unit_test(generator_cancel_before_a_call),
        cmocka_unit_test(each_handle_keeps_its_last_error),
        cmocka_unit_test(forked_child_uses_the_library),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
