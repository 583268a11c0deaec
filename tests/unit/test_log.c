/* Unit tests for core/log: lines are captured through a pipe installed with
 * the log_set_fd() test hook and checked by parsing them with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <unistd.h>

#include "core/log.h"
#include "core/timeutil.h"

static int g_pipe[2];

static int setup(void **state)
{
	(void)state;
	if (pipe(g_pipe) != 0)
		return -1;
	log_set_fd(g_pipe[1]);
	log_setup(LOG_DEBUG, LOG_FORMAT_JSON);
	log_set_request_id(NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_set_fd(2);
	close(g_pipe[0]);
	close(g_pipe[1]);
	return 0;
}

/* Everything written so far (one or more lines); caller frees. */
static char *drain(void)
{
	static char buf[65536];
	ssize_t n;

	log_msg(LOG_ERROR, "--end--"); /* sentinel so read never blocks empty */
	n = read(g_pipe[0], buf, sizeof buf - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	/* cut off the sentinel line */
	char *end = strstr(buf, "--end--");
	assert_non_null(end);
	while (end > buf && end[-1] != '\n')
		end--;
	*end = '\0';
	return strdup(buf);
}

/* Exactly one line, parsed as JSON; checks the common keys. */
static json_t *one_json_line(char **raw_out)
{
	char *raw = drain();
	json_error_t err;
	json_t *j;
	size_t len = strlen(raw);

	assert_true(len > 0);
	assert_int_equal(raw[len - 1], '\n');
	assert_null(memchr(raw, '\n', len - 1)); /* a single line */
	j = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL)
		fail_msg("not JSON: %s: %s", err.text, raw);
	if (raw_out != NULL)
		*raw_out = raw;
	else
		free(raw);
	return j;
}

static void test_json_line_shape(void **state)
{
	json_t *j;
	char *raw;
	int64_t us;

	(void)state;
	log_event(LOG_INFO, "server started", LF_I("port", 8000), LF_B("tls", 0),
		  LF_D("ms", 1.5), LF_S("name", "api"), LF_S("nothing", NULL));
	j = one_json_line(&raw);
	/* key order: ts, level, msg, then fields as given */
	assert_non_null(strstr(raw, "{\"ts\":\""));
	assert_non_null(strstr(raw, "\",\"level\":\"info\",\"msg\":\"server started\","
				    "\"port\":8000,\"tls\":false,\"ms\":1.500,\"name\":\"api\","
				    "\"nothing\":null}\n"));
	assert_true(time_parse_rfc3339(json_string_value(json_object_get(j, "ts")), &us));
	assert_int_equal(strlen(json_string_value(json_object_get(j, "ts"))), 24);
	assert_true(llabs(us - time_now_us()) < 5 * 1000000LL);
	assert_null(json_object_get(j, "request_id"));
	json_decref(j);
	free(raw);
}

static void test_levels(void **state)
{
	static const struct {
		enum log_level lvl;
		const char *name;
	} cases[] = {
		{ LOG_DEBUG, "debug" }, { LOG_INFO, "info" },
		{ LOG_WARN, "warn" }, { LOG_ERROR, "error" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *j;

		log_msg(cases[i].lvl, "x");
		j = one_json_line(NULL);
		assert_string_equal(json_string_value(json_object_get(j, "level")),
				    cases[i].name);
		json_decref(j);
	}
}

static void test_level_filter(void **state)
{
	char *raw;

	(void)state;
	log_setup(LOG_WARN, LOG_FORMAT_JSON);
	assert_false(log_enabled(LOG_DEBUG));
	assert_false(log_enabled(LOG_INFO));
	assert_true(log_enabled(LOG_WARN));
	assert_true(log_enabled(LOG_ERROR));
	log_msg(LOG_INFO, "hidden-info");
	log_event(LOG_DEBUG, "hidden-debug", LF_I("n", 1));
	log_msg(LOG_WARN, "shown");
	raw = drain();
	assert_null(strstr(raw, "hidden"));
	assert_non_null(strstr(raw, "\"msg\":\"shown\""));
	free(raw);
	log_setup(LOG_DEBUG, LOG_FORMAT_JSON);
}

struct esc_case {
	const char *in;
	const char *raw;     /* as it must appear in the line */
	const char *decoded; /* as jansson reads it back */
};

static void test_escaping(void **state)
{
	static const struct esc_case cases[] = {
		{ "plain", "\"plain\"", "plain" },
		{ "q\"b\\s/", "\"q\\\"b\\\\s/\"", "q\"b\\s/" },
		{ "a\nb\rc\td", "\"a\\nb\\rc\\td\"", "a\nb\rc\td" },
		{ "\b\f", "\"\\b\\f\"", "\b\f" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"", "\x01\x1f\x7f" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		/* invalid UTF-8: lone continuation, truncated, overlong, surrogate, > U+10FFFF */
		{ "a\x80z", "\"a\\ufffdz\"", "a\xef\xbf\xbdz" },
		{ "a\xc3", "\"a\\ufffd\"", "a\xef\xbf\xbd" },
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"", "\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"",
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"",
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"",
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xff", "\"\\ufffd\"", "\xef\xbf\xbd" },
		{ "", "\"\"", "" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *raw;
		json_t *j;

		/* same text as key, value and msg */
		log_event(LOG_INFO, cases[i].in, LF_S("v", cases[i].in), LF_S(cases[i].in, "k"));
		j = one_json_line(&raw);
		if (strstr(raw, cases[i].raw) == NULL)
			fail_msg("case %zu: %s not in %s", i, cases[i].raw, raw);
		assert_string_equal(json_string_value(json_object_get(j, "v")),
				    cases[i].decoded);
		assert_string_equal(json_string_value(json_object_get(j, "msg")),
				    cases[i].decoded);
		assert_string_equal(json_string_value(json_object_get(j, cases[i].decoded)), "k");
		json_decref(j);
		free(raw);
	}
}

static void test_numbers(void **state)
{
	json_t *j;

	(void)state;
	log_event(LOG_INFO, "n", LF_I("min", INT64_MIN), LF_I("max", INT64_MAX),
		  LF_D("nan", NAN), LF_D("inf", INFINITY), LF_D("small", 0.25),
		  LF_B("yes", 7));
	j = one_json_line(NULL);
	assert_true(json_integer_value(json_object_get(j, "min")) == INT64_MIN);
	assert_true(json_integer_value(json_object_get(j, "max")) == INT64_MAX);
	assert_true(json_is_null(json_object_get(j, "nan")));
	assert_true(json_is_null(json_object_get(j, "inf")));
	assert_true(json_real_value(json_object_get(j, "small")) == 0.25);
	assert_true(json_is_true(json_object_get(j, "yes")));
	json_decref(j);
}

static void *other_thread(void *arg)
{
	(void)arg;
	log_msg(LOG_INFO, "from-other-thread");
	return NULL;
}

static void test_request_id(void **state)
{
	json_t *j;
	pthread_t t;
	char *raw;

	(void)state;
	log_set_request_id("req-123");
	log_event(LOG_INFO, "with", LF_I("a", 1));
	j = one_json_line(&raw);
	assert_string_equal(json_string_value(json_object_get(j, "request_id")), "req-123");
	/* request_id comes right after msg */
	assert_non_null(strstr(raw, "\"msg\":\"with\",\"request_id\":\"req-123\",\"a\":1}"));
	json_decref(j);
	free(raw);

	/* another thread does not see this thread's id */
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	j = one_json_line(NULL);
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "from-other-thread");
	assert_null(json_object_get(j, "request_id"));
	json_decref(j);

	log_set_request_id(NULL);
	log_msg(LOG_INFO, "without");
	j = one_json_line(NULL);
	assert_null(json_object_get(j, "request_id"));
	json_decref(j);
}

static void test_text_format(void **state)
{
	char *raw;
	int64_t us;
	char ts[32];

	(void)state;
	log_setup(LOG_DEBUG, LOG_FORMAT_TEXT);
	log_set_request_id("r1");
	log_event(LOG_WARN, "slow request", LF_I("ms", 1200), LF_S("path", "/api/v1/x"),
		  LF_S("note", "two words"), LF_S("empty", ""), LF_B("ok", 1),
		  LF_S("nl", "a\nb"));
	raw = drain();
	log_set_request_id(NULL);
	log_setup(LOG_DEBUG, LOG_FORMAT_JSON);

	assert_true(strlen(raw) > 25);
	memcpy(ts, raw, 24);
	ts[24] = '\0';
	assert_true(time_parse_rfc3339(ts, &us));
	assert_string_equal(raw + 24, " WARN slow request request_id=r1 ms=1200 path=/api/v1/x "
				      "note=\"two words\" empty=\"\" ok=true nl=\"a\\nb\"\n");
	free(raw);
}

static void test_long_value_truncated(void **state)
{
	size_t n = 20000;
	char *big = malloc(n + 1);
	char *raw;
	json_t *j;
	const char *v;

	(void)state;
	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	log_event(LOG_INFO, "big", LF_S("v", big), LF_I("after", 1));
	j = one_json_line(&raw);
	assert_true(strlen(raw) <= 8192);
	v = json_string_value(json_object_get(j, "v"));
	assert_non_null(v);
	assert_true(strlen(v) < n);
	assert_true(strlen(v) > 1000);
	assert_string_equal(v + strlen(v) - 3, "...");
	assert_int_equal(json_integer_value(json_object_get(j, "after")), 1);
	json_decref(j);
	free(raw);
	free(big);
}

/* Escape-heavy and multibyte values are cut at a character boundary and
 * fields that no longer fit are dropped with a marker; the line stays JSON. */
static void test_line_overflow(void **state)
{
	size_t n = 3000;
	char *ctl = malloc(n + 1);
	char *mb = malloc(3 * n + 1);
	json_t *j;
	char *raw;

	(void)state;
	assert_non_null(ctl);
	assert_non_null(mb);
	memset(ctl, '\x01', n);
	ctl[n] = '\0';
	for (size_t i = 0; i < n; i++)
		memcpy(mb + 3 * i, "\xe2\x82\xac", 3);
	mb[3 * n] = '\0';
	log_event(LOG_INFO, ctl, LF_S("a", ctl), LF_S("b", mb), LF_S("c", ctl),
		  LF_S("d", ctl), LF_S("e", ctl), LF_S("f", ctl));
	j = one_json_line(&raw);
	assert_true(strlen(raw) <= 8192);
	assert_true(json_is_true(json_object_get(j, "truncated")));
	for (const char *k = "abcdef"; *k; k++) {
		char key[2] = { *k, '\0' };
		const char *v = json_string_value(json_object_get(j, key));

		if (v != NULL)
			assert_string_equal(v + strlen(v) - 3, "...");
	}
	json_decref(j);
	free(raw);

	/* 2048 input bytes is not a multiple of 3: the cut must not split one */
	log_event(LOG_INFO, "m", LF_S("b", mb));
	j = one_json_line(NULL);
	{
		const char *v = json_string_value(json_object_get(j, "b"));

		assert_non_null(v);
		assert_int_equal(strlen(v), 682 * 3 + 3);
		assert_string_equal(v + strlen(v) - 3, "...");
	}
	json_decref(j);
	free(ctl);
	free(mb);
}

static void test_null_key_and_msg(void **state)
{
	json_t *j;

	(void)state;
	log_event(LOG_INFO, NULL, LF_S(NULL, "x"), LF_I("k", 2));
	j = one_json_line(NULL);
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "");
	assert_int_equal(json_object_size(j), 4); /* ts, level, msg, k */
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_line_shape),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_level_filter),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_request_id),
		cmocka_unit_test(test_text_format),
		cmocka_unit_test(test_long_value_truncated),
		cmocka_unit_test(test_line_overflow),
		cmocka_unit_test(test_null_key_and_msg),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
