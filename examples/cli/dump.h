/* --dump: intermediate tensors written to a safetensors file under the reference fixtures'
 * tensor names. */
#ifndef LLAVANEXT_CLI_DUMP_H
#define LLAVANEXT_CLI_DUMP_H

#include "llavanext/llavanext.h"

typedef struct cli_dump cli_dump;

cli_dump *cli_dump_create(void);
void cli_dump_free(cli_dump *d);
/* One medium's stages: frames, pixels, features, pooled (video) or projected (image), embeddings. */
void cli_dump_media(cli_dump *d, int is_video, const llavanext_frames *f, const llavanext_tensor *pixels,
                    const llavanext_tensor *features, const llavanext_tensor *mid, const llavanext_tensor *emb);
void cli_dump_prompt(cli_dump *d, const int32_t *ids, int64_t n, const float *logits, int32_t vocab);
/* 0 on success (prints the error otherwise). */
int cli_dump_save(cli_dump *d, const char *path);

#endif
