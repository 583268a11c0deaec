/* Unit tests for the metrics registry and its text exposition
 * (src/core/metrics.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"

static char *render(struct metrics *m)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(metrics_render(m, &text, &len), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	return text;
}

/* The line of text equal to line, or NULL. */
static const char *find_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);

		if (len == n && memcmp(p, line, n) == 0)
			return p;
		p = nl != NULL ? nl + 1 : NULL;
	}
	return NULL;
}

static void assert_has_line(const char *text, const char *line)
{
	if (find_line(text, line) == NULL)
		fail_msg("line not found: [%s] in:\n%s", line, text);
}

static void test_counter_without_labels(void **state)
{
	struct metrics *m = metrics_new();
	struct metric_family *f;
	char *text;

	(void)state;
	assert_non_null(m);
	f = metrics_counter_new(m, "jobs_total", "Jobs done.", 0, NULL);
	assert_non_null(f);
	text = render(m);
	assert_has_line(text, "# HELP jobs_total Jobs done.");
	assert_has_line(text, "# TYPE jobs_total counter");
	assert_has_line(text, "jobs_total 0");
	free(text);
	metrics_inc(f, NULL, 3);
	metrics_inc(f, NULL, 2);
	metrics_inc(f, NULL, -7); /* counters never go down */
	text = render(m);
	assert_has_line(text, "jobs_total 5");
	free(text);
	metrics_free(m);
}

static void test_counter_labels_and_reuse(void **state)
{
	static const char *const labels[] = { "route", "method", "status" };
	struct metrics *m = metrics_new();
	struct metric_family *f;
	struct metric_series *a, *b;
	char *text;

	(void)state;
	f = metrics_counter_new(m, "req_total", "Requests.", 3, labels);
	assert_non_null(f);
	a = metrics_series(f, (const char *const[]){ "/health", "GET", "200" });
	b = metrics_series(f, (const char *const[]){ "/health", "GET", "200" });
	assert_non_null(a);
	assert_ptr_equal(a, b);
	/* different split of the same characters is another series */
	b = metrics_series(f, (const char *const[]){ "/health", "GE", "T200" });
	assert_ptr_not_equal(a, b);
	metrics_add(a, 2);
	metrics_inc(f, (const char *const[]){ "unmatched", "POST", "404" }, 1);
	text = render(m);
	assert_has_line(text, "req_total{route=\"/health\",method=\"GET\",status=\"200\"} 2");
	assert_has_line(text, "req_total{route=\"unmatched\",method=\"POST\",status=\"404\"} 1");
	assert_has_line(text, "req_total{route=\"/health\",method=\"GE\",status=\"T200\"} 0");
	free(text);
	metrics_free(m);
}

struct escape_case {
	const char *value;
	const char *want; /* rendered line */
};

static void test_label_value_escaping(void **state)
{
	static const char *const labels[] = { "v" };
	static const struct escape_case cases[] = {
		{ "plain", "esc_total{v=\"plain\"} 1" },
		{ "a\"b", "esc_total{v=\"a\\\"b\"} 1" },
		{ "back\\slash", "esc_total{v=\"back\\\\slash\"} 1" },
		{ "two\nlines", "esc_total{v=\"two\\nlines\"} 1" },
		{ "\\\"\n", "esc_total{v=\"\\\\\\\"\\n\"} 1" },
		{ "", "esc_total{v=\"\"} 1" },
		{ "ünï{}=,", "esc_total{v=\"ünï{}=,\"} 1" },
	};
	struct metrics *m = metrics_new();
	struct metric_family *f = metrics_counter_new(m, "esc_total", "Help with \\ and\nnewline.",
						      1, labels);
	char *text;

	(void)state;
	assert_non_null(f);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		metrics_inc(f, (const char *const[]){ cases[i].value }, 1);
	text = render(m);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_has_line(text, cases[i].want);
	assert_has_line(text, "# HELP esc_total Help with \\\\ and\\nnewline.");
	free(text);
	metrics_free(m);
}

static void test_gauge_set_and_add(void **state)
{
	struct metrics *m = metrics_new();
	struct metric_family *g = metrics_gauge_new(m, "in_flight", "In flight.", 0, NULL);
	struct metric_series *s = metrics_series(g, NULL);
	char *text;

	(void)state;
	metrics_set(s, 10);
	metrics_add(s, -3);
	assert_int_equal(metrics_value(s), 7);
	metrics_add(s, -9);
	text = render(m);
	assert_has_line(text, "# TYPE in_flight gauge");
	assert_has_line(text, "in_flight -2");
	free(text);
	metrics_free(m);
}

static void test_histogram_cumulative_buckets(void **state)
{
	static const char *const labels[] = { "route" };
	/* microseconds, printed as seconds */
	static const int64_t bounds[] = { 5000, 100000, 1000000, 2500000 };
	static const int64_t obs[] = { 1, 5000, 5001, 99999, 1000000, 3000000, 12345678 };
	struct metrics *m = metrics_new();
	struct metric_family *h = metrics_histogram_new(m, "dur_seconds", "Latency.", 1, labels,
							 bounds, 4, 1000000);
	char *text;
	int64_t sum = 0;

	(void)state;
	assert_non_null(h);
	for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++) {
		metrics_record(h, (const char *const[]){ "/x" }, obs[i]);
		sum += obs[i];
	}
	assert_int_equal(sum, 16455679);
	text = render(m);
	assert_has_line(text, "# TYPE dur_seconds histogram");
	assert_has_line(text, "dur_seconds_bucket{route=\"/x\",le=\"0.005\"} 2");
	assert_has_line(text, "dur_seconds_bucket{route=\"/x\",le=\"0.1\"} 4");
	assert_has_line(text, "dur_seconds_bucket{route=\"/x\",le=\"1\"} 5");
	assert_has_line(text, "dur_seconds_bucket{route=\"/x\",le=\"2.5\"} 5");
	assert_has_line(text, "dur_seconds_bucket{route=\"/x\",le=\"+Inf\"} 7");
	assert_has_line(text, "dur_seconds_sum{route=\"/x\"} 16.455679");
	assert_has_line(text, "dur_seconds_count{route=\"/x\"} 7");
	free(text);
	metrics_free(m);
}

static void test_histogram_without_labels(void **state)
{
	static const int64_t bounds[] = { 1, 10 };
	struct metrics *m = metrics_new();
	struct metric_family *h = metrics_histogram_new(m, "sizes", "Sizes.", 0, NULL, bounds, 2, 1);
	char *text;

	(void)state;
	metrics_record(h, NULL, 10);
	metrics_record(h, NULL, -4);
	text = render(m);
	assert_has_line(text, "sizes_bucket{le=\"1\"} 1");
	assert_has_line(text, "sizes_bucket{le=\"10\"} 2");
	assert_has_line(text, "sizes_bucket{le=\"+Inf\"} 2");
	assert_has_line(text, "sizes_sum 6");
	assert_has_line(text, "sizes_count 2");
	free(text);
	metrics_free(m);
}

struct bad_family_case {
	const char *name;
	size_t nlabels;
	const char *labels[2];
};

static void test_invalid_families_refused(void **state)
{
	static const struct bad_family_case cases[] = {
		{ "", 0, { NULL, NULL } },
		{ "9abc", 0, { NULL, NULL } },
		{ "a-b", 0, { NULL, NULL } },
		{ "has space", 0, { NULL, NULL } },
		{ "ok", 1, { "__reserved", NULL } },
		{ "ok", 1, { "a:b", NULL } },
		{ "ok", 2, { "x", "x" } },
		{ "dup_total", 0, { NULL, NULL } }, /* registered below first */
	};
	static const int64_t bounds_bad[] = { 5, 5 };
	static const int64_t bounds_ok[] = { 5 };
	struct metrics *m = metrics_new();

	(void)state;
	assert_non_null(metrics_counter_new(m, "dup_total", "x", 0, NULL));
	assert_non_null(metrics_gauge_new(m, "ns:ok_name", "x", 0, NULL));
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_null(metrics_counter_new(m, cases[i].name, "x", cases[i].nlabels,
						cases[i].labels));
	assert_null(metrics_histogram_new(m, "h1", "x", 0, NULL, bounds_bad, 2, 1));
	assert_null(metrics_histogram_new(m, "h2", "x", 0, NULL, bounds_ok, 1, 3));
	assert_null(metrics_histogram_new(m, "h3", "x", 1, (const char *const[]){ "le" },
					  bounds_ok, 1, 1));
	assert_null(metrics_counter_new(NULL, "x", "x", 0, NULL));
	/* NULL families and series are harmless */
	metrics_inc(NULL, NULL, 1);
	metrics_add(NULL, 1);
	metrics_observe(NULL, 1);
	assert_null(metrics_series(NULL, NULL));
	metrics_free(m);
	metrics_free(NULL);
}

static void test_series_limit_counts_overflow(void **state)
{
	static const char *const labels[] = { "id" };
	struct metrics *m = metrics_new();
	struct metric_family *f = metrics_counter_new(m, "many_total", "x", 1, labels);
	char id[32];
	char *text;

	(void)state;
	for (int i = 0; i < METRICS_MAX_SERIES + 10; i++) {
		(void)snprintf(id, sizeof id, "%d", i);
		metrics_inc(f, (const char *const[]){ id }, 1);
	}
	/* an existing series still works when the family is full */
	metrics_inc(f, (const char *const[]){ "0" }, 1);
	text = render(m);
	assert_has_line(text, "pytake_metrics_series_overflow_total 10");
	assert_has_line(text, "many_total{id=\"0\"} 2");
	assert_null(find_line(text, "many_total{id=\"2050\"} 1"));
	free(text);
	metrics_free(m);
}

struct collect_ctx {
	struct metric_family *g;
	int calls;
};

static void collect(struct metrics *m, void *ctx)
{
	struct collect_ctx *c = ctx;

	(void)m;
	c->calls++;
	metrics_put(c->g, NULL, 100 + c->calls);
}

static void test_collectors_run_at_render(void **state)
{
	struct metrics *m = metrics_new();
	struct collect_ctx c = { metrics_gauge_new(m, "rss_bytes", "RSS.", 0, NULL), 0 };
	char *text;

	(void)state;
	assert_int_equal(metrics_add_collector(m, collect, &c), 0);
	assert_int_equal(metrics_add_collector(m, NULL, &c), -1);
	text = render(m);
	assert_has_line(text, "rss_bytes 101");
	free(text);
	text = render(m);
	assert_has_line(text, "rss_bytes 102");
	assert_int_equal(c.calls, 2);
	free(text);
	metrics_free(m);
}

/* Every line is a comment (# HELP/# TYPE name ...) or `name{labels} value`
 * of a family that had a TYPE line before it. */
static void test_text_format_parses(void **state)
{
	static const char *const labels[] = { "a", "b" };
	static const int64_t bounds[] = { 1, 2, 3 };
	struct metrics *m = metrics_new();
	struct metric_family *c = metrics_counter_new(m, "c_total", "C.", 2, labels);
	struct metric_family *h = metrics_histogram_new(m, "h_seconds", "H.", 2, labels, bounds, 3, 1000);
	char *text, *save = NULL;
	char typed[16][64];
	int ntyped = 0, samples = 0;

	(void)state;
	metrics_inc(c, (const char *const[]){ "x\"y", "z\\" }, 4);
	metrics_record(h, (const char *const[]){ "p", "q" }, 2);
	text = render(m);
	assert_int_equal(text[strlen(text) - 1], '\n');
	for (char *line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		size_t n = strcspn(line, "{ ");
		bool known = false;

		if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_true(ntyped < 16);
			assert_int_equal(sscanf(line + 7, "%63s", typed[ntyped]), 1);
			ntyped++;
			continue;
		}
		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		assert_true(line[0] != '#');
		assert_true(n > 0 && n < sizeof name);
		memcpy(name, line, n);
		name[n] = '\0';
		for (int i = 0; i < ntyped; i++) {
			size_t tl = strlen(typed[i]);

			if (strncmp(name, typed[i], tl) == 0 &&
			    (name[tl] == '\0' || !strcmp(name + tl, "_bucket") ||
			     !strcmp(name + tl, "_sum") || !strcmp(name + tl, "_count")))
				known = true;
		}
		assert_true(known);
		/* value: after the last space, a number */
		{
			const char *v = strrchr(line, ' ');
			char *end = NULL;

			assert_non_null(v);
			(void)strtod(v + 1, &end);
			assert_true(end != v + 1 && *end == '\0');
		}
		samples++;
	}
	assert_int_equal(ntyped, 3); /* overflow counter, c_total, h_seconds */
	assert_int_equal(samples, 1 + 1 + 4 + 2);
	free(text);
	metrics_free(m);
}

struct hammer_ctx {
	struct metric_family *c, *h;
};

static void *hammer(void *arg)
{
	struct hammer_ctx *ctx = arg;
	static const char *const routes[] = { "/a", "/b", "/c", "/d" };

	for (int i = 0; i < 20000; i++) {
		const char *const v[] = { routes[i % 4] };

		metrics_inc(ctx->c, v, 1);
		metrics_record(ctx->h, v, i % 7);
	}
	return NULL;
}

static void test_concurrent_updates_are_exact(void **state)
{
	static const char *const labels[] = { "route" };
	static const int64_t bounds[] = { 3 };
	struct metrics *m = metrics_new();
	struct hammer_ctx ctx = {
		metrics_counter_new(m, "hits_total", "x", 1, labels),
		metrics_histogram_new(m, "lat", "x", 1, labels, bounds, 1, 1),
	};
	pthread_t th[8];
	char *text;

	(void)state;
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &ctx), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	text = render(m);
	assert_has_line(text, "hits_total{route=\"/a\"} 40000");
	assert_has_line(text, "hits_total{route=\"/d\"} 40000");
	assert_has_line(text, "lat_count{route=\"/b\"} 40000");
	free(text);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_without_labels),
		cmocka_unit_test(test_counter_labels_and_reuse),
		cmocka_unit_test(test_label_value_escaping),
		cmocka_unit_test(test_gauge_set_and_add),
		cmocka_unit_test(test_histogram_cumulative_buckets),
		cmocka_unit_test(test_histogram_without_labels),
		cmocka_unit_test(test_invalid_families_refused),
		cmocka_unit_test(test_series_limit_counts_overflow),
		cmocka_unit_test(test_collectors_run_at_render),
		cmocka_unit_test(test_text_format_parses),
		cmocka_unit_test(test_concurrent_updates_are_exact),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
