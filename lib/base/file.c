#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a plain file";
}

lnx_status lnx_open_regular(const char *path, int *out_fd, off_t *size)
{
    *out_fd = -1;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return lnx_error(LNX_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return lnx_error(LNX_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return lnx_error(LNX_E_IO, "%s: not a regular file (it is %s)", path, kind_of(sb.st_mode));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    if (size)
        *size = sb.st_size;
    *out_fd = fd;
    return LNX_OK;
}

lnx_status lnx_fopen_regular(const char *path, FILE **out)
{
    *out = NULL;
    int fd;
    LNX_TRY(lnx_open_regular(path, &fd, NULL));
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return lnx_error(LNX_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    *out = f;
    return LNX_OK;
}

int lnx_path_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

lnx_status lnx_path_join(char *buf, size_t cap, const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    if (dl + 1 + nl + 1 > cap) {
        if (cap)
            buf[0] = '\0';
        return lnx_error(LNX_E_INVALID, "path too long (%zu bytes, the limit is %zu): %.*s.../%s", dl + 1 + nl, cap - 1,
                         dl > 64 ? 64 : (int)dl, dir, nl > 64 ? "(a long name)" : name);
    }
    memcpy(buf, dir, dl);
    buf[dl] = '/';
    memcpy(buf + dl + 1, name, nl + 1);
    return LNX_OK;
}
