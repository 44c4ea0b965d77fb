/* Standalone replay driver: runs LLVMFuzzerTestOneInput once on every file named on the command
 * line (directories are walked, one level), so that the seed corpus and every crash input kept
 * there are replayed by an ordinary compiler in ordinary test runs. libFuzzer replaces this file
 * when the meson option `fuzzing` is on. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) != 0) {
        fprintf(stderr, "%s: cannot open\n", path);
        if (f)
            fclose(f);
        return 1;
    }
    /* an exact-size buffer, so that reads past the end are caught by the sanitizers */
    size_t len = (size_t)sb.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    int ok = buf && fread(buf, 1, len, f) == len;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        return 1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file in `dir`, in name order; returns the number of files run or -1. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char **nn = realloc(names, (n + 1) * sizeof *names);
        if (!nn)
            break;
        names = nn;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    int ran = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (names[i] && stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            failed |= run_file(path);
            ran++;
        }
        free(names[i]);
    }
    free(names);
    return failed ? -1 : ran;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "%s: not found\n", argv[i]);
            return 1;
        }
        int n = S_ISDIR(sb.st_mode) ? run_dir(argv[i]) : (run_file(argv[i]) ? -1 : 1);
        if (n < 0)
            return 1;
        total += n;
    }
    printf("%s: replayed %d inputs\n", argc > 0 ? argv[0] : "driver", total);
    /* an empty corpus means a broken checkout, not a pass */
    return total > 0 ? 0 : 1;
}
