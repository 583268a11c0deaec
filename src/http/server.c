/* server: the HTTP server on libmicrohttpd (MHD 0.9.75).
 *
 * Design note
 * -----------
 * MHD runs a pool of threads, each with its own epoll loop; a request is
 * handled entirely on the thread that owns its connection, so the handler
 * code is single-threaded per request. Per-request state (struct req_ctx:
 * arena, request, response, body buffer) is created in the URI-log callback
 * (the first thing MHD calls for a request, with the raw URI) and freed in
 * the request-completed callback, which is also where the access log line is
 * written (duration covers sending the answer).
 *
 * The access handler is called (1) once when the headers are in, (2) once
 * per body chunk, (3) once more with no data. Step (1) checks the path and
 * Content-Length: a declared body above max_body_bytes is answered 413 at
 * once without reading it (MHD then closes the connection). Chunked bodies
 * are counted as they come; past the limit nothing more is stored and the
 * answer becomes 413, sent after the last chunk because MHD 0.9.75 refuses
 * a response mid-upload; a client that keeps streaming past twice the
 * limit is disconnected without an answer (see body_chunk()). Step (3) routes
 * and runs client rate limit -> authenticate -> rate limit -> handler, then
 * renders.
 *
 * Paths: MHD's own decoded url is ignored; the raw path (from the URI-log
 * callback) is decoded strictly here: an invalid %-escape, %00, control
 * bytes, invalid UTF-8, "//", "." or ".." segments are 400 invalid_path;
 * a raw path over 2048 bytes is 414 uri_too_long. %2F decodes to '/' and
 * then acts as a separator. A trailing slash is allowed here and routes to
 * 404 (the router never matches it). The MHD unescape callback is used for
 * query arguments only (MHD applies it to both; we do not read its url):
 * valid %XX escapes are decoded, anything else (bad escapes, %00) is left
 * as it was, so a query value never contains a NUL. (Both decoders live in
 * path.c, which fuzz/fuzz_http_path.c drives.)
 *
 * Oversized request headers: the connection memory limit is sized from
 * max_header_bytes; MHD itself answers a request line or header block that
 * does not fit with 414 / 431 (its own small HTML body, no X-Request-Id)
 * and closes the connection; our handler never sees such a request.
 *
 * Shutdown: http_server_quiesce() closes the listening socket (MHD keeps
 * serving open connections); http_server_stop() waits for in-flight
 * requests to complete, then MHD_stop_daemon() closes idle keep-alive
 * connections and joins the threads. */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "http/path.h"
#include "http/reaper.h"

#define REQUEST_ID_MAX 64
#define BODY_INITIAL_CAP 4096
#define DEFER_STOP_GRACE_US (30 * 1000000LL)
#define ARENA_BASE_LIMIT ((size_t)16 << 20)
#define JSON_CONTENT_TYPE "application/json; charset=utf-8"

struct http_server {
	struct MHD_Daemon *daemon;
	struct http_server_options opt; /* pointers are the caller's */
	int port;
	atomic_bool quiesced;
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t in_flight;
	atomic_uint_fast64_t open_connections;
	atomic_uint_fast64_t deferred;  /* deferred, not yet completed */
	struct reaper *reaper;          /* deadline for receiving a request */
};

/* A deferred request's hand-off between its handler (MHD thread) and the
 * completer (any thread); see http_defer() in http.h. */
enum defer_state { DEFER_NONE = 0, DEFER_PENDING, DEFER_SUSPENDED, DEFER_DONE };
struct http_deferred {
	pthread_mutex_t mu;
	enum defer_state state;         /* guarded by mu */
	struct MHD_Connection *conn;
	struct req_ctx *rc;
};

/* One request, from the URI-log callback to the completed callback. */
struct req_ctx {
	struct http_server *srv;
	struct arena arena;
	struct http_request req;
	struct http_response res;
	int64_t start_us;
	const char *raw_path;      /* arena copy, no query string; for logs */
	char *body;                /* malloc'd, NUL-terminated */
	size_t body_len, body_cap;
	size_t body_seen;          /* body bytes received, stored or not */
	bool started;              /* first access-handler call done */
	bool early;                /* res already decided (path error...) */
	bool too_large;            /* body passed max_body_bytes */
	bool queued;               /* a response was queued */
	int status;                /* what was queued, for the access log */
	size_t bytes;              /* response body bytes */
	char request_id[REQUEST_ID_MAX + 1];
	char client_ip[INET6_ADDRSTRLEN];
	bool deferred;                  /* http_defer() called (MHD thread only) */
	struct http_deferred defer;
};

/* ---------------------------------------------------------------- helpers */

/* The connection's reaper entry (its socket context); NULL when none. */
static struct reaper_conn *conn_watch(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

/* MHD unescape callback (query keys and values): http_query_unescape. */
static size_t unescape_query(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return http_query_unescape(s);
}

static bool request_id_acceptable(const char *s)
{
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n == 0 || n > REQUEST_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

static void request_id_assign(struct req_ctx *rc, struct MHD_Connection *conn)
{
	static atomic_uint_fast64_t fallback_counter;
	const char *client = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
	size_t n;

	if (request_id_acceptable(client)) {
		n = strlen(client);
		memcpy(rc->request_id, client, n + 1);
		return;
	}
	if (uuid_v7_str(rc->request_id) == 0)
		return;
	/* No randomness: still unique within the process. */
	(void)snprintf(rc->request_id, sizeof rc->request_id, "req-%lld-%llu",
		       (long long)time_now_us(),
		       (unsigned long long)atomic_fetch_add(&fallback_counter, 1));
}

static void client_ip_fill(struct MHD_Connection *conn, char *out, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
	const void *addr = NULL;

	(void)snprintf(out, len, "unknown");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (addr == NULL || inet_ntop(sa->sa_family, addr, out, (socklen_t)len) == NULL)
		(void)snprintf(out, len, "unknown");
}

/* Content-Length as declared; false when absent or not a plain number
 * (MHD itself rejects malformed ones). */
static bool content_length(struct MHD_Connection *conn, uint64_t *out)
{
	const char *s = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end = NULL;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* ------------------------------------------------------- request accessors */

const char *http_header(const struct http_request *r, const char *name)
{
	if (r == NULL || r->impl == NULL || name == NULL)
		return NULL;
	return MHD_lookup_connection_value(r->impl, MHD_HEADER_KIND, name);
}

const char *http_query(const struct http_request *r, const char *name)
{
	if (r == NULL || r->impl == NULL || name == NULL)
		return NULL;
	return MHD_lookup_connection_value(r->impl, MHD_GET_ARGUMENT_KIND, name);
}

/* --------------------------------------------------------------- response */

static bool is_api_path(const char *path)
{
	return path != NULL && strncmp(path, "/api/", 5) == 0;
}

static bool add_header_checked(struct MHD_Response *mr, const char *name, const char *value)
{
	if (MHD_add_response_header(mr, name, value) == MHD_YES)
		return true;
	log_event(LOG_WARN, "response header refused", LF_S("header", name));
	return false;
}

static const char oom_body[] =
	"{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";

/* A streamed body (http_stream) as MHD's content reader. */
struct stream_src {
	long (*next)(void *ctx, char *buf, size_t cap);
	void (*free_ctx)(void *ctx);
	void *ctx;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_src *s = cls;
	(void)pos;
	long n = s->next(s->ctx, buf, max);
	if (n == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0 || (size_t)n > max)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)n;
}

static void stream_done(void *cls)
{
	struct stream_src *s = cls;
	if (s->free_ctx != NULL)
		s->free_ctx(s->ctx);
	free(s);
}

/* Build the MHD response for rc->res: JSON rendering, raw bytes or a
 * stream (whose context then belongs to MHD). */
static struct MHD_Response *response_build(struct req_ctx *rc, size_t *len_out)
{
	struct http_response *res = &rc->res;
	struct MHD_Response *mr;

	if (res->stream_next != NULL) {
		struct stream_src *s = malloc(sizeof *s);
		mr = s != NULL ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024,
								    stream_read, s, stream_done)
			       : NULL;
		if (mr != NULL) {
			*s = (struct stream_src){ res->stream_next, res->stream_free,
						  res->stream_ctx };
			res->stream_next = NULL;
			res->stream_free = NULL;
			res->stream_ctx = NULL;
			*len_out = 0; /* unknown: the access log says 0 */
			return mr;
		}
		free(s);
		http_error(res, 500, "internal_error", "out of memory", NULL);
	}
	if (res->body == NULL && res->json != NULL) {
		size_t len = 0;
		char *dump = json_dump_compact(res->json, &len);

		if (dump != NULL) {
			mr = MHD_create_response_from_buffer(len, dump, MHD_RESPMEM_MUST_FREE);
			if (mr != NULL) {
				*len_out = len;
				return mr;
			}
			free(dump);
		}
		res->status = 500;
		res->content_type = NULL;
		res->body = oom_body;
		res->body_len = sizeof oom_body - 1;
	}
	*len_out = res->body_len;
	return MHD_create_response_from_buffer(res->body_len, (void *)res->body,
					       MHD_RESPMEM_MUST_COPY);
}

/* Render rc->res and queue it. */
static enum MHD_Result response_queue(struct req_ctx *rc, struct MHD_Connection *conn)
{
	struct http_response *res = &rc->res;
	struct MHD_Response *mr;
	enum MHD_Result ok;
	size_t body_len = 0;

	if (res->status < 100 || res->status > 599)
		http_error(res, 500, "internal_error", "the handler gave no answer", NULL);
	mr = response_build(rc, &body_len);
	if (mr == NULL)
		return MHD_NO;
	if (res->status != 204 && res->status != 304)
		(void)add_header_checked(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
					 res->content_type != NULL ? res->content_type
								   : JSON_CONTENT_TYPE);
	(void)add_header_checked(mr, "X-Request-Id", rc->request_id);
	if (is_api_path(rc->req.path != NULL ? rc->req.path : rc->raw_path))
		(void)add_header_checked(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	for (int i = 0; i < res->nheaders && i < HTTP_MAX_RESPONSE_HEADERS; i++)
		(void)add_header_checked(mr, res->header_names[i], res->header_values[i]);
	ok = MHD_queue_response(conn, (unsigned)res->status, mr);
	MHD_destroy_response(mr);
	if (ok == MHD_YES) {
		rc->queued = true;
		rc->status = res->status;
		rc->bytes = body_len;
	}
	return ok;
}

/* ----------------------------------------------------------- the pipeline */

static void route_and_handle(struct req_ctx *rc)
{
	struct http_server *srv = rc->srv;
	struct http_request *req = &rc->req;
	struct http_response *res = &rc->res;
	const struct route *rt = NULL;
	const char *allow = NULL;

	switch (router_match(srv->opt.routes, srv->opt.nroutes, req, &rt, &allow)) {
	case ROUTE_NOT_FOUND:
		http_error(res, 404, "not_found",
			   arena_printf(req->arena, "no route for %s %s", req->method, req->path),
			   NULL);
		return;
	case ROUTE_METHOD_NOT_ALLOWED:
		http_error(res, 405, "method_not_allowed",
			   arena_printf(req->arena, "method %s is not allowed for %s",
					req->method, req->path),
			   NULL);
		http_add_header(res, "Allow", allow != NULL ? allow : "");
		return;
	case ROUTE_FOUND:
		break;
	}
	req->route = rt->pattern;
	if (!(rt->flags & ROUTE_NO_RATE_LIMIT) && srv->opt.rate_limit_client != NULL &&
	    !srv->opt.rate_limit_client(req, rt, res))
		goto hook_refused;
	if (rt->min_role != ROLE_NONE && srv->opt.authenticate != NULL &&
	    !srv->opt.authenticate(req, rt, res))
		goto hook_refused;
	if (!(rt->flags & ROUTE_NO_RATE_LIMIT) && srv->opt.rate_limit != NULL &&
	    !srv->opt.rate_limit(req, rt, res))
		goto hook_refused;
	rt->handler(req, res);
	return;
hook_refused:
	if (res->status == 0)
		http_error(res, 500, "internal_error", "request refused without an answer", NULL);
}

/* MHD_get_connection_values iterator: stop at the first query key or
 * value that is not valid UTF-8 (or holds a control character). */
static enum MHD_Result query_arg_valid(void *cls, enum MHD_ValueKind kind, const char *key,
				       const char *value)
{
	bool *ok = cls;

	(void)kind;
	if (!http_utf8_valid_no_ctl(key, strlen(key)) ||
	    (value != NULL && !http_utf8_valid_no_ctl(value, strlen(value)))) {
		*ok = false;
		return MHD_NO;
	}
	return MHD_YES;
}

/* First call: headers are in. Decide early answers (bad path, 413). */
static enum MHD_Result request_begin(struct req_ctx *rc, struct MHD_Connection *conn,
				     const char *method)
{
	struct http_request *req = &rc->req;
	uint64_t declared = 0;
	const char *raw = rc->raw_path != NULL ? rc->raw_path : "";
	char *path = NULL;
	const char *why = "invalid path";

	rc->started = true;
	req->impl = conn;
	req->method = arena_strdup(&rc->arena, method);
	if (req->method == NULL)
		return MHD_NO;
	if (content_length(conn, &declared) && declared > rc->srv->opt.max_body_bytes) {
		http_error(&rc->res, 413, "payload_too_large",
			   arena_printf(&rc->arena, "the body is larger than %zu bytes",
					rc->srv->opt.max_body_bytes),
			   NULL);
		rc->too_large = true;
		return response_queue(rc, conn);
	}
	switch (http_path_decode(&rc->arena, raw, strlen(raw), &path, &why)) {
	case HTTP_PATH_OK:
		req->path = path;
		break;
	case HTTP_PATH_TOO_LONG:
		http_error(&rc->res, 414, "uri_too_long",
			   "the path is longer than 2048 bytes", NULL);
		rc->early = true;
		break;
	case HTTP_PATH_INVALID:
		http_error(&rc->res, 400, "invalid_path", why, NULL);
		rc->early = true;
		break;
	}
	bool query_ok = true;
	(void)MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_arg_valid, &query_ok);
	if (!query_ok && !rc->early) {
		http_error(&rc->res, 400, "invalid_query",
			   "a query parameter is not valid UTF-8 or holds a control character",
			   NULL);
		rc->early = true;
	}
	if (declared > 0 && !rc->early) {
		size_t cap = (size_t)declared + 1;

		rc->body = malloc(cap);
		if (rc->body == NULL)
			return MHD_NO;
		rc->body_cap = cap;
	}
	return MHD_YES;
}

static void body_limit_exceeded(struct req_ctx *rc)
{
	free(rc->body);
	rc->body = NULL;
	rc->body_len = rc->body_cap = 0;
	rc->too_large = true;
	http_error(&rc->res, 413, "payload_too_large",
		   arena_printf(&rc->arena, "the body is larger than %zu bytes",
				rc->srv->opt.max_body_bytes),
		   NULL);
}

static bool body_append(struct req_ctx *rc, const char *data, size_t n)
{
	if (rc->body_len + n + 1 > rc->body_cap) {
		size_t cap = rc->body_cap > 0 ? rc->body_cap : BODY_INITIAL_CAP;
		size_t max_cap = rc->srv->opt.max_body_bytes + 1;
		char *grown;

		while (cap < rc->body_len + n + 1)
			cap *= 2;
		if (cap > max_cap)
			cap = max_cap;
		grown = realloc(rc->body, cap);
		if (grown == NULL)
			return false;
		rc->body = grown;
		rc->body_cap = cap;
	}
	memcpy(rc->body + rc->body_len, data, n);
	rc->body_len += n;
	rc->body[rc->body_len] = '\0';
	return true;
}

/* A body chunk. Every byte is counted, stored or not. Past max_body_bytes
 * nothing more is stored and the answer becomes 413 (also replacing an
 * early 400/414: the body limit comes first). MHD 0.9.75 refuses to queue
 * a response in the middle of an upload, so the 413 goes out after the
 * last chunk; the rest is drained, but past 2 x max_body_bytes in all the
 * connection is closed without an answer (a client streaming forever). */
static enum MHD_Result body_chunk(struct req_ctx *rc, struct MHD_Connection *conn,
				  const char *data, size_t n)
{
	size_t max = rc->srv->opt.max_body_bytes;

	rc->body_seen += n;
	if (rc->queued)
		return MHD_YES;
	if (rc->body_seen > max) {
		if (!rc->too_large) {
			body_limit_exceeded(rc);
			(void)response_queue(rc, conn); /* works on newer MHD */
		}
		return rc->body_seen - max > max ? MHD_NO : MHD_YES;
	}
	if (rc->early)
		return MHD_YES;
	return body_append(rc, data, n) ? MHD_YES : MHD_NO;
}

/* After a handler deferred: suspend the connection until http_complete(),
 * or queue at once when it already completed. Also the call after resume. */
static enum MHD_Result deferred_finish(struct req_ctx *rc, struct MHD_Connection *conn)
{
	struct http_deferred *d = &rc->defer;
	bool done;

	pthread_mutex_lock(&d->mu);
	done = d->state == DEFER_DONE;
	if (!done && d->state == DEFER_PENDING) {
		MHD_suspend_connection(conn);
		d->state = DEFER_SUSPENDED;
	}
	pthread_mutex_unlock(&d->mu);
	return done ? response_queue(rc, conn) : MHD_YES;
}

/* Last call: the whole body is in. */
static enum MHD_Result request_finish(struct req_ctx *rc, struct MHD_Connection *conn)
{
	reaper_receiving(rc->srv->reaper, conn_watch(conn), false);
	if (rc->queued)
		return MHD_YES;
	if (rc->deferred)
		return deferred_finish(rc, conn);
	if (!rc->early && !rc->too_large) {
		rc->req.body = rc->body != NULL ? rc->body : "";
		rc->req.body_len = rc->body_len;
		route_and_handle(rc);
		if (rc->deferred)
			return deferred_finish(rc, conn);
	}
	return response_queue(rc, conn);
}

/* ---------------------------------------------------------- deferred */

struct http_deferred *http_defer(struct http_request *req)
{
	struct req_ctx *rc;

	if (req == NULL || req->impl == NULL)
		return NULL;
	rc = (struct req_ctx *)(void *)((char *)req - offsetof(struct req_ctx, req));
	if (rc->deferred)
		return NULL;
	rc->deferred = true;
	rc->defer.conn = req->impl;
	rc->defer.rc = rc;
	pthread_mutex_lock(&rc->defer.mu);
	rc->defer.state = DEFER_PENDING;
	pthread_mutex_unlock(&rc->defer.mu);
	atomic_fetch_add(&rc->srv->deferred, 1);
	return &rc->defer;
}

struct http_response *http_deferred_response(struct http_deferred *d)
{
	return &d->rc->res;
}

void http_complete(struct http_deferred *d)
{
	struct MHD_Connection *conn = d->conn;
	struct http_server *srv = d->rc->srv;
	bool suspended;

	pthread_mutex_lock(&d->mu);
	suspended = d->state == DEFER_SUSPENDED;
	d->state = DEFER_DONE;
	pthread_mutex_unlock(&d->mu);
	/* From here the request may be answered and freed at any moment: only
	 * the copies taken above are used. */
	if (suspended)
		MHD_resume_connection(conn);
	atomic_fetch_sub(&srv->deferred, 1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct req_ctx *rc = *con_cls;
	enum MHD_Result ret;

	(void)cls;
	(void)url;
	(void)version;
	if (rc == NULL)
		return MHD_NO; /* the URI-log callback could not allocate */
	log_set_request_id(rc->request_id[0] != '\0' ? rc->request_id : NULL);
	if (!rc->started) {
		request_id_assign(rc, conn);
		log_set_request_id(rc->request_id);
		ret = request_begin(rc, conn, method);
	} else if (*upload_data_size != 0) {
		ret = body_chunk(rc, conn, upload_data, *upload_data_size);
		*upload_data_size = 0;
	} else {
		ret = request_finish(rc, conn);
	}
	log_set_request_id(NULL);
	return ret;
}

/* ------------------------------------------------------ per-request state */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_server *srv = cls;
	struct req_ctx *rc = calloc(1, sizeof *rc);
	size_t path_len;

	if (rc == NULL)
		return NULL;
	rc->srv = srv;
	rc->start_us = time_mono_us();
	rc->arena.limit = ARENA_BASE_LIMIT + 4 * srv->opt.max_body_bytes;
	path_len = strcspn(uri != NULL ? uri : "", "?");
	rc->raw_path = arena_strndup(&rc->arena, uri != NULL ? uri : "", path_len);
	client_ip_fill(conn, rc->client_ip, sizeof rc->client_ip);
	rc->req.app = srv->opt.app;
	rc->req.arena = &rc->arena;
	rc->req.route = "unmatched";
	rc->req.request_id = rc->request_id;
	rc->req.client_ip = rc->client_ip;
	if (pthread_mutex_init(&rc->defer.mu, NULL) != 0) {
		arena_release(&rc->arena);
		free(rc);
		return NULL;
	}
	atomic_fetch_add(&srv->in_flight, 1);
	atomic_fetch_add(&srv->requests, 1);
	return rc;
}

/* Printable ASCII copy of a raw path for the log (invalid paths only). */
static const char *log_safe_path(struct arena *a, const char *raw)
{
	size_t n = strlen(raw);
	char *s;

	if (n > 256)
		n = 256;
	s = arena_strndup(a, raw, n);
	if (s == NULL)
		return "-";
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			s[i] = '?';
	return s;
}

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
	switch (toe) {
	case MHD_REQUEST_TERMINATED_COMPLETED_OK: return NULL;
	case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
	case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
	case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client_abort";
	default: return "error";
	}
}

static void access_log(struct req_ctx *rc, enum MHD_RequestTerminationCode toe)
{
	double ms = (double)(time_mono_us() - rc->start_us) / 1000.0;
	const char *path = rc->req.path != NULL
				   ? rc->req.path
				   : log_safe_path(&rc->arena, rc->raw_path != NULL ? rc->raw_path : "");
	const char *aborted = termination_name(toe);
	enum log_level lvl = rc->status >= 500 ? LOG_ERROR : LOG_INFO;
	struct log_field f[] = {
		LF_S("method", rc->req.method != NULL ? rc->req.method : "-"),
		LF_S("path", path),
		LF_S("route", rc->req.route),
		LF_I("status", rc->status),
		LF_D("duration_ms", ms),
		LF_I("bytes", rc->bytes),
		LF_S("client_ip", rc->client_ip),
		LF_S("aborted", aborted),
	};
	int nf = (int)(sizeof f / sizeof f[0]) - (aborted == NULL ? 1 : 0);

	log_set_request_id(rc->request_id[0] != '\0' ? rc->request_id : NULL);
	if (log_enabled(lvl))
		log_fields(lvl, "request", f, nf);
	if (rc->status != 0 && ms > (double)rc->srv->opt.slow_request_ms)
		log_event(LOG_WARN, "slow request", LF_B("slow", true),
			  LF_S("method", f[0].s), LF_S("path", path), LF_S("route", rc->req.route),
			  LF_I("status", rc->status), LF_D("duration_ms", ms));
	log_set_request_id(NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct req_ctx *rc = *con_cls;

	reaper_receiving(srv->reaper, conn_watch(conn), true);
	if (rc == NULL)
		return;
	*con_cls = NULL;
	access_log(rc, toe);
	if (srv->opt.on_complete != NULL && rc->status != 0)
		srv->opt.on_complete(srv->opt.on_complete_ctx, rc->req.route,
				     rc->req.method != NULL ? rc->req.method : "-", rc->status,
				     time_mono_us() - rc->start_us);
	json_decref(rc->res.json);
	if (rc->res.stream_free != NULL && rc->res.stream_ctx != NULL)
		rc->res.stream_free(rc->res.stream_ctx); /* a stream never handed to MHD */
	free(rc->body);
	arena_release(&rc->arena);
	pthread_mutex_destroy(&rc->defer.mu);
	free(rc);
	atomic_fetch_sub(&srv->in_flight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *srv = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci != NULL ? reaper_add(srv->reaper, ci->connect_fd) : NULL;
		atomic_fetch_add(&srv->open_connections, 1);
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		reaper_remove(srv->reaper, *socket_context);
		*socket_context = NULL;
		atomic_fetch_sub(&srv->open_connections, 1);
	}
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	if (!log_enabled(LOG_WARN))
		return;
	if (vsnprintf(buf, sizeof buf, fmt, ap) < 0)
		return;
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_event(LOG_WARN, "http server", LF_S("detail", buf));
}

/* ---------------------------------------------------------------- start */

union any_addr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

static int parse_bind(const char *address, int port, union any_addr *out, bool *v6)
{
	memset(out, 0, sizeof *out);
	if (port < 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, address, &out->v4.sin_addr) == 1) {
		out->v4.sin_family = AF_INET;
		out->v4.sin_port = htons((uint16_t)port);
		*v6 = false;
		return 0;
	}
	if (inet_pton(AF_INET6, address, &out->v6.sin6_addr) == 1) {
		out->v6.sin6_family = AF_INET6;
		out->v6.sin6_port = htons((uint16_t)port);
		*v6 = true;
		return 0;
	}
	return -1;
}

/* Worker threads: threads, or 2 x cores when threads <= 0. */
static unsigned pool_size(int threads)
{
	long cores;

	if (threads <= 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cores > 0 ? (int)(2 * cores) : 2;
	}
	return (unsigned)threads;
}

/* Room for the request line and headers (parsed in place), the response
 * headers and a read buffer for body chunks. */
static size_t memory_limit(size_t max_header_bytes)
{
	if (max_header_bytes == 0)
		max_header_bytes = 16384;
	return max_header_bytes + max_header_bytes / 2 + 8192;
}

static unsigned daemon_flags(bool v6)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
			 MHD_ALLOW_SUSPEND_RESUME;

	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		flags |= MHD_USE_EPOLL;
	else if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
		flags |= MHD_USE_POLL;
	if (v6)
		flags |= MHD_USE_IPv6;
	return flags;
}

int http_server_start(const struct http_server_options *opt,
		      struct http_server **out, char *err, size_t errlen)
{
	struct http_server *srv = NULL;
	union any_addr addr;
	bool v6 = false;
	const union MHD_DaemonInfo *di;
	unsigned threads = pool_size(opt != NULL ? opt->threads : 0);
	/* MHD warns about a pool of 0 or 1: give the option only for > 1. */
	struct MHD_OptionItem pool_opt[] = {
		{ threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads,
		  NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	int rc = -1;

	*out = NULL;
	if (opt == NULL || opt->bind_address == NULL ||
	    parse_bind(opt->bind_address, opt->port, &addr, &v6) != 0) {
		(void)snprintf(err, errlen, "bind address must be an IPv4 or IPv6 literal and "
			       "the port 0..65535");
		goto out;
	}
	srv = calloc(1, sizeof *srv);
	if (srv == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		goto out;
	}
	srv->opt = *opt;
	srv->reaper = reaper_start((int64_t)(opt->request_timeout_s > 0 ? opt->request_timeout_s
								      : 30) * 1000000);
	if (srv->reaper == NULL) {
		(void)snprintf(err, errlen, "cannot start the request-deadline thread");
		goto out;
	}
	srv->daemon = MHD_start_daemon(
		daemon_flags(v6), (uint16_t)opt->port, NULL, NULL, on_request, srv,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
		MHD_OPTION_SOCK_ADDR, &addr.sa,
		MHD_OPTION_ARRAY, pool_opt,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)(opt->request_timeout_s > 0 ? opt->request_timeout_s : 30),
		MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)(opt->max_connections > 0 ? opt->max_connections : 10000),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory_limit(opt->max_header_bytes),
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape_query, srv,
		MHD_OPTION_END);
	if (srv->daemon == NULL) {
		(void)snprintf(err, errlen, "cannot listen on %s:%d (address in use, or not "
			       "permitted)", opt->bind_address, opt->port);
		goto out;
	}
	di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = di != NULL && di->port != 0 ? di->port : opt->port;
	*out = srv;
	srv = NULL;
	rc = 0;
out:
	if (srv != NULL)
		reaper_stop(srv->reaper);
	free(srv);
	return rc;
}

int http_server_port(const struct http_server *s)
{
	return s != NULL ? s->port : 0;
}

void http_server_quiesce(struct http_server *s)
{
	MHD_socket fd;

	if (s == NULL || atomic_exchange(&s->quiesced, true))
		return;
	fd = MHD_quiesce_daemon(s->daemon);
	if (fd != MHD_INVALID_SOCKET)
		(void)close(fd);
}

void http_server_stop(struct http_server *s, int timeout_ms)
{
	int64_t deadline;

	if (s == NULL)
		return;
	http_server_quiesce(s);
	deadline = time_mono_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
	while (atomic_load(&s->in_flight) > 0 && time_mono_us() < deadline) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		(void)nanosleep(&ts, NULL);
	}
	if (atomic_load(&s->in_flight) > 0)
		log_event(LOG_WARN, "stopping with requests in flight",
			  LF_I("in_flight", atomic_load(&s->in_flight)));
	/* MHD must not be stopped with suspended connections: give deferred
	 * requests (bounded by their completer, e.g. one commit) more time. */
	deadline = time_mono_us() + DEFER_STOP_GRACE_US;
	while (atomic_load(&s->deferred) > 0 && time_mono_us() < deadline) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		(void)nanosleep(&ts, NULL);
	}
	if (atomic_load(&s->deferred) > 0) {
		/* Leave the daemon running rather than free what a completer
		 * still points at; the process is on its way out. */
		log_event(LOG_ERROR, "deferred requests never completed; not stopping the "
			  "HTTP daemon", LF_I("deferred", atomic_load(&s->deferred)));
		return;
	}
	MHD_stop_daemon(s->daemon);
	reaper_stop(s->reaper);
	free(s);
}

void http_server_stats(struct http_server *s, struct http_stats *out)
{
	memset(out, 0, sizeof *out);
	if (s == NULL)
		return;
	out->requests = atomic_load(&s->requests);
	out->in_flight = atomic_load(&s->in_flight);
	out->open_connections = atomic_load(&s->open_connections);
}
