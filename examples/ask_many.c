/* Encode a video once, ask several questions about it: the embeddings are kept and each
 * question starts a fresh conversation with them (no second pass through the vision tower).
 *   ask_many MODEL_DIR VIDEO FRAMES "question 1" "question 2" ... */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llavanext/llavanext.h>

static int fail(const char *what, llavanext_status st)
{
    fprintf(stderr, "%s: %s: %s\n", what, llavanext_status_string(st), llavanext_last_error());
    return 1;
}

/* One user turn holding the video and the question, as JSON (jansson escapes the text). */
static char *user_turn(const char *question)
{
    json_t *m = json_pack("[{s:s, s:[{s:s}, {s:s, s:s}]}]", "role", "user", "content", "type", "video", "type", "text",
                          "text", question);
    char *s = json_dumps(m, 0);
    json_decref(m);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL_DIR VIDEO FRAMES QUESTION...\n", argv[0]);
        return 2;
    }
    llavanext_model *model;
    llavanext_status st = llavanext_model_load(&model, argv[1], NULL);
    if (st != LLAVANEXT_OK)
        return fail("model", st);
    llavanext_frame_sampler *video = NULL;
    llavanext_frames *frames = NULL;
    llavanext_vision_encoder *enc = NULL;
    llavanext_pooler *pool = NULL;
    llavanext_tensor *features = NULL, *emb = NULL;
    llavanext_generator *gen = NULL;
    int rc = 1;
    if ((st = llavanext_frame_sampler_open(&video, argv[2], NULL)) != LLAVANEXT_OK ||
        (st = llavanext_frame_sampler_uniform(&frames, video, atoi(argv[3]))) != LLAVANEXT_OK ||
        (st = llavanext_vision_encoder_create(&enc, model, NULL)) != LLAVANEXT_OK ||
        (st = llavanext_vision_encoder_encode_video(&features, enc, frames)) != LLAVANEXT_OK ||
        (st = llavanext_pooler_create(&pool, model, NULL)) != LLAVANEXT_OK ||
        (st = llavanext_pooler_apply(&emb, pool, features)) != LLAVANEXT_OK ||
        (st = llavanext_generator_create(&gen, model, NULL)) != LLAVANEXT_OK) {
        rc = fail("encoding", st);
        goto out;
    }
    for (int q = 4; q < argc; q++) {
        char *msgs = user_turn(argv[q]), *prompt = NULL;
        const llavanext_tensor *media[1] = { emb };
        llavanext_generator_reset(gen); /* a fresh conversation; the cache memory is reused */
        st = llavanext_model_render_chat(&prompt, model, msgs, 1);
        if (st == LLAVANEXT_OK)
            st = llavanext_generator_append_prompt(gen, prompt, strlen(prompt), media, 1);
        printf("Q: %s\nA:", argv[q]);
        const char *piece;
        size_t len;
        while (st == LLAVANEXT_OK && (st = llavanext_generator_next(gen, &piece, &len, NULL)) == LLAVANEXT_OK)
            fwrite(piece, 1, len, stdout);
        printf("\n");
        llavanext_free(prompt);
        free(msgs);
        if (st != LLAVANEXT_DONE) {
            rc = fail("generation", st);
            goto out;
        }
    }
    rc = 0;
out:
    llavanext_generator_free(gen);
    llavanext_tensor_free(emb);
    llavanext_tensor_free(features);
    llavanext_pooler_free(pool);
    llavanext_vision_encoder_free(enc);
    llavanext_frames_free(frames);
    llavanext_frame_sampler_free(video);
    llavanext_model_free(model);
    return rc;
}
