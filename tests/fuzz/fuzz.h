/* What every fuzz target provides, and helpers they share. Each target is built two ways: with
 * clang's -fsanitize=fuzzer (libFuzzer supplies main) when the meson option `fuzzing` is on, and
 * with driver.c (which replays the seed corpus) otherwise. */
#ifndef LNX_FUZZ_H
#define LNX_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Path of a file under tests/data: $LLAVANEXT_TEST_DATA if set, else the source tree's copy
 * (FUZZ_DATA_DIR, set by meson). Returns a static buffer. */
const char *fuzz_data_path(const char *rel);

#endif
