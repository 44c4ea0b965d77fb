#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_DATA_DIR
#define FUZZ_DATA_DIR "tests/data"
#endif

const char *fuzz_data_path(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("LLAVANEXT_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : FUZZ_DATA_DIR, rel);
    return buf;
}
