/* Progress bars with stage timings on stderr, shown only when stderr is a terminal. */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

static const char *stage_names[] = { "loading", "sampling", "encoding", "prefill", "generating" };
static int32_t active = -1;
static double started;

int32_t cli_progress(int32_t stage, int64_t done, int64_t total, void *user_data)
{
    /* user_data, when given, points to a "muted" flag: a caller reporting the stage itself */
    if (user_data && *(const int *)user_data)
        return 0;
    if (!isatty(2) || stage < 0 || stage >= LLAVANEXT_STAGE_GENERATE)
        return 0;
    if (stage != active) {
        cli_progress_done();
        active = stage;
        started = cli_now();
    }
    int width = 30;
    int fill = total > 0 ? (int)(width * done / total) : 0;
    if (fill > width)
        fill = width;
    fprintf(stderr, "\r%-10s [", stage_names[stage]);
    for (int i = 0; i < width; i++)
        fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %lld/%lld %.1fs", (long long)done, (long long)total, cli_now() - started);
    fflush(stderr);
    return 0;
}

void cli_progress_done(void)
{
    if (active >= 0 && isatty(2))
        fputc('\n', stderr);
    active = -1;
}
