/* Server tests: start src/http/server.c on a free port with a tiny route
 * table and drive it over real sockets (libcurl, and raw sockets where curl
 * would fix up the request: dot segments, unread bodies, huge headers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"
#include "http/http.h"

#define MAX_BODY 1024

/* ------------------------------------------------------------- handlers */

static void h_echo(struct http_request *req, struct http_response *res)
{
	const char *q = http_query(req, "q");

	http_json(res, 200, json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s}", "a", http_param(req, "a"),
				      "b", http_param(req, "b"), "q", q, "rid",
				      req->request_id, "route", req->route, "path", req->path));
}

static void h_json(struct http_request *req, struct http_response *res)
{
	json_t *obj = http_body_json(req, res);

	if (obj == NULL)
		return;
	http_json(res, 201, json_pack("{s:o}", "got", obj));
}

static void h_sleep(struct http_request *req, struct http_response *res)
{
	struct timespec ts = { 0, 400 * 1000 * 1000 };

	(void)req;
	(void)nanosleep(&ts, NULL);
	http_json(res, 200, json_pack("{s:b}", "slept", 1));
}

static void h_list(struct http_request *req, struct http_response *res)
{
	int limit = 0;

	if (!http_query_limit(req, res, &limit))
		return;
	http_json(res, 200, json_pack("{s:i}", "limit", limit));
}

static void h_nostatus(struct http_request *req, struct http_response *res)
{
	(void)req;
	(void)res;
}

static void h_raw(struct http_request *req, struct http_response *res)
{
	char *s = arena_printf(req->arena, "%zu", req->body_len);

	http_add_header(res, "X-Body-Len", s);
	http_body(res, 200, "text/plain", "raw", 3);
}

/* A streamed body: "line 0\n" .. "line 499\n", handed out at most 7 bytes
 * per call (so the server calls next many times); stream_frees counts
 * the free callbacks (exactly one per stream). */
#define STREAM_LINES 500
static atomic_int stream_frees;
struct stream_st {
	int line;
	char cur[16];
	size_t len, pos;
};

static long stream_next(void *ctx, char *buf, size_t cap)
{
	struct stream_st *st = ctx;
	if (st->pos == st->len) {
		if (st->line == STREAM_LINES)
			return 0;
		st->len = (size_t)snprintf(st->cur, sizeof st->cur, "line %d\n", st->line++);
		st->pos = 0;
	}
	size_t n = st->len - st->pos;
	if (n > 7)
		n = 7;
	if (n > cap)
		n = cap;
	memcpy(buf, st->cur + st->pos, n);
	st->pos += n;
	return (long)n;
}

static void stream_free(void *ctx)
{
	free(ctx);
	atomic_fetch_add(&stream_frees, 1);
}

static void h_stream(struct http_request *req, struct http_response *res)
{
	(void)req;
	http_stream(res, 200, "text/plain", stream_next, stream_free,
		    calloc(1, sizeof(struct stream_st)));
}

/* A stream replaced by an error before the answer: freed, never sent. */
static void h_stream_replaced(struct http_request *req, struct http_response *res)
{
	(void)req;
	http_stream(res, 200, "text/plain", stream_next, stream_free,
		    calloc(1, sizeof(struct stream_st)));
	http_error(res, 409, "conflict", "changed my mind", NULL);
}

static void h_private(struct http_request *req, struct http_response *res)
{
	http_json(res, 200, json_pack("{s:s}", "user", req->auth.user_id));
}

/* Deferred answers: a completer thread answers after DEFER_MS, or the
 * handler completes at once (?now=1) before returning. */
#define DEFER_MS 300

static void defer_fill(struct http_deferred *d)
{
	struct http_response *res = http_deferred_response(d);

	http_add_header(res, "X-Body-Len", "deferred");
	http_body(res, 202, "text/plain", "later", 5);
	http_complete(d);
}

static void *completer_main(void *arg)
{
	struct timespec ts = { 0, DEFER_MS * 1000 * 1000 };

	(void)nanosleep(&ts, NULL);
	defer_fill(arg);
	return NULL;
}

static void h_defer(struct http_request *req, struct http_response *res)
{
	const char *now = http_query(req, "now");
	struct http_deferred *d = http_defer(req);
	pthread_t th;

	if (d == NULL || http_defer(req) != NULL) { /* second call must refuse */
		http_error(res, 500, "internal_error", "cannot defer", NULL);
		return;
	}
	if (now != NULL) {
		defer_fill(d);
		return;
	}
	if (pthread_create(&th, NULL, completer_main, d) != 0) {
		defer_fill(d);
		return;
	}
	(void)pthread_detach(th);
}

static bool auth_hook(struct http_request *req, const struct route *rt, struct http_response *res)
{
	const char *h = http_header(req, "authorization");

	(void)rt;
	if (h == NULL || strcmp(h, "Bearer good") != 0) {
		http_add_header(res, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		http_error(res, 401, "unauthenticated", "no token", NULL);
		return false;
	}
	req->auth.authenticated = true;
	memcpy(req->auth.user_id, "u1", 3);
	return true;
}

static int rate_calls;
static bool rate_hook(struct http_request *req, const struct route *rt, struct http_response *res)
{
	(void)req;
	(void)rt;
	(void)res;
	__atomic_add_fetch(&rate_calls, 1, __ATOMIC_SEQ_CST);
	return true;
}

static const struct route routes[] = {
	{ "GET", "/echo/{a}/{b}", h_echo, ROLE_NONE, ROUTE_NO_RATE_LIMIT },
	{ "POST", "/json", h_json, ROLE_NONE, 0 },
	{ "GET", "/sleep", h_sleep, ROLE_NONE, 0 },
	{ "GET", "/api/v1/list", h_list, ROLE_NONE, 0 },
	{ "POST", "/api/v1/list", h_json, ROLE_NONE, 0 },
	{ "GET", "/nostatus", h_nostatus, ROLE_NONE, 0 },
	{ "POST", "/raw", h_raw, ROLE_NONE, ROUTE_RAW_BODY },
	{ "GET", "/api/v1/private", h_private, ROLE_VIEWER, 0 },
	{ "GET", "/stream", h_stream, ROLE_NONE, 0 },
	{ "GET", "/stream-replaced", h_stream_replaced, ROLE_NONE, 0 },
	{ "POST", "/defer", h_defer, ROLE_NONE, ROUTE_RAW_BODY },
};

/* --------------------------------------------------------------- client */

struct reply {
	long status;
	char body[8192];
	size_t len;
	char request_id[128];
	char allow[128];
	char cache_control[64];
	char content_type[128];
	char body_len_hdr[32];
	json_t *json;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct reply *r = ud;
	size_t len = sz * n;
	size_t room = sizeof r->body - 1 - r->len;

	if (len > room)
		len = room;
	memcpy(r->body + r->len, p, len);
	r->len += len;
	r->body[r->len] = '\0';
	return sz * n;
}

static void grab(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	size_t vlen;

	if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return;
	line += nl + 1;
	n -= nl + 1;
	while (n > 0 && *line == ' ')
		line++, n--;
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
		n--;
	vlen = n < outlen - 1 ? n : outlen - 1;
	memcpy(out, line, vlen);
	out[vlen] = '\0';
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct reply *r = ud;

	grab(p, sz * n, "X-Request-Id", r->request_id, sizeof r->request_id);
	grab(p, sz * n, "Allow", r->allow, sizeof r->allow);
	grab(p, sz * n, "Cache-Control", r->cache_control, sizeof r->cache_control);
	grab(p, sz * n, "Content-Type", r->content_type, sizeof r->content_type);
	grab(p, sz * n, "X-Body-Len", r->body_len_hdr, sizeof r->body_len_hdr);
	return sz * n;
}

static int port;
static struct http_server *server;

static void do_request_on(CURL *c, const char *method, const char *path, const char *body,
			  const char *header, struct reply *r)
{
	char url[512];
	struct curl_slist *hdrs = NULL;

	memset(r, 0, sizeof *r);
	(void)snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Expect:");
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}
	if (header != NULL)
		hdrs = curl_slist_append(hdrs, header);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hdrs);
	r->json = r->len > 0 ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

static void do_request(const char *method, const char *path, const char *body,
		       const char *header, struct reply *r)
{
	CURL *c = curl_easy_init();

	assert_non_null(c);
	do_request_on(c, method, path, body, header, r);
	curl_easy_cleanup(c);
}

static void assert_error(const struct reply *r, long status, const char *code)
{
	json_t *err;

	assert_int_equal(r->status, status);
	assert_non_null(r->json);
	err = json_object_get(r->json, "error");
	assert_non_null(err);
	assert_string_equal(json_string_value(json_object_get(err, "code")), code);
	assert_true(json_is_string(json_object_get(err, "message")));
	assert_true(r->request_id[0] != '\0');
	assert_string_equal(r->content_type, "application/json; charset=utf-8");
}

/* Raw exchange: send req (len bytes), read until close or timeout. */
static size_t raw_exchange(const char *req, size_t len, char *out, size_t outlen, bool shut)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 3, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (shut)
		shutdown(fd, SHUT_WR);
	while (got < outlen - 1) {
		ssize_t n = recv(fd, out + got, outlen - 1 - got, 0);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = '\0';
	close(fd);
	return got;
}

static int raw_status(const char *resp)
{
	int code = 0;

	if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1)
		return -1;
	return code;
}

/* ---------------------------------------------------------------- tests */

static int log_fd = -1;
static char log_path[] = "/tmp/test_http_server_log.XXXXXX";

static int setup(void **state)
{
	struct http_server_options opt = {
		.bind_address = "127.0.0.1",
		.port = 0,
		.threads = 2,
		.max_body_bytes = MAX_BODY,
		.max_header_bytes = 4096,
		.request_timeout_s = 5,
		.slow_request_ms = 200,
		.max_connections = 64,
		.routes = routes,
		.nroutes = sizeof routes / sizeof routes[0],
		.authenticate = auth_hook,
		.rate_limit = rate_hook,
	};
	char err[256];

	(void)state;
	log_fd = mkstemp(log_path);
	if (log_fd < 0)
		return -1;
	log_setup(LOG_INFO, LOG_FORMAT_JSON);
	log_set_fd(log_fd);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (http_server_start(&opt, &server, err, sizeof err) != 0) {
		fprintf(stderr, "start: %s\n", err);
		return -1;
	}
	port = http_server_port(server);
	return port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	http_server_stop(server, 1000);
	curl_global_cleanup();
	log_set_fd(2);
	close(log_fd);
	unlink(log_path);
	return 0;
}

static void test_echo_and_request_id(void **state)
{
	struct reply r;

	(void)state;
	do_request("GET", "/echo/x%20y/caf%C3%A9?q=a+b%2Bc&token=secret", NULL,
		   "X-Request-Id: client-id.1:2_3", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.request_id, "client-id.1:2_3");
	assert_string_equal(json_string_value(json_object_get(r.json, "rid")), "client-id.1:2_3");
	assert_string_equal(json_string_value(json_object_get(r.json, "a")), "x y");
	assert_string_equal(json_string_value(json_object_get(r.json, "b")), "caf\xc3\xa9");
	assert_string_equal(json_string_value(json_object_get(r.json, "q")), "a b+c");
	assert_string_equal(json_string_value(json_object_get(r.json, "route")), "/echo/{a}/{b}");
	assert_string_equal(r.content_type, "application/json; charset=utf-8");
	assert_string_equal(r.cache_control, ""); /* not an /api path */
	json_decref(r.json);

	/* an unacceptable client id is replaced by a new UUID */
	do_request("GET", "/echo/1/2", NULL, "X-Request-Id: bad id with spaces", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(strlen(r.request_id), 36);
	assert_int_equal(r.request_id[14], '7'); /* version 7 */
	json_decref(r.json);
	do_request("GET", "/echo/1/2", NULL,
		   "X-Request-Id: 01234567890123456789012345678901234567890123456789012345678901234",
		   &r);
	assert_int_equal(strlen(r.request_id), 36);
	json_decref(r.json);
	/* none given: generated, and two requests differ */
	do_request("GET", "/echo/1/2", NULL, NULL, &r);
	{
		char first[128];

		memcpy(first, r.request_id, sizeof first);
		json_decref(r.json);
		do_request("GET", "/echo/1/2", NULL, NULL, &r);
		assert_int_equal(strlen(first), 36);
		assert_string_not_equal(first, r.request_id);
		json_decref(r.json);
	}
}

static void test_not_found_and_method(void **state)
{
	struct reply r;

	(void)state;
	do_request("GET", "/nope", NULL, NULL, &r);
	assert_error(&r, 404, "not_found");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(r.json, "error"), "message")),
		"no route for GET /nope");
	json_decref(r.json);

	do_request("GET", "/sleep/", NULL, NULL, &r); /* trailing slash: 404 */
	assert_error(&r, 404, "not_found");
	json_decref(r.json);

	do_request("DELETE", "/api/v1/list", NULL, NULL, &r);
	assert_error(&r, 405, "method_not_allowed");
	assert_string_equal(r.allow, "GET, HEAD, POST");
	assert_string_equal(r.cache_control, "no-store");
	json_decref(r.json);
}

static void test_body_json_errors(void **state)
{
	struct reply r;
	json_t *got;

	(void)state;
	do_request("POST", "/json", "{\"name\":\"x\",\"n\":[1,2]}", NULL, &r);
	assert_int_equal(r.status, 201);
	got = json_object_get(r.json, "got");
	assert_string_equal(json_string_value(json_object_get(got, "name")), "x");
	json_decref(r.json);

	do_request("POST", "/json", "{\"name\":", NULL, &r);
	assert_error(&r, 400, "invalid_json");
	json_decref(r.json);
	do_request("POST", "/json", "[1]", NULL, &r);
	assert_error(&r, 400, "invalid_json");
	json_decref(r.json);
	do_request("POST", "/json", "", NULL, &r);
	assert_error(&r, 400, "invalid_json");
	json_decref(r.json);
}

static void test_query_limit(void **state)
{
	static const struct { const char *q; long status; int limit; } cases[] = {
		{ "", 200, 50 }, { "?limit=1", 200, 1 }, { "?limit=200", 200, 200 },
		{ "?limit=77&cursor=x", 200, 77 }, { "?limit=0", 422, 0 },
		{ "?limit=201", 422, 0 }, { "?limit=-5", 422, 0 }, { "?limit=abc", 422, 0 },
		{ "?limit=", 422, 0 }, { "?limit=5x", 422, 0 },
		{ "?limit=99999999999999999999", 422, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char path[128];
		struct reply r;

		(void)snprintf(path, sizeof path, "/api/v1/list%s", cases[i].q);
		print_message("limit case %s\n", path);
		do_request("GET", path, NULL, NULL, &r);
		if (cases[i].status == 200) {
			assert_int_equal(r.status, 200);
			assert_int_equal(json_integer_value(json_object_get(r.json, "limit")),
					 cases[i].limit);
		} else {
			json_t *d;

			assert_error(&r, 422, "validation_error");
			d = json_object_get(json_object_get(r.json, "error"), "details");
			assert_string_equal(
				json_string_value(json_object_get(json_array_get(d, 0), "field")),
				"limit");
		}
		assert_string_equal(r.cache_control, "no-store");
		json_decref(r.json);
	}
}

static void test_handler_without_status(void **state)
{
	struct reply r;

	(void)state;
	do_request("GET", "/nostatus", NULL, NULL, &r);
	assert_error(&r, 500, "internal_error");
	json_decref(r.json);
}

static void test_hooks(void **state)
{
	struct reply r;
	int before = __atomic_load_n(&rate_calls, __ATOMIC_SEQ_CST);

	(void)state;
	do_request("GET", "/api/v1/private", NULL, NULL, &r);
	assert_error(&r, 401, "unauthenticated");
	json_decref(r.json);
	do_request("GET", "/api/v1/private", NULL, "Authorization: Bearer good", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "user")), "u1");
	json_decref(r.json);
	/* rate limit ran once (for the authenticated call, after auth) */
	assert_int_equal(__atomic_load_n(&rate_calls, __ATOMIC_SEQ_CST), before + 1);
	/* ROUTE_NO_RATE_LIMIT skips it */
	do_request("GET", "/echo/1/2", NULL, NULL, &r);
	json_decref(r.json);
	assert_int_equal(__atomic_load_n(&rate_calls, __ATOMIC_SEQ_CST), before + 1);
}

static void test_raw_body_and_keepalive(void **state)
{
	CURL *c = curl_easy_init();
	struct reply r;
	long connects = -1;

	(void)state;
	do_request_on(c, "POST", "/raw", "phone,name\n123,x\n", NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "raw");
	assert_string_equal(r.content_type, "text/plain");
	assert_string_equal(r.body_len_hdr, "17");
	do_request_on(c, "GET", "/echo/1/2", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	json_decref(r.json);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
	assert_int_equal(connects, 0); /* the connection was reused */
	curl_easy_cleanup(c);
}

static void wait_frees(int want)
{
	for (int i = 0; i < 200 && atomic_load(&stream_frees) < want; i++)
		usleep(5000);
	assert_int_equal(atomic_load(&stream_frees), want);
}

static void test_streamed_body(void **state)
{
	char want[STREAM_LINES * 10], *w = want;
	struct reply r;

	(void)state;
	atomic_store(&stream_frees, 0);
	for (int i = 0; i < STREAM_LINES; i++)
		w += snprintf(w, sizeof want - (size_t)(w - want), "line %d\n", i);
	do_request("GET", "/stream", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.content_type, "text/plain");
	assert_int_equal(r.len, strlen(want));
	assert_string_equal(r.body, want);
	wait_frees(1);
	/* replaced before sending: the error goes out, the stream is freed */
	do_request("GET", "/stream-replaced", NULL, NULL, &r);
	assert_error(&r, 409, "conflict");
	json_decref(r.json);
	wait_frees(2);
}

static void test_body_too_large_declared(void **state)
{
	/* Declares 100 MB and sends none of it: the 413 must come anyway. */
	static const char req[] = "POST /json HTTP/1.1\r\nHost: x\r\n"
				  "Content-Type: application/json\r\n"
				  "Content-Length: 100000000\r\n\r\n";
	char out[4096];

	(void)state;
	raw_exchange(req, sizeof req - 1, out, sizeof out, false);
	assert_int_equal(raw_status(out), 413);
	assert_non_null(strstr(out, "payload_too_large"));
	assert_non_null(strstr(out, "X-Request-Id: "));
}

static void test_body_too_large_at_limit(void **state)
{
	char body[MAX_BODY + 2];
	struct reply r;

	(void)state;
	memset(body, ' ', sizeof body);
	body[0] = '{';
	body[MAX_BODY - 1] = '}';
	body[MAX_BODY] = '\0';
	do_request("POST", "/json", body, NULL, &r); /* exactly the limit: accepted */
	assert_int_equal(r.status, 201);
	json_decref(r.json);
	body[MAX_BODY - 1] = ' ';
	body[MAX_BODY] = '}';
	body[MAX_BODY + 1] = '\0';
	do_request("POST", "/json", body, NULL, &r); /* one more byte */
	assert_error(&r, 413, "payload_too_large");
	json_decref(r.json);
}

static void test_body_too_large_chunked(void **state)
{
	char req[8192];
	size_t n;
	char out[4096];

	(void)state;
	n = (size_t)snprintf(req, sizeof req, "POST /json HTTP/1.1\r\nHost: x\r\n"
			     "Transfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 6; i++) { /* 6 x 300 bytes > 1024 */
		n += (size_t)snprintf(req + n, sizeof req - n, "12c\r\n");
		memset(req + n, 'a', 300);
		n += 300;
		n += (size_t)snprintf(req + n, sizeof req - n, "\r\n");
	}
	n += (size_t)snprintf(req + n, sizeof req - n, "0\r\n\r\n");
	raw_exchange(req, n, out, sizeof out, false);
	assert_int_equal(raw_status(out), 413);
	assert_non_null(strstr(out, "payload_too_large"));
}

/* A chunked body that goes on and on past twice the limit: the server hangs
 * up (MHD 0.9.75 cannot answer mid-upload) instead of draining forever. */
static void test_body_endless_chunked(void **state)
{
	static const char head[] = "POST /json HTTP/1.1\r\nHost: x\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 3, 0 };
	char chunk[512 + 16];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int n = snprintf(chunk, sizeof chunk, "200\r\n");
	bool closed = false;
	char c;

	(void)state;
	memset(chunk + n, 'a', 512);
	memcpy(chunk + n + 512, "\r\n", 2);
	n += 514;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	assert_true(send(fd, head, sizeof head - 1, MSG_NOSIGNAL) > 0);
	for (int i = 0; i < 64 && !closed; i++) /* up to 32 KB, > 2 x 1024 */
		closed = send(fd, chunk, (size_t)n, MSG_NOSIGNAL) < 0;
	if (!closed) {
		ssize_t got = recv(fd, &c, 1, 0);

		/* closed (0 or reset), not a 3 s timeout (EAGAIN) */
		closed = got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
	}
	close(fd);
	assert_true(closed);
}

static void test_invalid_paths(void **state)
{
	static const struct { const char *path; int status; const char *code; } cases[] = {
		{ "/a/../b", 400, "invalid_path" },
		{ "/a/./b", 400, "invalid_path" },
		{ "/%zz", 400, "invalid_path" },
		{ "/echo/%2", 400, "invalid_path" },
		{ "/echo/%00/b", 400, "invalid_path" },
		{ "/echo//b", 400, "invalid_path" },
		{ "/echo/%2e%2e/b", 400, "invalid_path" },
		{ "/echo/%ff/b", 400, "invalid_path" },
		{ "/echo/%0a/b", 400, "invalid_path" },
		{ "/echo/ok/%41", 200, NULL },
	};
	char req[4096], out[4096];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n"
				 "Connection: close\r\n\r\n", cases[i].path);

		print_message("path %s\n", cases[i].path);
		raw_exchange(req, (size_t)n, out, sizeof out, false);
		assert_int_equal(raw_status(out), cases[i].status);
		if (cases[i].code != NULL)
			assert_non_null(strstr(out, cases[i].code));
		else
			assert_non_null(strstr(out, "\"b\":\"A\""));
	}
}

static void test_uri_too_long(void **state)
{
	char req[8192], out[4096];
	int n = snprintf(req, sizeof req, "GET /echo/");

	(void)state;
	memset(req + n, 'a', 2100);
	n += 2100;
	n += snprintf(req + n, sizeof req - (size_t)n, "/b HTTP/1.1\r\nHost: x\r\n"
		      "Connection: close\r\n\r\n");
	raw_exchange(req, (size_t)n, out, sizeof out, false);
	assert_int_equal(raw_status(out), 414);
	assert_non_null(strstr(out, "uri_too_long"));
}

static void test_header_limits(void **state)
{
	char req[32768], out[4096];
	int n;

	(void)state;
	/* ~3 KB of headers, under MAX_HEADER_BYTES (4096): served */
	n = snprintf(req, sizeof req, "GET /echo/1/2 HTTP/1.1\r\nHost: x\r\nX-Pad: ");
	memset(req + n, 'p', 3000);
	n += 3000;
	n += snprintf(req + n, sizeof req - (size_t)n, "\r\nConnection: close\r\n\r\n");
	raw_exchange(req, (size_t)n, out, sizeof out, false);
	assert_int_equal(raw_status(out), 200);
	/* ~20 KB of headers: MHD answers 431 itself (not our JSON shape) */
	n = snprintf(req, sizeof req, "GET /echo/1/2 HTTP/1.1\r\nHost: x\r\nX-Pad: ");
	memset(req + n, 'p', 20000);
	n += 20000;
	n += snprintf(req + n, sizeof req - (size_t)n, "\r\nConnection: close\r\n\r\n");
	raw_exchange(req, (size_t)n, out, sizeof out, false);
	assert_int_equal(raw_status(out), 431);
}

struct sleeper { struct reply r; };

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	CURL *c = curl_easy_init();
	char url[128];

	(void)snprintf(url, sizeof url, "http://127.0.0.1:%d/sleep", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s->r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->r.status);
	curl_easy_cleanup(c);
	return NULL;
}

static bool can_connect(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

/* Access log lines: the query string never appears, slow lines do. */
static void test_access_log(void **state)
{
	char buf[65536];
	ssize_t n;

	(void)state;
	n = pread(log_fd, buf, sizeof buf - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"msg\":\"request\""));
	assert_non_null(strstr(buf, "\"route\":\"/echo/{a}/{b}\""));
	assert_non_null(strstr(buf, "\"request_id\":\"client-id.1:2_3\""));
	assert_non_null(strstr(buf, "\"status\":404"));
	assert_non_null(strstr(buf, "\"duration_ms\":"));
	assert_null(strstr(buf, "secret"));      /* query string never logged */
	assert_null(strstr(buf, "Bearer good")); /* nor headers */
}

struct defer_client {
	struct reply r;
	int64_t ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *defer_client_main(void *arg)
{
	struct defer_client *dc = arg;
	int64_t t0 = now_ms();

	do_request("POST", "/defer", "body", NULL, &dc->r);
	dc->ms = now_ms() - t0;
	return NULL;
}

/* A deferred request is answered by its completer; while several wait, the
 * server's two threads are free for other requests (a blocking handler
 * would hold them). Completing inside the handler works too. */
static void test_deferred(void **state)
{
	struct defer_client dc[4];
	pthread_t th[4];
	struct reply r;
	int64_t t0, echo_ms;

	(void)state;
	do_request("POST", "/defer?now=1", "x", NULL, &r);
	assert_int_equal(r.status, 202);
	assert_string_equal(r.body, "later");
	assert_string_equal(r.body_len_hdr, "deferred");
	assert_true(r.request_id[0] != '\0');
	json_decref(r.json);

	memset(dc, 0, sizeof dc);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, defer_client_main, &dc[i]), 0);
	usleep(100 * 1000); /* all four are suspended now */
	t0 = now_ms();
	do_request("GET", "/echo/x/y", NULL, NULL, &r);
	echo_ms = now_ms() - t0;
	assert_int_equal(r.status, 200);
	json_decref(r.json);
	assert_true(echo_ms < DEFER_MS / 2); /* not queued behind the deferred ones */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(dc[i].r.status, 202);
		assert_string_equal(dc[i].r.body, "later");
		assert_true(dc[i].ms >= DEFER_MS - 10); /* answered by the completer */
		json_decref(dc[i].r.json);
	}
}

/* Must run last: stops the server. */
static void test_graceful_stop(void **state)
{
	struct sleeper s;
	pthread_t th;
	struct http_stats st;
	char buf[65536];
	ssize_t n;

	(void)state;
	memset(&s, 0, sizeof s);
	assert_int_equal(pthread_create(&th, NULL, sleeper_main, &s), 0);
	for (int i = 0; i < 200; i++) {
		http_server_stats(server, &st);
		if (st.in_flight > 0)
			break;
		usleep(5000);
	}
	assert_true(st.in_flight > 0);
	assert_true(st.requests > 10);
	http_server_quiesce(server);
	assert_false(can_connect()); /* no longer accepting */
	http_server_stop(server, 5000);
	server = NULL;
	pthread_join(th, NULL);
	assert_int_equal(s.r.status, 200); /* the in-flight request finished */
	assert_non_null(strstr(s.r.body, "slept"));
	/* the sleeping request was logged as slow (400 ms > 200 ms) */
	n = pread(log_fd, buf, sizeof buf - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"slow\":true"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_and_request_id),
		cmocka_unit_test(test_not_found_and_method),
		cmocka_unit_test(test_body_json_errors),
		cmocka_unit_test(test_query_limit),
		cmocka_unit_test(test_handler_without_status),
		cmocka_unit_test(test_hooks),
		cmocka_unit_test(test_raw_body_and_keepalive),
		cmocka_unit_test(test_streamed_body),
		cmocka_unit_test(test_body_too_large_declared),
		cmocka_unit_test(test_body_too_large_at_limit),
		cmocka_unit_test(test_body_too_large_chunked),
		cmocka_unit_test(test_body_endless_chunked),
		cmocka_unit_test(test_invalid_paths),
		cmocka_unit_test(test_uri_too_long),
		cmocka_unit_test(test_header_limits),
		cmocka_unit_test(test_deferred),
		cmocka_unit_test(test_access_log),
		cmocka_unit_test(test_graceful_stop),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
