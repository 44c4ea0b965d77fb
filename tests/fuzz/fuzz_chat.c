/* llavanext-server's request parsing: the body of a chat-completions request through chat_parse
 * (JSON, messages, content parts, data: URLs, paths under a media root, sampling fields), then
 * the response and stream-chunk builders on whatever it produced; and the same bytes through the
 * base64 decoder. Nothing is queued: no model is needed. */
#include "fuzz.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static srv_config cfg;

static void setup(void)
{
    static char root[PATH_MAX];
    if (cfg.max_frames)
        return;
    if (!realpath(fuzz_data_path("media"), root))
        strcpy(root, "/nonexistent");
    cfg.roots[0] = root;
    cfg.n_roots = 1;
    cfg.max_media_bytes = 1 << 20;
    cfg.max_frames = 64;
    cfg.max_tokens = 4096;
    strcpy(cfg.model_id, "fuzz");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    srv_job *j = job_new();
    if (!j)
        return 0;
    if (chat_parse(j, &cfg, (const char *)data, size) == 0) {
        j->text = strdup("an answer");
        j->len = j->visible = j->text ? strlen(j->text) : 0;
        free(chat_response(j, &cfg));
        free(chat_chunk(j, &cfg, j->text, j->len, 1, NULL));
        free(chat_chunk(j, &cfg, NULL, 0, 0, chat_finish_name(j->finish)));
        free(chat_usage_chunk(j, &cfg));
    } else {
        free(error_body(j->err_message, j->err_type, j->err_code));
    }
    job_release(j);
    uint8_t *out = NULL;
    size_t n = 0;
    if (media_base64(&out, &n, (const char *)data, size, 1 << 16) == 0)
        free(out);
    return 0;
}
