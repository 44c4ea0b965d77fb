/* tokenize, detokenize, render, info: commands that need only config, tokenizer and template
 * (or a media file). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* --model DIR anywhere in argv; returns the remaining positional arguments' count. */
static int take_model(int argc, char **argv, const char **model, char **rest, int *nrest, int *no_bos,
                      int allow_no_bos)
{
    *nrest = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("--model needs a directory");
            *model = argv[++i];
        } else if (allow_no_bos && strcmp(argv[i], "--no-bos") == 0) {
            *no_bos = 1;
        } else if (strcmp(argv[i], "--") == 0) {
            while (++i < argc)
                rest[(*nrest)++] = argv[i];
        } else if (strncmp(argv[i], "--", 2) == 0 && argv[i][2]) {
            return cli_usage_error("unknown option '%s'", argv[i]);
        } else {
            rest[(*nrest)++] = argv[i];
        }
    }
    if (!*model)
        return cli_usage_error("--model DIR is required");
    return CLI_OK;
}

int cli_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest, no_bos = 0;
    int rc = take_model(argc, argv, &model, rest, &nrest, &no_bos, 1);
    if (rc == CLI_OK && nrest != 1)
        rc = cli_usage_error("tokenize takes exactly one TEXT argument (got %d)", nrest);
    llavanext_model *m = rc == CLI_OK ? cli_load_model(model, LLAVANEXT_LOAD_NO_WEIGHTS) : NULL;
    if (rc == CLI_OK && !m)
        rc = CLI_FAIL;
    if (rc == CLI_OK) {
        int32_t *ids;
        size_t n;
        llavanext_status st = llavanext_model_tokenize(&ids, &n, m, rest[0], strlen(rest[0]), !no_bos);
        if (st != LLAVANEXT_OK) {
            rc = cli_lib_error("tokenize", st);
        } else {
            for (size_t i = 0; i < n; i++)
                printf(i ? " %d" : "%d", (int)ids[i]);
            printf("\n");
            llavanext_free(ids);
        }
    }
    llavanext_model_free(m);
    free(rest);
    return rc;
}

int cli_cmd_detokenize(int argc, char **argv)
{
    const char *model = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest, unused = 0;
    int rc = take_model(argc, argv, &model, rest, &nrest, &unused, 0);
    int32_t *ids = calloc((size_t)argc + 1, sizeof *ids);
    for (int i = 0; rc == CLI_OK && i < nrest; i++) {
        char *end;
        errno = 0;
        long v = strtol(rest[i], &end, 10);
        if (errno || *end || end == rest[i] || v < 0 || v > INT32_MAX)
            rc = cli_usage_error("'%s' is not a token id", rest[i]);
        ids[i] = (int32_t)v;
    }
    llavanext_model *m = rc == CLI_OK ? cli_load_model(model, LLAVANEXT_LOAD_NO_WEIGHTS) : NULL;
    if (rc == CLI_OK && !m)
        rc = CLI_FAIL;
    if (rc == CLI_OK) {
        char *text;
        llavanext_status st = llavanext_model_detokenize(&text, m, ids, (size_t)nrest, 0);
        if (st != LLAVANEXT_OK) {
            rc = cli_lib_error("detokenize", st);
        } else {
            printf("%s\n", text);
            llavanext_free(text);
        }
    }
    llavanext_model_free(m);
    free(ids);
    free(rest);
    return rc;
}

int cli_cmd_render(int argc, char **argv)
{
    const char *model = NULL, *messages = NULL;
    int gen = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            model = argv[++i];
        else if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc)
            messages = argv[++i];
        else if (strcmp(argv[i], "--no-generation-prompt") == 0)
            gen = 0;
        else
            return cli_usage_error("render: unexpected argument '%s'", argv[i]);
    }
    if (!model || !messages)
        return cli_usage_error("render needs --model DIR and --messages FILE");
    FILE *f = strcmp(messages, "-") == 0 ? stdin : fopen(messages, "rb");
    if (!f) {
        fprintf(stderr, "llavanext-cli: %s: %s\n", messages, strerror(errno));
        return CLI_FAIL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    if (f != stdin)
        fclose(f);
    if (!buf)
        return CLI_FAIL;
    buf[len] = '\0';
    llavanext_model *m = cli_load_model(model, LLAVANEXT_LOAD_NO_WEIGHTS);
    int rc = CLI_FAIL;
    if (m) {
        char *out;
        llavanext_status st = llavanext_model_render_chat(&out, m, buf, gen);
        if (st == LLAVANEXT_OK) {
            fputs(out, stdout);
            llavanext_free(out);
            rc = CLI_OK;
        } else {
            rc = cli_lib_error("render", st);
        }
    }
    llavanext_model_free(m);
    free(buf);
    return rc;
}

static int info_media(const char *path)
{
    llavanext_frame_sampler *s;
    llavanext_status st = llavanext_frame_sampler_open(&s, path, NULL);
    if (st != LLAVANEXT_OK)
        return cli_lib_error(path, st);
    llavanext_media_info mi;
    mi.struct_size = sizeof mi;
    st = llavanext_frame_sampler_info(&mi, s);
    llavanext_frame_sampler_free(s);
    if (st != LLAVANEXT_OK)
        return cli_lib_error(path, st);
    json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:I, s:b, s:f, s:i, s:i, s:i, s:b}", "path", path, "container",
                          mi.container, "codec", mi.codec, "duration", mi.duration, "frames", (json_int_t)mi.frame_count,
                          "frames_exact", mi.frame_count_exact, "fps", mi.fps, "width", (int)mi.width, "height",
                          (int)mi.height, "rotation", (int)mi.rotation, "is_image", mi.is_image);
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text);
    free(text);
    json_decref(o);
    return CLI_OK;
}

int cli_cmd_info(int argc, char **argv)
{
    if (argc != 2)
        return cli_usage_error("info takes --model DIR, --video FILE or --image FILE");
    if (strcmp(argv[0], "--video") == 0 || strcmp(argv[0], "--image") == 0)
        return info_media(argv[1]);
    if (strcmp(argv[0], "--model") != 0)
        return cli_usage_error("info: unknown option '%s'", argv[0]);
    llavanext_model *m = cli_load_model(argv[1], LLAVANEXT_LOAD_NO_WEIGHTS);
    if (!m)
        return CLI_FAIL;
    char *text;
    llavanext_status st = llavanext_model_describe(&text, m);
    int rc = CLI_OK;
    if (st == LLAVANEXT_OK) {
        printf("%s\n", text);
        llavanext_free(text);
    } else {
        rc = cli_lib_error("info", st);
    }
    llavanext_model_free(m);
    return rc;
}
