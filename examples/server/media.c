/* Media of a request: data: URLs (base64), and files named by file:// URLs or plain paths,
 * which are read only when they resolve to a regular file under one of the --media-root
 * directories. Everything is read into memory (capped), so the worker opens exactly the bytes
 * that were checked and hashes them for the embedding cache. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int media_base64(uint8_t **out, size_t *out_len, const char *s, size_t len, size_t max_out)
{
    *out = NULL;
    *out_len = 0;
    if (len / 4 * 3 > max_out + 3)
        return -2;
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf)
        return -1;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) { /* a foreign character, or data after the padding */
            free(buf);
            return -1;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6 || pad > 2 || n > max_out) { /* a lone trailing character, or too much */
        free(buf);
        return n > max_out ? -2 : -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

static int from_data_url(srv_media *m, srv_job *job, const srv_config *cfg, const char *url)
{
    const char *comma = strchr(url, ',');
    if (!comma) {
        job_fail(job, 400, "invalid_request_error", "invalid_media", "a data: URL needs a ',' before its data");
        return -1;
    }
    size_t meta = (size_t)(comma - url);
    if (meta < 7 || memcmp(comma - 7, ";base64", 7) != 0) {
        job_fail(job, 400, "invalid_request_error", "invalid_media", "only base64 data: URLs are accepted (data:<type>;base64,...)");
        return -1;
    }
    int r = media_base64(&m->data, &m->size, comma + 1, strlen(comma + 1), (size_t)cfg->max_media_bytes);
    if (r == -2) {
        job_fail(job, 413, "invalid_request_error", "media_too_large", "a media item is larger than the server's limit of %lld bytes",
                 (long long)cfg->max_media_bytes);
        return -1;
    }
    if (r != 0 || m->size == 0) {
        free(m->data);
        m->data = NULL;
        job_fail(job, 400, "invalid_request_error", "invalid_media", "the data: URL's base64 data is malformed or empty");
        return -1;
    }
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* file:///abs/path or file://localhost/abs/path, percent-decoded. */
static int file_url_path(char *out, size_t size, const char *url)
{
    const char *p = url + 7;
    if (strncmp(p, "localhost/", 10) == 0)
        p += 9;
    if (*p != '/')
        return -1;
    size_t n = 0;
    for (; *p; p++) {
        char c = *p;
        if (c == '%') {
            int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
            if (lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            p += 2;
        }
        if (c == '\0' || n + 1 >= size)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return 0;
}

static int under_root(const char *real, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return 1;
    return strncmp(real, root, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

static int from_path(srv_media *m, srv_job *job, const srv_config *cfg, const char *path)
{
    if (cfg->n_roots == 0) {
        job_fail(job, 403, "permission_error", "media_path_not_allowed",
                 "this server reads no local files (start it with --media-root DIR); send media as a data: URL");
        return -1;
    }
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        job_fail(job, 403, "permission_error", "media_path_not_allowed", "the media path is not under a --media-root of this server");
        return -1;
    }
    int ok = 0;
    for (int i = 0; i < cfg->n_roots && !ok; i++)
        ok = under_root(real, cfg->roots[i]);
    if (!ok) {
        /* the same message whether or not the file exists: no probing outside the roots */
        job_fail(job, 403, "permission_error", "media_path_not_allowed", "the media path is not under a --media-root of this server");
        return -1;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        if (fd >= 0)
            close(fd);
        job_fail(job, 400, "invalid_request_error", "invalid_media", "the media path is not a readable regular file");
        return -1;
    }
    if (sb.st_size > cfg->max_media_bytes || sb.st_size == 0) {
        close(fd);
        job_fail(job, sb.st_size ? 413 : 400, "invalid_request_error", sb.st_size ? "media_too_large" : "invalid_media",
                 "the media file has %lld bytes (limit %lld)", (long long)sb.st_size, (long long)cfg->max_media_bytes);
        return -1;
    }
    m->data = malloc((size_t)sb.st_size);
    size_t got = 0;
    while (m->data && got < (size_t)sb.st_size) {
        ssize_t r = read(fd, m->data + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!m->data || got != (size_t)sb.st_size) {
        free(m->data);
        m->data = NULL;
        job_fail(job, 500, "server_error", "io_error", "reading the media file failed");
        return -1;
    }
    m->size = got;
    return 0;
}

int media_load(srv_media *m, srv_job *job, const srv_config *cfg, const char *url)
{
    if (strncmp(url, "data:", 5) == 0)
        return from_data_url(m, job, cfg, url);
    if (strncmp(url, "file://", 7) == 0) {
        char path[PATH_MAX];
        if (file_url_path(path, sizeof path, url) != 0) {
            job_fail(job, 400, "invalid_request_error", "invalid_media", "malformed file:// URL (file:///absolute/path)");
            return -1;
        }
        return from_path(m, job, cfg, path);
    }
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
        job_fail(job, 400, "invalid_request_error", "unsupported_media_url",
                 "this server does not fetch remote URLs; send the media as a data: URL");
        return -1;
    }
    if (strstr(url, "://") || !*url) {
        job_fail(job, 400, "invalid_request_error", "unsupported_media_url", "unsupported media URL (data:, file:// or a path)");
        return -1;
    }
    return from_path(m, job, cfg, url);
}
