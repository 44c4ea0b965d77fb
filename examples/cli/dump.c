#include "dump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

struct cli_dump {
    lnx_st_writer *w;
    int videos, images;
    int failed;
};

cli_dump *cli_dump_create(void)
{
    cli_dump *d = calloc(1, sizeof *d);
    if (d && lnx_st_writer_create(&d->w) != LNX_OK) {
        free(d);
        d = NULL;
    }
    if (!d)
        fprintf(stderr, "llavanext-cli: out of memory\n");
    return d;
}

void cli_dump_free(cli_dump *d)
{
    if (!d)
        return;
    lnx_st_writer_free(d->w);
    free(d);
}

static void add(cli_dump *d, const char *base, int nth, lnx_st_dtype dt, int32_t ndim, const int64_t *dims,
                const void *data)
{
    char name[128];
    if (nth > 0)
        snprintf(name, sizeof name, "%s_%d", base, nth);
    else
        snprintf(name, sizeof name, "%s", base);
    if (lnx_st_writer_add(d->w, name, dt, ndim, dims, data) != LNX_OK)
        d->failed = 1;
}

/* A tensor with an optional leading batch dimension of 1 (as the processor outputs have). */
static void add_tensor(cli_dump *d, const char *base, int nth, const llavanext_tensor *t, int batch)
{
    if (!t)
        return;
    int64_t dims[9];
    int32_t nd = 0;
    if (batch)
        dims[nd++] = 1;
    for (int32_t i = 0; i < llavanext_tensor_ndim(t); i++)
        dims[nd++] = llavanext_tensor_dim(t, i);
    add(d, base, nth, LNX_ST_F32, nd, dims, llavanext_tensor_data(t));
}

void cli_dump_media(cli_dump *d, int is_video, const llavanext_frames *f, const llavanext_tensor *pixels,
                    const llavanext_tensor *features, const llavanext_tensor *mid, const llavanext_tensor *emb)
{
    if (!d)
        return;
    int32_t n = llavanext_frames_count(f);
    int64_t fdims[4] = { n, llavanext_frames_height(f), llavanext_frames_width(f), 3 };
    if (is_video) {
        int nth = d->videos++;
        int64_t *idx = malloc(sizeof *idx * (size_t)(n ? n : 1));
        for (int32_t i = 0; idx && i < n; i++)
            idx[i] = llavanext_frames_source_index(f, i);
        if (idx)
            add(d, "frame_indices", nth, LNX_ST_I64, 1, fdims, idx);
        free(idx);
        add(d, "video_frames_rgb24", nth, LNX_ST_U8, 4, fdims, llavanext_frames_data(f, 0));
        add_tensor(d, "pixel_values_videos", nth, pixels, 1);
        add_tensor(d, "video_selected_features", nth, features, 0);
        /* LLaVA-OneVision projects first, then resizes ("pools") the projected grid */
        int projected_first = mid && llavanext_tensor_kind(mid) == LLAVANEXT_TENSOR_VIDEO_PROJECTED;
        add_tensor(d, projected_first ? "video_projected_features" : "video_pooled_features", nth, mid, 0);
        add_tensor(d, projected_first ? "video_pooled_features" : "video_projected_features", nth, emb, 0);
    } else {
        int nth = d->images++;
        add(d, "image_rgb24", nth, LNX_ST_U8, 3, fdims + 1, llavanext_frames_data(f, 0));
        int64_t sizes[2] = { llavanext_tensor_image_height(pixels), llavanext_tensor_image_width(pixels) };
        int64_t sdims[2] = { 1, 2 };
        add(d, "image_sizes", nth, LNX_ST_I64, 2, sdims, sizes);
        add_tensor(d, "pixel_values", nth, pixels, 1);
        add_tensor(d, "image_selected_features", nth, features, 0);
        add_tensor(d, "image_projected_features", nth, mid, 0);
        add_tensor(d, "image_packed_features", nth, emb, 0);
    }
}

void cli_dump_prompt(cli_dump *d, const int32_t *ids, int64_t n, const float *logits, int32_t vocab)
{
    if (!d)
        return;
    int64_t *wide = malloc(sizeof *wide * (size_t)(n ? n : 1));
    if (!wide) {
        d->failed = 1;
        return;
    }
    for (int64_t i = 0; i < n; i++)
        wide[i] = ids[i];
    int64_t dims[2] = { 1, n };
    add(d, "input_ids", 0, LNX_ST_I64, 2, dims, wide);
    free(wide);
    int64_t vd[1] = { vocab };
    add(d, "logits_last", 0, LNX_ST_F32, 1, vd, logits);
}

int cli_dump_save(cli_dump *d, const char *path)
{
    if (d->failed) {
        fprintf(stderr, "llavanext-cli: --dump: %s\n", lnx_last_error());
        return -1;
    }
    if (lnx_st_writer_save(d->w, path) != LNX_OK) {
        fprintf(stderr, "llavanext-cli: --dump: %s\n", lnx_last_error());
        return -1;
    }
    return 0;
}
