/* llavanext-cli: ask a video (or an image) a question with a LLaVA-NeXT-Video checkpoint. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>


#include "cli.h"

static const char usage[] =
    "usage: llavanext-cli <command> [options]\n"
    "\n"
    "commands:\n"
    "  run         answer a prompt about videos and images (streams the answer to stdout)\n"
    "  chat        interactive conversation about one video (encoded once)\n"
    "  tokenize    print the token ids of a text\n"
    "  detokenize  print the text of token ids\n"
    "  render      print the chat template rendered for a conversation\n"
    "  info        describe a model or a media file as JSON\n"
    "  quantize    write a checkpoint with its weights in q8, q4 or bf16 (loads with no work)\n"
    "\n"
    "run options:\n"
    "  --model DIR           Hugging Face checkpoint directory (required)\n"
    "  --video FILE          a video; may repeat; --frames/--fps after it apply to it\n"
    "  --frames N            frames sampled uniformly from the preceding video (default 8)\n"
    "  --fps R               sample the preceding video at R frames per second instead\n"
    "  --image FILE          an image; may repeat\n"
    "  --prompt TEXT         the question (required)\n"
    "  --max-tokens N        most tokens to generate (default: generation config, else 256)\n"
    "  --temperature T       0 = greedy (default: generation config, else greedy)\n"
    "  --top-k K --top-p P --min-p P --repetition-penalty R --seed S\n"
    "  --threads N           worker threads (default: all CPUs)\n"
    "  --pool-stride S       spatial pooling stride for video frames (default: config)\n"
    "  --pool-mode MODE      average or max (default: config)\n"
    "  --rope-scale F|auto   RoPE linear scaling factor (default: config)\n"
    "  --context N           KV cache size in tokens (default: the scaled context length)\n"
    "  --fit                 reduce frames (or raise the pooling stride) to fit the context\n"
    "  --load read|mmap      how to load the weights (default mmap)\n"
    "  --precision P         f32 (default, matches the reference), bf16 (faster; needs\n"
    "                        AVX512-BF16) or auto (bf16 where the CPU has it)\n"
    "  --cache-dir DIR       reuse (and keep) video and image embeddings in DIR: a second\n"
    "                        question about the same media skips decoding and the vision tower\n"
    "  --weights W           stored (default), q8, q4 or bf16: weights converted on load\n"
    "                        (docs/quantization.md)\n"
    "  --kv-cache T          auto (default), f32, f16 or q8: how the KV cache stores keys\n"
    "                        and values (auto: f32 on the exact path, q8 with q4 weights,\n"
    "                        f16 otherwise)\n"
    "  --json                print one JSON object at the end instead of streaming\n"
    "  --dump FILE           write intermediate tensors to a safetensors file\n"
    "\n"
    "tokenize --model DIR [--no-bos] TEXT\n"
    "detokenize --model DIR ID...\n"
    "render --model DIR --messages FILE [--no-generation-prompt]\n"
    "info (--model DIR | --video FILE | --image FILE)\n"
    "quantize --model DIR --out DIR --weights q8|q4|bf16 [--threads N]\n"
    "\n"
    "  --help, --version\n";

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "llavanext-cli: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see llavanext-cli --help)\n");
    return CLI_USAGE;
}

int cli_lib_error(const char *what, llavanext_status st)
{
    fprintf(stderr, "llavanext-cli: %s: %s: %s\n", what, llavanext_status_string(st), llavanext_last_error());
    return CLI_FAIL;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

llavanext_model *cli_load_model(const char *dir, int32_t mode)
{
    return cli_load_model_precision(dir, mode, LLAVANEXT_PRECISION_F32);
}

llavanext_model *cli_load_model_precision(const char *dir, int32_t mode, int32_t precision)
{
    return cli_load_model_weights(dir, mode, precision, LLAVANEXT_WEIGHTS_STORED, 0);
}

llavanext_model *cli_load_model_weights(const char *dir, int32_t mode, int32_t precision, int32_t weights,
                                        int32_t threads)
{
    llavanext_model_params p;
    llavanext_model_params_init(&p, sizeof p);
    p.load_mode = mode;
    p.precision = precision;
    p.weights = weights;
    p.threads = threads;
    p.progress = cli_progress;
    llavanext_model *m = NULL;
    llavanext_status st = llavanext_model_load(&m, dir, &p);
    cli_progress_done();
    if (st != LLAVANEXT_OK) {
        cli_lib_error("loading the model", st);
        return NULL;
    }
    return m;
}

static void cli_log_errors(int32_t level, const char *message, void *user_data)
{
    (void)user_data;
    if (level == LLAVANEXT_LOG_ERROR)
        fprintf(stderr, "llavanext-cli: %s\n", message);
}

int main(int argc, char **argv)
{
    /* the library is silent unless given a logger: show its errors (libav's among them), keep
     * warnings and chatter out of the way of the progress display */
    llavanext_set_default_log(cli_log_errors, NULL);
    if (argc < 2)
        return cli_usage_error("no command given");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("llavanext-cli %s (library %s)\n", LLAVANEXT_VERSION_NUMBER >= 0 ? llavanext_version() : "", llavanext_version());
        return CLI_OK;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return CLI_OK;
        }
    }
    if (strcmp(cmd, "run") == 0)
        return cli_cmd_run(argc - 2, argv + 2, 0);
    if (strcmp(cmd, "chat") == 0)
        return cli_cmd_run(argc - 2, argv + 2, 1);
    if (strcmp(cmd, "tokenize") == 0)
        return cli_cmd_tokenize(argc - 2, argv + 2);
    if (strcmp(cmd, "detokenize") == 0)
        return cli_cmd_detokenize(argc - 2, argv + 2);
    if (strcmp(cmd, "render") == 0)
        return cli_cmd_render(argc - 2, argv + 2);
    if (strcmp(cmd, "info") == 0)
        return cli_cmd_info(argc - 2, argv + 2);
    if (strcmp(cmd, "quantize") == 0)
        return cli_cmd_quantize(argc - 2, argv + 2);
    return cli_usage_error("unknown command '%s'", cmd);
}
