/* Graph client tests: start tests/fakes/fake_graph.py on a free loopback
 * port and drive src/meta/graph.c against it over real HTTP. The fake's
 * control API (/_fake/...) programs errors and latency and returns the call
 * log, so the tests assert what Meta would have received.
 *
 * The repository root comes from PYTAKE_SOURCE_ROOT, else from walking up
 * from this binary (<build dir>/tests/unit/test_graph) to the directory that
 * holds tests/fakes/fake_graph.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/str.h"
#include "meta/graph.h"

#define TOKEN "EAAG-test-token.123"
#define PHONE_ID "106540352242922"
#define WABA_ID "102290129340398"

static pid_t fake_pid = -1;
static int fake_port;
static char fake_origin[64];   /* http://127.0.0.1:PORT */
static char graph_base[96];    /* fake_origin + /v24.0 */
static char port_file[PATH_MAX];

/* ------------------------------------------------------ fake lifecycle */

static bool file_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* Repository root into out; false when not found. */
static bool find_root(char *out, size_t n)
{
	const char *env = getenv("PYTAKE_SOURCE_ROOT");
	char dir[PATH_MAX];
	char probe[PATH_MAX + 64];
	ssize_t len;

	if (env != NULL && env[0] != '\0')
		return str_copy(out, n, env);
	len = readlink("/proc/self/exe", dir, sizeof(dir) - 1);
	if (len <= 0)
		return false;
	dir[len] = '\0';
	for (int up = 0; up < 8; up++) {
		char *d = dirname(dir);

		memmove(dir, d, strlen(d) + 1);
		snprintf(probe, sizeof(probe), "%s/tests/fakes/fake_graph.py", dir);
		if (file_exists(probe))
			return str_copy(out, n, dir);
		if (strcmp(dir, "/") == 0)
			break;
	}
	return false;
}

static int read_port_file(void)
{
	FILE *f = fopen(port_file, "r");
	char line[32] = { 0 };
	int64_t v = 0;

	if (f == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	if (!str_to_int64(line, &v) || v <= 0 || v > 65535)
		return 0;
	return (int)v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int start_fake(void **state)
{
	char root[PATH_MAX];
	char script[PATH_MAX + 64];
	int fd;

	(void)state;
	if (!find_root(root, sizeof(root))) {
		fprintf(stderr, "test_graph: repository root not found; set PYTAKE_SOURCE_ROOT\n");
		return -1;
	}
	snprintf(script, sizeof(script), "%s/tests/fakes/fake_graph.py", root);
	snprintf(port_file, sizeof(port_file), "/tmp/test_graph_port.XXXXXX");
	fd = mkstemp(port_file);
	if (fd < 0)
		return -1;
	close(fd);
	unlink(port_file);
	fake_pid = fork();
	if (fake_pid < 0)
		return -1;
	if (fake_pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		/* Do not outlive a test binary that crashes or is killed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (devnull >= 0)
			dup2(devnull, STDOUT_FILENO);
		execlp("python3", "python3", script, "--port", "0", "--port-file", port_file,
		       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && fake_port == 0; i++) {
		sleep_ms(50);
		fake_port = read_port_file();
	}
	if (fake_port == 0) {
		fprintf(stderr, "test_graph: the fake Graph server did not start\n");
		return -1;
	}
	snprintf(fake_origin, sizeof(fake_origin), "http://127.0.0.1:%d", fake_port);
	snprintf(graph_base, sizeof(graph_base), "%s/v24.0", fake_origin);
	return 0;
}

static int stop_fake(void **state)
{
	(void)state;
	if (fake_pid > 0) {
		kill(fake_pid, SIGTERM);
		waitpid(fake_pid, NULL, 0);
		fake_pid = -1;
	}
	unlink(port_file);
	curl_global_cleanup();
	return 0;
}

/* --------------------------------------------------------- control API */

struct buf {
	char *p;
	size_t n;
};

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct buf *b = ud;
	size_t add = size * nmemb;
	char *np = realloc(b->p, b->n + add + 1);

	if (np == NULL)
		return 0;
	memcpy(np + b->n, ptr, add);
	b->p = np;
	b->n += add;
	b->p[b->n] = '\0';
	return add;
}

/* POST body (or GET when body is NULL) to the fake's control path;
 * returns the parsed answer (caller decrefs). */
static json_t *ctl(const char *path, const char *body)
{
	CURL *h = curl_easy_init();
	struct buf b = { NULL, 0 };
	char url[256];
	json_t *out = NULL;
	json_error_t jerr;
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");

	assert_non_null(h);
	snprintf(url, sizeof(url), "%s%s", fake_origin, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	if (body != NULL)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	out = json_loadb(b.p, b.n, 0, &jerr);
	assert_non_null(out);
	free(b.p);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return out;
}

static void ctl_post(const char *path, const char *body)
{
	json_decref(ctl(path, body));
}

static int reset_fake(void **state)
{
	(void)state;
	ctl_post("/_fake/reset", "{}");
	return 0;
}

static json_t *calls(void)
{
	json_t *c = ctl("/_fake/calls", NULL);

	assert_true(json_is_array(c));
	return c;
}

static size_t call_count(void)
{
	json_t *c = calls();
	size_t n = json_array_size(c);

	json_decref(c);
	return n;
}

static const char *call_str(json_t *call, const char *key)
{
	json_t *v = json_object_get(call, key);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

static const char *call_header(json_t *call, const char *name)
{
	json_t *v = json_object_get(json_object_get(call, "headers"), name);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static struct graph_client *new_client(void)
{
	struct graph_client *c = graph_client_new(graph_base, 5000);

	assert_non_null(c);
	return c;
}

static const char send_body[] =
	"{\"messaging_product\":\"whatsapp\",\"to\":\"5511987654321\",\"type\":\"template\","
	"\"template\":{\"name\":\"order_update\",\"language\":{\"code\":\"pt_BR\"}}}";

static enum graph_rc do_send(struct graph_client *c, const struct graph_call_opts *o,
			     char *wamid, size_t n, struct graph_error *err)
{
	return graph_send_message(c, TOKEN, PHONE_ID, send_body, strlen(send_body), o, wamid, n,
				  err);
}

/* --------------------------------------------------------------- tests */

static void test_send_ok(void **state)
{
	struct graph_client *c = new_client();
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];
	json_t *log, *call, *want;

	(void)state;
	assert_int_equal(do_send(c, NULL, wamid, sizeof(wamid), &err), GRAPH_OK);
	assert_int_equal(strncmp(wamid, "wamid.", 6), 0);
	assert_int_equal(err.attempts, 1);

	log = calls();
	assert_int_equal(json_array_size(log), 1);
	call = json_array_get(log, 0);
	assert_string_equal(call_str(call, "method"), "POST");
	assert_string_equal(call_str(call, "path"), "/v24.0/" PHONE_ID "/messages");
	assert_string_equal(call_header(call, "Authorization"), "Bearer " TOKEN);
	assert_string_equal(call_header(call, "Content-Type"), "application/json");
	want = json_loads(send_body, 0, NULL);
	assert_true(json_equal(json_object_get(call, "body"), want));
	json_decref(want);
	json_decref(log);

	/* A second send gets a different wamid. */
	char second[GRAPH_WAMID_MAX];
	assert_int_equal(do_send(c, NULL, second, sizeof(second), &err), GRAPH_OK);
	assert_string_not_equal(wamid, second);
	/* A wamid buffer too small is an error, not a truncation. */
	assert_int_equal(do_send(c, NULL, second, 8, &err), GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_BAD_ANSWER);
	graph_client_free(c);
}

struct meta_err_case {
	const char *rule;
	long http_status;
	int64_t code;
	int64_t subcode;
	const char *message;
	const char *fbtrace_id;
	bool transient;
};

static const struct meta_err_case meta_err_cases[] = {
	{ "{\"code\":130429,\"http_status\":429,\"message\":\"(#130429) Rate limit hit\","
	  "\"fbtrace_id\":\"AbCdEfGh123\"}",
	  429, 130429, 0, "(#130429) Rate limit hit", "AbCdEfGh123", true },
	{ "{\"code\":131056,\"http_status\":400,\"message\":\"(#131056) pair rate limit hit\","
	  "\"fbtrace_id\":\"AbCdEfGh124\"}",
	  400, 131056, 0, "(#131056) pair rate limit hit", "AbCdEfGh124", true },
	{ "{\"code\":131026,\"http_status\":400,\"message\":\"Message undeliverable\","
	  "\"fbtrace_id\":\"T3\"}",
	  400, 131026, 0, "Message undeliverable", "T3", false },
	{ "{\"code\":132001,\"subcode\":2494073,\"http_status\":404,"
	  "\"message\":\"(#132001) Template name does not exist in the translation\","
	  "\"fbtrace_id\":\"T4\"}",
	  404, 132001, 2494073, "(#132001) Template name does not exist in the translation", "T4",
	  false },
	{ "{\"code\":131000,\"http_status\":500,\"message\":\"Something went wrong\","
	  "\"fbtrace_id\":\"T5\"}",
	  500, 131000, 0, "Something went wrong", "T5", true },
	{ "{\"code\":100,\"subcode\":33,\"http_status\":400,\"message\":\"Unsupported post\","
	  "\"fbtrace_id\":\"T6\"}",
	  400, 100, 33, "Unsupported post", "T6", false },
};

static void test_meta_errors_parsed(void **state)
{
	struct graph_client *c = new_client();

	(void)state;
	for (size_t i = 0; i < sizeof(meta_err_cases) / sizeof(meta_err_cases[0]); i++) {
		const struct meta_err_case *tc = &meta_err_cases[i];
		struct graph_error err;
		char wamid[GRAPH_WAMID_MAX] = "untouched";

		ctl_post("/_fake/errors", tc->rule);
		assert_int_equal(do_send(c, NULL, wamid, sizeof(wamid), &err), GRAPH_ERR_META);
		assert_string_equal(wamid, "untouched");
		assert_int_equal(err.http_status, tc->http_status);
		assert_int_equal(err.code, tc->code);
		assert_int_equal(err.subcode, tc->subcode);
		assert_string_equal(err.message, tc->message);
		assert_string_equal(err.fbtrace_id, tc->fbtrace_id);
		assert_string_equal(err.type, "OAuthException");
		assert_string_equal(err.details, tc->message);
		assert_int_equal(err.transport, GRAPH_TRANSPORT_NONE);
		assert_int_equal(graph_error_transient(&err), tc->transient);
		assert_int_equal(err.attempts, 1);
	}
	assert_int_equal(call_count(), sizeof(meta_err_cases) / sizeof(meta_err_cases[0]));
	graph_client_free(c);
}

struct transient_case {
	int64_t code;
	long status;
	enum graph_transport t;
	bool want;
};

static const struct transient_case transient_cases[] = {
	{ 130429, 400, GRAPH_TRANSPORT_NONE, true },
	{ 130429, 429, GRAPH_TRANSPORT_NONE, true },
	{ 131056, 400, GRAPH_TRANSPORT_NONE, true },
	{ 80007, 400, GRAPH_TRANSPORT_NONE, true },
	{ 131057, 400, GRAPH_TRANSPORT_NONE, true },
	{ 131000, 500, GRAPH_TRANSPORT_NONE, true },
	{ 131016, 503, GRAPH_TRANSPORT_NONE, true },
	{ 0, 500, GRAPH_TRANSPORT_NONE, true },
	{ 0, 502, GRAPH_TRANSPORT_BAD_JSON, true },
	{ 0, 503, GRAPH_TRANSPORT_NONE, true },
	{ 0, 429, GRAPH_TRANSPORT_NONE, true },
	{ 0, 0, GRAPH_TRANSPORT_TIMEOUT, true },
	{ 0, 0, GRAPH_TRANSPORT_CONNECT, true },
	{ 131026, 400, GRAPH_TRANSPORT_NONE, false },
	{ 132000, 400, GRAPH_TRANSPORT_NONE, false },
	{ 132001, 404, GRAPH_TRANSPORT_NONE, false },
	{ 131049, 400, GRAPH_TRANSPORT_NONE, false },
	{ 131050, 400, GRAPH_TRANSPORT_NONE, false },
	{ 131026, 500, GRAPH_TRANSPORT_NONE, false }, /* permanent code wins over 5xx */
	{ 100, 400, GRAPH_TRANSPORT_NONE, false },
	{ 190, 401, GRAPH_TRANSPORT_NONE, false },
	{ 0, 404, GRAPH_TRANSPORT_NONE, false },
	{ 0, 200, GRAPH_TRANSPORT_BAD_JSON, false },
	{ 0, 200, GRAPH_TRANSPORT_BAD_ANSWER, false },
	{ 0, 0, GRAPH_TRANSPORT_TOO_LARGE, false },
	{ 0, 0, GRAPH_TRANSPORT_BAD_NEXT, false },
	{ 0, 0, GRAPH_TRANSPORT_OTHER, false },
};

static void test_transient_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(transient_cases) / sizeof(transient_cases[0]); i++) {
		const struct transient_case *tc = &transient_cases[i];

		if (graph_error_is_transient(tc->code, tc->status, tc->t) != tc->want)
			fail_msg("case %zu: code %lld status %ld transport %s: want %d", i,
				 (long long)tc->code, tc->status, graph_transport_name(tc->t),
				 tc->want);
	}
	assert_false(graph_error_transient(NULL));
}

static void test_retries_when_asked(void **state)
{
	struct graph_client *c = new_client();
	struct graph_call_opts o = { .retries = 3, .backoff_base_ms = 5, .backoff_max_ms = 20 };
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];

	(void)state;
	ctl_post("/_fake/errors", "{\"code\":130429,\"http_status\":429,\"count\":2}");
	assert_int_equal(do_send(c, &o, wamid, sizeof(wamid), &err), GRAPH_OK);
	assert_int_equal(err.attempts, 3);
	assert_int_equal(call_count(), 3);

	/* Retries exhausted: the last error comes back. */
	ctl_post("/_fake/reset", "{}");
	ctl_post("/_fake/errors", "{\"code\":131056,\"http_status\":400,\"count\":0}");
	o.retries = 2;
	assert_int_equal(do_send(c, &o, wamid, sizeof(wamid), &err), GRAPH_ERR_META);
	assert_int_equal(err.code, 131056);
	assert_int_equal(err.attempts, 3);
	assert_int_equal(call_count(), 3);
	graph_client_free(c);
}

static void test_no_retries_by_default_or_when_permanent(void **state)
{
	struct graph_client *c = new_client();
	struct graph_call_opts o = { .retries = 3, .backoff_base_ms = 5 };
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];

	(void)state;
	ctl_post("/_fake/errors", "{\"code\":130429,\"http_status\":429,\"count\":1}");
	assert_int_equal(do_send(c, NULL, wamid, sizeof(wamid), &err), GRAPH_ERR_META);
	assert_int_equal(err.code, 130429);
	assert_int_equal(err.attempts, 1);
	assert_int_equal(call_count(), 1);

	ctl_post("/_fake/reset", "{}");
	ctl_post("/_fake/errors", "{\"code\":131026,\"http_status\":400,\"count\":1}");
	assert_int_equal(do_send(c, &o, wamid, sizeof(wamid), &err), GRAPH_ERR_META);
	assert_int_equal(err.code, 131026);
	assert_int_equal(err.attempts, 1);
	assert_int_equal(call_count(), 1);
	graph_client_free(c);
}

static void test_timeout(void **state)
{
	struct graph_client *c = graph_client_new(graph_base, 300);
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];

	(void)state;
	assert_non_null(c);
	ctl_post("/_fake/errors", "{\"match\":{\"path_regex\":\"/messages$\"},\"latency_ms\":1500}");
	assert_int_equal(do_send(c, NULL, wamid, sizeof(wamid), &err), GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_TIMEOUT);
	assert_true(graph_error_transient(&err));
	/* The rule was used once: the next send goes through on the same client. */
	assert_int_equal(do_send(c, NULL, wamid, sizeof(wamid), &err), GRAPH_OK);

	/* Global latency under the timeout still succeeds. */
	ctl_post("/_fake/latency", "{\"ms\":50}");
	assert_int_equal(do_send(c, NULL, wamid, sizeof(wamid), &err), GRAPH_OK);
	graph_client_free(c);
}

static void test_oversize_answer(void **state)
{
	struct graph_client_opts o = { .max_response = 64 * 1024 };
	struct graph_client *small = graph_client_new_opts(graph_base, &o);
	struct graph_client *dflt = new_client();
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];

	(void)state;
	assert_non_null(small);
	ctl_post("/_fake/errors", "{\"raw_body\":\"xxxxxxxxxx\",\"raw_body_repeat\":10000,"
				  "\"http_status\":200}");
	assert_int_equal(do_send(small, NULL, wamid, sizeof(wamid), &err), GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_TOO_LARGE);
	assert_false(graph_error_transient(&err));

	/* Default cap is 4 MiB: a 5 MiB answer is refused. */
	ctl_post("/_fake/errors", "{\"raw_body\":\"x\",\"raw_body_repeat\":5242880,"
				  "\"http_status\":200}");
	assert_int_equal(do_send(dflt, NULL, wamid, sizeof(wamid), &err), GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_TOO_LARGE);
	graph_client_free(small);
	graph_client_free(dflt);
}

static void test_garbage_bodies(void **state)
{
	struct graph_client *c = new_client();
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];

	(void)state;
	ctl_post("/_fake/errors", "{\"raw_body\":\"<html><body>502 Bad Gateway</body></html>\","
				  "\"http_status\":502}");
	assert_int_equal(do_send(c, NULL, wamid, sizeof(wamid), &err), GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_BAD_JSON);
	assert_int_equal(err.http_status, 502);
	assert_true(graph_error_transient(&err));

	/* 200 with garbage: bad JSON, and not retried (it may have been sent). */
	struct graph_call_opts o = { .retries = 3, .backoff_base_ms = 5 };
	ctl_post("/_fake/reset", "{}");
	ctl_post("/_fake/errors", "{\"raw_body\":\"{\\\"messages\\\": [\",\"http_status\":200}");
	assert_int_equal(do_send(c, &o, wamid, sizeof(wamid), &err), GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_BAD_JSON);
	assert_int_equal(call_count(), 1);

	/* 400 with JSON that is not Meta's error object. */
	ctl_post("/_fake/errors", "{\"raw_body\":\"{\\\"oops\\\":1}\",\"http_status\":400}");
	assert_int_equal(do_send(c, NULL, wamid, sizeof(wamid), &err), GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_BAD_ANSWER);
	assert_int_equal(err.http_status, 400);
	graph_client_free(c);
}

static const char seed3[] =
	"{\"waba_id\":\"" WABA_ID "\",\"templates\":["
	"{\"name\":\"order_update\",\"language\":\"pt_BR\",\"category\":\"UTILITY\",\"id\":\"11\"},"
	"{\"name\":\"welcome\",\"language\":\"pt_BR\",\"category\":\"MARKETING\",\"id\":\"12\"},"
	"{\"name\":\"otp\",\"language\":\"en_US\",\"category\":\"AUTHENTICATION\",\"id\":\"13\"}]";

static void seed_templates(const char *extra)
{
	char body[2048];

	snprintf(body, sizeof(body), "%s%s}", seed3, extra);
	ctl_post("/_fake/templates", body);
}

static void test_list_follows_pages(void **state)
{
	struct graph_client *c = new_client();
	struct graph_error err;
	json_t *all = NULL, *log;
	int pages = 0;
	const char *names[] = { "order_update", "welcome", "otp" };

	(void)state;
	seed_templates("");
	assert_int_equal(graph_list_templates(c, TOKEN, WABA_ID, 100, NULL, &all, &pages, &err),
			 GRAPH_OK);
	assert_int_equal(pages, 2);
	assert_int_equal(json_array_size(all), 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(json_string_value(json_object_get(json_array_get(all, i), "name")),
				    names[i]);
	json_decref(all);

	log = calls();
	assert_int_equal(json_array_size(log), 2);
	assert_string_equal(call_str(json_array_get(log, 0), "method"), "GET");
	assert_string_equal(call_str(json_array_get(log, 0), "path"),
			    "/v24.0/" WABA_ID "/message_templates");
	assert_string_equal(call_str(json_array_get(log, 0), "query"), "limit=100");
	assert_non_null(strstr(call_str(json_array_get(log, 1), "query"), "after="));
	assert_string_equal(call_header(json_array_get(log, 1), "Authorization"), "Bearer " TOKEN);
	json_decref(log);

	/* An empty store: one page, empty array. */
	assert_int_equal(graph_list_templates(c, TOKEN, "999", 0, NULL, &all, &pages, &err),
			 GRAPH_OK);
	assert_int_equal(pages, 1);
	assert_int_equal(json_array_size(all), 0);
	json_decref(all);
	graph_client_free(c);
}

static void test_list_refuses_foreign_next(void **state)
{
	struct graph_client *c = new_client();
	struct graph_error err;
	json_t *all = NULL;
	char extra[256];
	/* Another host, port, scheme, userinfo trick: all refused. */
	const char *prefixes[] = { "http://evil.example.com", "http://127.0.0.2:",
				   "https://127.0.0.1:", "http://127.0.0.1:", "http://127.0.0.1:1" };
	const char *suffixes[] = { "", "", "", "@evil.example.com", "" };
	const bool with_port[] = { false, true, true, true, false };

	(void)state;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		char port[16] = "";

		ctl_post("/_fake/reset", "{}");
		if (with_port[i])
			snprintf(port, sizeof(port), "%d", fake_port);
		snprintf(extra, sizeof(extra), ",\"next_base\":\"%s%s%s\"", prefixes[i], port,
			 suffixes[i]);
		seed_templates(extra);
		assert_int_equal(graph_list_templates(c, TOKEN, WABA_ID, 0, NULL, &all, NULL, &err),
				 GRAPH_ERR_TRANSPORT);
		assert_null(all);
		assert_int_equal(err.transport, GRAPH_TRANSPORT_BAD_NEXT);
		assert_int_equal(call_count(), 1);
	}
	graph_client_free(c);
}

static void test_list_page_cap(void **state)
{
	struct graph_client_opts o = { .max_pages = 2 };
	struct graph_client *c = graph_client_new_opts(graph_base, &o);
	struct graph_error err;
	json_t *all = NULL;

	(void)state;
	assert_non_null(c);
	seed_templates(",\"page_size\":1"); /* three pages */
	assert_int_equal(graph_list_templates(c, TOKEN, WABA_ID, 0, NULL, &all, NULL, &err),
			 GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_BAD_NEXT);
	assert_null(all);
	graph_client_free(c);
}

static void test_create_template(void **state)
{
	static const char body[] =
		"{\"name\":\"order_update\",\"language\":\"pt_BR\",\"category\":\"UTILITY\","
		"\"components\":[{\"type\":\"BODY\",\"text\":\"Ola {{1}}\","
		"\"example\":{\"body_text\":[[\"Maria\"]]}}]}";
	struct graph_client *c = new_client();
	struct graph_template_created t;
	struct graph_error err;
	json_t *log, *want;

	(void)state;
	assert_int_equal(graph_create_template(c, TOKEN, WABA_ID, body, strlen(body), NULL, &t,
					       &err),
			 GRAPH_OK);
	assert_true(t.id[0] != '\0');
	assert_string_equal(t.status, "PENDING");
	assert_string_equal(t.category, "UTILITY");

	log = calls();
	assert_string_equal(call_str(json_array_get(log, 0), "path"),
			    "/v24.0/" WABA_ID "/message_templates");
	want = json_loads(body, 0, NULL);
	assert_true(json_equal(json_object_get(json_array_get(log, 0), "body"), want));
	json_decref(want);
	json_decref(log);

	/* The same name and language again: Meta's error with its subcode. */
	assert_int_equal(graph_create_template(c, TOKEN, WABA_ID, body, strlen(body), NULL, &t,
					       &err),
			 GRAPH_ERR_META);
	assert_int_equal(err.code, 100);
	assert_int_equal(err.subcode, 2388024);
	assert_string_equal(err.details, "Content in this language already exists");
	graph_client_free(c);
}

static void test_delete_template(void **state)
{
	struct graph_client *c = new_client();
	struct graph_error err;
	json_t *log;

	(void)state;
	seed_templates("");
	assert_int_equal(graph_delete_template(c, TOKEN, WABA_ID, "welcome", "12", NULL, &err),
			 GRAPH_OK);
	assert_int_equal(graph_delete_template(c, TOKEN, WABA_ID, "welcome", "12", NULL, &err),
			 GRAPH_ERR_META);
	assert_int_equal(err.code, 100);
	assert_int_equal(graph_delete_template(c, TOKEN, WABA_ID, "a b&c=d", NULL, NULL, &err),
			 GRAPH_ERR_META);
	log = calls();
	assert_int_equal(json_array_size(log), 3);
	assert_string_equal(call_str(json_array_get(log, 0), "method"), "DELETE");
	assert_string_equal(call_str(json_array_get(log, 0), "query"), "name=welcome&hsm_id=12");
	assert_string_equal(call_str(json_array_get(log, 2), "query"), "name=a%20b%26c%3Dd");
	json_decref(log);
	graph_client_free(c);
}

static void test_invalid_arguments(void **state)
{
	struct graph_client *c = new_client();
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];
	const char *bad_ids[] = { "", "..", "1/../2", "12?x=1", "a b", "%2e%2e" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
		assert_int_equal(graph_send_message(c, TOKEN, bad_ids[i], send_body,
						    strlen(send_body), NULL, wamid, sizeof(wamid),
						    &err),
				 GRAPH_ERR_INVALID);
	assert_int_equal(graph_send_message(c, "tok\r\nX-Evil: 1", PHONE_ID, send_body,
					    strlen(send_body), NULL, wamid, sizeof(wamid), &err),
			 GRAPH_ERR_INVALID);
	assert_int_equal(graph_send_message(c, "", PHONE_ID, send_body, strlen(send_body), NULL,
					    wamid, sizeof(wamid), &err),
			 GRAPH_ERR_INVALID);
	assert_int_equal(graph_delete_template(c, TOKEN, WABA_ID, "", NULL, NULL, &err),
			 GRAPH_ERR_INVALID);
	assert_int_equal(call_count(), 0);

	assert_null(graph_client_new("ftp://example.com", 1000));
	assert_null(graph_client_new("not a url", 1000));
	assert_null(graph_client_new(NULL, 1000));
	graph_client_free(NULL);
	graph_client_free(c);
}

static void test_base_url_and_origin(void **state)
{
	char url[128];
	struct graph_client *c;

	(void)state;
	c = graph_client_new("https://graph.facebook.com/v24.0/", 1000);
	assert_non_null(c);
	assert_string_equal(graph_client_base_url(c), "https://graph.facebook.com/v24.0");
	assert_true(graph_same_origin(c, "https://graph.facebook.com/v24.0/1/message_templates"));
	assert_true(graph_same_origin(c, "https://GRAPH.facebook.com:443/v23.0/x"));
	assert_false(graph_same_origin(c, "http://graph.facebook.com/v24.0/x"));
	assert_false(graph_same_origin(c, "https://graph.facebook.com:8443/v24.0/x"));
	assert_false(graph_same_origin(c, "https://graph.facebook.com.evil.io/v24.0/x"));
	assert_false(graph_same_origin(c, "https://evil.io/?https://graph.facebook.com/"));
	assert_false(graph_same_origin(c, "file:///etc/passwd"));
	assert_false(graph_same_origin(c, "/v24.0/relative"));
	assert_false(graph_same_origin(c, NULL));
	graph_client_free(c);

	c = new_client();
	snprintf(url, sizeof(url), "%s/anything", fake_origin);
	assert_true(graph_same_origin(c, url));
	graph_client_free(c);
}

static void test_connect_error(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	char base[64];
	struct graph_client *c;
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];
	struct graph_call_opts o = { .retries = 2, .backoff_base_ms = 1 };

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &al), 0);
	close(s);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", ntohs(a.sin_port));
	c = graph_client_new(base, 2000);
	assert_non_null(c);
	assert_int_equal(do_send(c, &o, wamid, sizeof(wamid), &err), GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_CONNECT);
	assert_true(graph_error_transient(&err));
	assert_int_equal(err.attempts, 3);
	graph_client_free(c);
}

/* The parser on Meta's documented sample (graph_error_throughput.json). */
static void test_parse_error_sample(void **state)
{
	static const char sample[] =
		"{\n \"error\": {\n  \"message\": \"(#130429) Rate limit hit\",\n"
		"  \"type\": \"OAuthException\",\n  \"code\": 130429,\n  \"error_data\": {\n"
		"   \"messaging_product\": \"whatsapp\",\n"
		"   \"details\": \"Cloud API message throughput has been reached.\"\n  },\n"
		"  \"fbtrace_id\": \"AbCdEfGh123\"\n }\n}";
	struct graph_error err;
	json_t *arr = json_array();
	char *next = (char *)"untouched";

	(void)state;
	assert_int_equal(graph_parse_error(400, sample, strlen(sample), &err), GRAPH_ERR_META);
	assert_int_equal(err.code, 130429);
	assert_string_equal(err.details, "Cloud API message throughput has been reached.");
	assert_string_equal(err.fbtrace_id, "AbCdEfGh123");
	/* An error object inside a 200 is still an error. */
	assert_int_equal(graph_parse_list_page(sample, strlen(sample), arr, &next, &err),
			 GRAPH_ERR_META);
	assert_string_equal(next, "untouched");
	assert_int_equal(err.http_status, 200);
	/* Wrong types are ignored, not trusted. */
	static const char odd[] = "{\"error\":{\"code\":\"130429\",\"message\":5,\"fbtrace_id\":[]}}";
	assert_int_equal(graph_parse_error(400, odd, strlen(odd), &err), GRAPH_ERR_META);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.message, "");
	assert_int_equal(graph_parse_error(503, "", 0, &err), GRAPH_ERR_TRANSPORT);
	assert_int_equal(err.transport, GRAPH_TRANSPORT_BAD_JSON);
	json_decref(arr);
}

/* Several threads share one client (and its handle pool). */
struct worker {
	struct graph_client *c;
	int ok;
	char last[GRAPH_WAMID_MAX];
};

static void *send_worker(void *arg)
{
	struct worker *w = arg;
	struct graph_error err;

	for (int i = 0; i < 25; i++)
		if (do_send(w->c, NULL, w->last, sizeof(w->last), &err) == GRAPH_OK)
			w->ok++;
	return NULL;
}

static void test_threads_share_client(void **state)
{
	struct graph_client *c = new_client();
	struct worker w[4];
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].c = c;
		assert_int_equal(pthread_create(&t[i], NULL, send_worker, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].ok, 25);
	}
	assert_string_not_equal(w[0].last, w[1].last);
	assert_int_equal(call_count(), 100);
	graph_client_free(c);
}

/* Connection reuse: sequential calls on one client, whatever the endpoint
 * (send, list with its two pages), travel on one kept-alive connection (the
 * fake logs each call's TCP source port); a second client has its own. */
static json_int_t call_port(json_t *log, size_t i)
{
	json_t *p = json_object_get(json_array_get(log, i), "peer_port");

	assert_true(json_is_integer(p));
	return json_integer_value(p);
}

static void test_connection_reused(void **state)
{
	struct graph_client *c = new_client(), *other = new_client();
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];
	json_t *all = NULL, *log;
	int pages = 0;

	(void)state;
	seed_templates("");
	for (int i = 0; i < 5; i++)
		assert_int_equal(do_send(c, NULL, wamid, sizeof(wamid), &err), GRAPH_OK);
	assert_int_equal(graph_list_templates(c, TOKEN, WABA_ID, 100, NULL, &all, &pages, &err),
			 GRAPH_OK);
	assert_int_equal(pages, 2);
	json_decref(all);
	assert_int_equal(do_send(other, NULL, wamid, sizeof(wamid), &err), GRAPH_OK);

	log = calls();
	assert_int_equal(json_array_size(log), 8);
	for (size_t i = 1; i < 7; i++)
		assert_true(call_port(log, i) == call_port(log, 0));
	assert_true(call_port(log, 7) != call_port(log, 0));
	json_decref(log);
	graph_client_free(other);
	graph_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_send_ok, reset_fake),
		cmocka_unit_test_setup(test_meta_errors_parsed, reset_fake),
		cmocka_unit_test(test_transient_table),
		cmocka_unit_test_setup(test_retries_when_asked, reset_fake),
		cmocka_unit_test_setup(test_no_retries_by_default_or_when_permanent, reset_fake),
		cmocka_unit_test_setup(test_timeout, reset_fake),
		cmocka_unit_test_setup(test_oversize_answer, reset_fake),
		cmocka_unit_test_setup(test_garbage_bodies, reset_fake),
		cmocka_unit_test_setup(test_list_follows_pages, reset_fake),
		cmocka_unit_test_setup(test_list_refuses_foreign_next, reset_fake),
		cmocka_unit_test_setup(test_list_page_cap, reset_fake),
		cmocka_unit_test_setup(test_create_template, reset_fake),
		cmocka_unit_test_setup(test_delete_template, reset_fake),
		cmocka_unit_test_setup(test_invalid_arguments, reset_fake),
		cmocka_unit_test(test_connect_error),
		cmocka_unit_test_setup(test_base_url_and_origin, reset_fake),
		cmocka_unit_test(test_parse_error_sample),
		cmocka_unit_test_setup(test_threads_share_client, reset_fake),
		cmocka_unit_test_setup(test_connection_reused, reset_fake),
	};

	return cmocka_run_group_tests_name("graph", tests, start_fake, stop_fake);
}
