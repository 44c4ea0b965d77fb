/* Opening the files of a checkpoint safely: only regular files (a FIFO, device or directory is
 * refused before anything could block on it), and path joins that fail instead of truncating. */
#ifndef LNX_IO_FILE_H
#define LNX_IO_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "status.h"

/* Opens `path` read-only; LNX_E_IO naming the path when it cannot be opened or is not a regular
 * file. The open itself does not block on a FIFO. *size receives the file's size (may be NULL). */
lnx_status lnx_open_regular(const char *path, int *out_fd, off_t *size);

/* The same as a stdio stream ("rb"). */
lnx_status lnx_fopen_regular(const char *path, FILE **out);

/* 1 when something exists at `path` (of any type, so that a FIFO or directory standing where a
 * file is expected is reported by the loader instead of being taken for an absent file). */
int lnx_path_exists(const char *path);

/* buf = dir + "/" + name; LNX_E_INVALID ("path too long") when it does not fit in cap bytes. */
lnx_status lnx_path_join(char *buf, size_t cap, const char *dir, const char *name);

#endif
