/* HTTP over libmicrohttpd: one thread per connection, which authenticates, routes, reads the
 * body (capped), and for a chat completion queues a job and waits for it, answering with one
 * JSON document or a server-sent event stream. While it waits it watches its socket: a client
 * that closed its connection cancels its job. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "server.h"

#define WAIT_SLICE_MS 50

static const srv_config *C;
static llavanext_embedding_cache *CACHE;
static struct MHD_Daemon *D;
static atomic_int in_flight; /* requests begun and not yet completed (answered or dropped) */

typedef struct conn {
    char *body;
    size_t len, cap;
    int too_big;
    srv_job *job;
} conn;

/* ---- responses ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype, char *body)
{
    if (!body)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (status < 600)
        atomic_fetch_add(&g_metrics.http[status], 1);
    return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, char *body)
{
    return reply(c, status, "application/json", body);
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *type, const char *code,
                                   const char *message)
{
    return reply_json(c, status, error_body(message, type, code));
}

static enum MHD_Result reply_job_error(struct MHD_Connection *c, const srv_job *j)
{
    return reply_error(c, (unsigned)j->http_status, j->err_type, j->err_code, j->err_message);
}

/* ---- client liveness ---- */

static int conn_fd(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

/* The peer closed (or reset) the connection. Data it pipelined does not count as closing. */
static int client_gone(int fd)
{
    if (fd < 0)
        return 0;
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP))
        return 1;
    char b;
    return (p.revents & POLLIN) && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static void wait_slice(srv_job *j)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += WAIT_SLICE_MS * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&j->cv, &j->mu, &t);
}

/* Waits under j->mu until the job reaches `state`; 0, or -1 when the client went away. */
static int wait_for(srv_job *j, int state, int fd)
{
    while (j->state < state) {
        wait_slice(j);
        if (j->state < state && client_gone(fd)) {
            atomic_store(&j->cancel, 1);
            return -1;
        }
    }
    return 0;
}

/* ---- streaming ---- */

typedef struct stream {
    srv_job *job;
    int fd;
    char *pending;
    size_t plen, poff;
    size_t sent;
    int first_sent, finished;
} stream;

static void set_pending(stream *s, char *text)
{
    free(s->pending);
    s->pending = text;
    s->plen = text ? strlen(text) : 0;
    s->poff = 0;
}

static char *concat3(char *a, char *b, const char *c)
{
    size_t n = (a ? strlen(a) : 0) + (b ? strlen(b) : 0) + strlen(c) + 1;
    char *r = malloc(n);
    if (r)
        snprintf(r, n, "%s%s%s", a ? a : "", b ? b : "", c);
    free(a);
    free(b);
    return r;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *s = cls;
    srv_job *j = s->job;
    for (;;) {
        if (s->poff < s->plen) {
            size_t n = s->plen - s->poff < max ? s->plen - s->poff : max;
            memcpy(buf, s->pending + s->poff, n);
            s->poff += n;
            return (ssize_t)n;
        }
        if (s->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&j->mu);
        if (!s->first_sent) {
            set_pending(s, chat_chunk(j, C, "", 0, 1, NULL));
            s->first_sent = 1;
        } else if (s->sent < j->visible) {
            set_pending(s, chat_chunk(j, C, j->text + s->sent, j->visible - s->sent, 0, NULL));
            s->sent = j->visible;
        } else if (j->state == JOB_DONE) {
            s->finished = 1;
            if (j->finish == FINISH_CANCELLED) {
                pthread_mutex_unlock(&j->mu);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            if (j->finish == FINISH_ERROR) {
                char *e = error_body(j->err_message, j->err_type, j->err_code);
                set_pending(s, concat3(concat3(strdup("data: "), e, "\n\n"), NULL, "data: [DONE]\n\n"));
            } else {
                char *last = chat_chunk(j, C, NULL, 0, 0, chat_finish_name(j->finish));
                char *usage = j->include_usage ? chat_usage_chunk(j, C) : NULL;
                set_pending(s, concat3(last, usage, "data: [DONE]\n\n"));
            }
        } else {
            wait_slice(j);
            int moved = s->sent < j->visible || j->state == JOB_DONE;
            pthread_mutex_unlock(&j->mu);
            if (!moved && client_gone(s->fd)) {
                atomic_store(&j->cancel, 1);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            continue;
        }
        pthread_mutex_unlock(&j->mu);
        if (!s->pending)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static void stream_free(void *cls)
{
    stream *s = cls;
    pthread_mutex_lock(&s->job->mu);
    if (s->job->state != JOB_DONE || !s->finished)
        atomic_store(&s->job->cancel, 1); /* the connection ended before the stream did */
    pthread_mutex_unlock(&s->job->mu);
    job_release(s->job);
    free(s->pending);
    free(s);
}

static enum MHD_Result reply_stream(struct MHD_Connection *c, srv_job *j, int fd)
{
    stream *s = calloc(1, sizeof *s);
    if (!s)
        return MHD_NO;
    s->job = j;
    s->fd = fd;
    atomic_fetch_add(&j->refs, 1);
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (!r) {
        stream_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    atomic_fetch_add(&g_metrics.http[200], 1);
    return ret;
}

/* ---- endpoints ---- */

static enum MHD_Result chat_completions(struct MHD_Connection *c, conn *k)
{
    srv_job *j = job_new();
    if (!j)
        return reply_error(c, 500, "server_error", "no_memory", "out of memory");
    k->job = j;
    int bad = chat_parse(j, C, k->body ? k->body : "", k->len);
    free(k->body);
    k->body = NULL;
    if (bad)
        return reply_job_error(c, j);
    if (workers_submit(j) != 0)
        return reply_error(c, 503, "server_error", "queue_full",
                           "the server is busy: every slot is running and the queue is full; retry later");
    int fd = conn_fd(c);
    pthread_mutex_lock(&j->mu);
    int gone = wait_for(j, j->stream ? JOB_GENERATING : JOB_DONE, fd);
    pthread_mutex_unlock(&j->mu);
    if (gone)
        return MHD_NO;
    /* past this point the worker writes only text, counters and the final state under j->mu */
    pthread_mutex_lock(&j->mu);
    int state = j->state, finish = j->finish;
    pthread_mutex_unlock(&j->mu);
    if (state == JOB_DONE && finish == FINISH_ERROR)
        return reply_job_error(c, j);
    if (state == JOB_DONE && finish == FINISH_CANCELLED)
        return MHD_NO;
    if (j->stream)
        return reply_stream(c, j, fd);
    char *body = chat_response(j, C);
    if (!body)
        return reply_error(c, 500, "server_error", "internal_error", "the response could not be encoded");
    return reply_json(c, 200, body);
}

static enum MHD_Result models(struct MHD_Connection *c)
{
    json_t *o = json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id", C->model_id, "object",
                          "model", "created", (json_int_t)0, "owned_by", "libllavanext");
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return reply_json(c, 200, s);
}

static int authorized(struct MHD_Connection *c)
{
    if (!C->api_key)
        return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(C->api_key);
    unsigned diff = (unsigned)(a != b);
    for (size_t i = 0; i < a; i++)
        diff |= (unsigned char)h[i] ^ (unsigned char)C->api_key[i % (b ? b : 1)];
    return diff == 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    conn *k = *con_cls;
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k)
            return MHD_NO;
        *con_cls = k;
        atomic_fetch_add(&in_flight, 1);
        int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
        if (strcmp(url, "/health") == 0 || strcmp(url, "/v1/health") == 0)
            return get ? reply_json(c, 200, strdup("{\"status\":\"ok\"}"))
                       : reply_error(c, 405, "invalid_request_error", "method_not_allowed", "use GET");
        if (!authorized(c))
            return reply_error(c, 401, "authentication_error", "invalid_api_key",
                               "missing or wrong API key (send 'Authorization: Bearer KEY')");
        if (strcmp(url, "/v1/models") == 0)
            return get ? models(c) : reply_error(c, 405, "invalid_request_error", "method_not_allowed", "use GET");
        if (strcmp(url, "/metrics") == 0)
            return get ? reply(c, 200, "text/plain; version=0.0.4", metrics_render(CACHE, C->slots))
                       : reply_error(c, 405, "invalid_request_error", "method_not_allowed", "use GET");
        if (strcmp(url, "/v1/chat/completions") != 0)
            return reply_error(c, 404, "invalid_request_error", "not_found", "no such endpoint");
        if (!post)
            return reply_error(c, 405, "invalid_request_error", "method_not_allowed", "use POST");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)C->max_body_bytes)
            return reply_error(c, 413, "invalid_request_error", "request_too_large", "the request body is too large");
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (k->too_big || k->len + n > (size_t)C->max_body_bytes) {
            k->too_big = 1;
            return MHD_YES;
        }
        if (k->len + n + 1 > k->cap) {
            size_t cap = (k->len + n + 1) * 2;
            if (cap > (size_t)C->max_body_bytes + 1)
                cap = (size_t)C->max_body_bytes + 1;
            char *b = realloc(k->body, cap);
            if (!b)
                return MHD_NO;
            k->body = b;
            k->cap = cap;
        }
        memcpy(k->body + k->len, upload_data, n);
        k->len += n;
        k->body[k->len] = '\0';
        return MHD_YES;
    }
    if (k->too_big)
        return reply_error(c, 413, "invalid_request_error", "request_too_large", "the request body is too large");
    if (k->job) /* answered already */
        return MHD_YES;
    return chat_completions(c, k);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    conn *k = *con_cls;
    if (!k)
        return;
    if (k->job && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        atomic_store(&k->job->cancel, 1);
    job_release(k->job);
    free(k->body);
    free(k);
    *con_cls = NULL;
    atomic_fetch_sub(&in_flight, 1);
}

int http_start(const srv_config *cfg, llavanext_embedding_cache *cache, int *out_port)
{
    C = cfg;
    CACHE = cache;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    const char *host = strcmp(cfg->host, "localhost") == 0 ? "127.0.0.1" : cfg->host;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "llavanext-server: --host '%s' is not a numeric IPv4 or IPv6 address\n", cfg->host);
        return -1;
    }
    D = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                         MHD_OPTION_END);
    if (!D) {
        fprintf(stderr, "llavanext-server: cannot listen on %s port %d\n", cfg->host, cfg->port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(D, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    *out_port = cfg->port;
    if (di && getsockname(di->listen_fd, (struct sockaddr *)&bound, &bl) == 0)
        *out_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

void http_stop(void)
{
    if (!D)
        return;
    /* the answers the stopped workers left (a 503 for each queued job, a stream's last event) go
     * out before the connections are closed: up to 5 s for the requests under way to complete
     * (stopping at once closed a queued client's connection before its 503 was sent) */
    for (int i = 0; i < 500 && atomic_load(&in_flight) > 0; i++)
        nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
    MHD_stop_daemon(D);
    D = NULL;
}
