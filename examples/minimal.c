/* The five handles wired by hand: ask one question about a video.
 *   minimal MODEL_DIR VIDEO "question" */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llavanext/llavanext.h>

static int fail(const char *what, llavanext_status st)
{
    fprintf(stderr, "%s: %s: %s\n", what, llavanext_status_string(st), llavanext_last_error());
    return 1;
}

static int32_t print_piece(const char *piece, size_t len, int32_t token, void *user_data)
{
    (void)token;
    (void)user_data;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0; /* go on */
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL_DIR VIDEO QUESTION\n", argv[0]);
        return 2;
    }
    llavanext_model *model = NULL;
    llavanext_frame_sampler *video = NULL;
    llavanext_frames *frames = NULL;
    llavanext_vision_encoder *encoder = NULL;
    llavanext_pooler *pooler = NULL;
    llavanext_generator *generator = NULL;
    llavanext_tensor *features = NULL, *embeddings = NULL;
    char *messages = NULL, *prompt = NULL;
    llavanext_status st;
    int rc = 1;

    /* 1. the checkpoint (shared, read-only) */
    if ((st = llavanext_model_load(&model, argv[1], NULL)) != LLAVANEXT_OK) {
        rc = fail("model", st);
        goto out;
    }
    /* 2. eight frames spread over the video, as the reference samples them */
    if ((st = llavanext_frame_sampler_open(&video, argv[2], NULL)) != LLAVANEXT_OK ||
        (st = llavanext_frame_sampler_uniform(&frames, video, 8)) != LLAVANEXT_OK) {
        rc = fail("video", st);
        goto out;
    }
    /* 3. CLIP features, then pooled and projected into the LLM's embedding space */
    if ((st = llavanext_vision_encoder_create(&encoder, model, NULL)) != LLAVANEXT_OK ||
        (st = llavanext_vision_encoder_encode_video(&features, encoder, frames)) != LLAVANEXT_OK ||
        (st = llavanext_pooler_create(&pooler, model, NULL)) != LLAVANEXT_OK ||
        (st = llavanext_pooler_apply(&embeddings, pooler, features)) != LLAVANEXT_OK) {
        rc = fail("vision", st);
        goto out;
    }
    /* 4. the prompt, rendered by the checkpoint's own chat template */
    const char *fmt = "[{\"role\": \"user\", \"content\": [{\"type\": \"video\"}, {\"type\": \"text\", \"text\": \"%s\"}]}]";
    messages = malloc(strlen(fmt) + strlen(argv[3]) + 1);
    sprintf(messages, fmt, argv[3]); /* (a real host escapes the question as JSON) */
    if ((st = llavanext_model_render_chat(&prompt, model, messages, 1)) != LLAVANEXT_OK) {
        rc = fail("template", st);
        goto out;
    }
    /* 5. the conversation: <video> in the prompt is replaced by the embeddings */
    const llavanext_tensor *media[1] = { embeddings };
    if ((st = llavanext_generator_create(&generator, model, NULL)) != LLAVANEXT_OK ||
        (st = llavanext_generator_append_prompt(generator, prompt, strlen(prompt), media, 1)) != LLAVANEXT_OK ||
        (st = llavanext_generator_generate(generator, print_piece, NULL)) != LLAVANEXT_OK) {
        rc = fail("generate", st);
        goto out;
    }
    printf("\n");
    rc = 0;
out:
    llavanext_free(prompt);
    free(messages);
    llavanext_tensor_free(embeddings);
    llavanext_tensor_free(features);
    llavanext_generator_free(generator);
    llavanext_pooler_free(pooler);
    llavanext_vision_encoder_free(encoder);
    llavanext_frames_free(frames);
    llavanext_frame_sampler_free(video);
    llavanext_model_free(model);
    return rc;
}
