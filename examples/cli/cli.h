/* llavanext-cli: shared declarations. */
#ifndef LLAVANEXT_CLI_H
#define LLAVANEXT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "llavanext/llavanext.h"

#define CLI_MAX_MEDIA 32

/* Exit codes */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_media {
    int is_video;
    const char *path;
    int32_t frames; /* videos: uniform frame count (0 = default 8 unless fps given) */
    double fps;     /* videos: > 0 samples by frame rate (frames then caps the count) */
} cli_media;

typedef struct cli_run_opts {
    const char *model;
    cli_media media[CLI_MAX_MEDIA];
    int n_media;
    const char *prompt;
    int32_t max_tokens;
    float temperature;
    int32_t top_k;
    float top_p;
    float min_p;
    float repetition_penalty;
    uint64_t seed;
    int32_t threads;
    int32_t pool_stride;
    int32_t pool_mode;
    double rope_scale; /* 0 config, > 0 factor, < 0 auto */
    int64_t context;
    int json;
    const char *dump;
    int fit;
    int load_read;
    int32_t precision; /* llavanext_precision */
    const char *cache_dir; /* embedding cache directory, or NULL */
    int32_t weights;   /* llavanext_weights */
    int32_t kv_cache;  /* llavanext_kv_cache */
} cli_run_opts;

int cli_usage_error(const char *fmt, ...);
int cli_lib_error(const char *what, llavanext_status st);
double cli_now(void);

/* Progress bars on stderr (only when stderr is a terminal). user_data: NULL, or a pointer to an
 * int that mutes the reports while non-zero. */
int32_t cli_progress(int32_t stage, int64_t done, int64_t total, void *user_data);
void cli_progress_done(void);

int cli_cmd_run(int argc, char **argv, int chat);
int cli_cmd_tokenize(int argc, char **argv);
int cli_cmd_detokenize(int argc, char **argv);
int cli_cmd_render(int argc, char **argv);
int cli_cmd_info(int argc, char **argv);
int cli_cmd_quantize(int argc, char **argv);
/* "stored", "bf16", "q8", "q4" -> llavanext_weights; 0 when it is none of them. */
int cli_parse_weights(const char *v, int32_t *out);

/* Loads a model, printing the error on failure (NULL). */
llavanext_model *cli_load_model(const char *dir, int32_t mode);
/* The same with a compute precision (llavanext_precision). */
llavanext_model *cli_load_model_precision(const char *dir, int32_t mode, int32_t precision);
/* The same with a weight format (llavanext_weights) converted on load with `threads` threads. */
llavanext_model *cli_load_model_weights(const char *dir, int32_t mode, int32_t precision, int32_t weights,
                                        int32_t threads);

#endif
