/* Unit tests for core/json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/json.h"

struct parse_case {
	const char *body;
	const char *err_prefix; /* NULL: must parse */
};

static void test_parse(void **state)
{
	static const struct parse_case cases[] = {
		{ "{}", NULL },
		{ " {\"a\":1} \n", NULL },
		{ "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\"}", NULL },
		{ "{\"a\":{\"a\":1}}", NULL },               /* same key, other level */
		{ "", "body is not valid JSON: " },
		{ "{", "body is not valid JSON: " },
		{ "{\"a\":1,}", "body is not valid JSON: " },
		{ "{\"a\":1} x", "body is not valid JSON: " },  /* trailing garbage */
		{ "{'a':1}", "body is not valid JSON: " },
		{ "{\"a\":1,\"a\":2}", "body is not valid JSON: " },
		{ "{\"a\":\"\\u0000\"}", "body is not valid JSON: " }, /* NUL in string */
		{ "{\"a\":\"\xff\"}", "body is not valid JSON: " },    /* bad UTF-8 */
		{ "{\"a\":99999999999999999999}", "body is not valid JSON: " },
		{ "{\"a\":NaN}", "body is not valid JSON: " },
		{ "[]", "body must be a JSON object" },
		{ "[{}]", "body must be a JSON object" },
		{ "\"str\"", "body must be a JSON object" },
		{ "42", "body must be a JSON object" },
		{ "null", "body must be a JSON object" },
		{ "true", "body must be a JSON object" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256] = "unset";
		json_t *j = json_parse_object(cases[i].body, strlen(cases[i].body),
					      err, sizeof err);

		if (cases[i].err_prefix == NULL) {
			if (j == NULL)
				fail_msg("case %zu rejected: %s", i, err);
			assert_true(json_is_object(j));
		} else {
			if (j != NULL)
				fail_msg("case %zu accepted: %s", i, cases[i].body);
			if (strncmp(err, cases[i].err_prefix, strlen(cases[i].err_prefix)) != 0)
				fail_msg("case %zu: error '%s'", i, err);
		}
		json_decref(j);
	}
}

static void test_parse_error_position(void **state)
{
	char err[256];
	const char *body = "{\n  \"a\": tru }";

	(void)state;
	assert_null(json_parse_object(body, strlen(body), err, sizeof err));
	assert_non_null(strstr(err, "at line 2 column"));
	/* a small buffer is truncated, NUL-terminated */
	assert_null(json_parse_object(body, strlen(body), err, 10));
	assert_int_equal(strlen(err), 9);
	/* NULL err is allowed */
	assert_null(json_parse_object(body, strlen(body), NULL, 0));
	assert_null(json_parse_object(NULL, 0, err, sizeof err));
}

/* Only len bytes are read; the body need not be NUL-terminated. */
static void test_parse_uses_len(void **state)
{
	const char body[] = "{\"a\":1}GARBAGE";
	char err[128];
	json_t *j;

	(void)state;
	j = json_parse_object(body, 7, err, sizeof err);
	assert_non_null(j);
	json_decref(j);
}

/* {"a": + open x (depth-1) + 1 + close x (depth-1) + }: depth levels. */
static char *nested(int depth, const char *open, const char *close)
{
	size_t lo = strlen(open), lc = strlen(close);
	char *s = malloc((size_t)depth * (lo + lc) + 16);
	size_t p = 0;

	assert_non_null(s);
	memcpy(s, "{\"a\":", 5);
	p = 5;
	for (int i = 1; i < depth; i++) {
		memcpy(s + p, open, lo);
		p += lo;
	}
	s[p++] = '1';
	for (int i = 1; i < depth; i++) {
		memcpy(s + p, close, lc);
		p += lc;
	}
	s[p++] = '}';
	s[p] = '\0';
	return s;
}

struct depth_case {
	int depth;
	const char *open, *close;
	bool ok;
};

static void test_depth_limit(void **state)
{
	static const struct depth_case cases[] = {
		{ 64, "[", "]", true },
		{ 65, "[", "]", false },
		{ 64, "{\"b\":", "}", true },
		{ 65, "{\"b\":", "}", false },
		{ 1000, "[", "]", false },
		{ 5000, "[", "]", false },  /* beyond jansson's own 2048 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[128] = "";
		char *body = nested(cases[i].depth, cases[i].open, cases[i].close);
		json_t *j = json_parse_object(body, strlen(body), err, sizeof err);

		if (cases[i].ok) {
			if (j == NULL)
				fail_msg("depth %d rejected: %s", cases[i].depth, err);
		} else {
			assert_null(j);
			assert_string_equal(err, "JSON nesting is deeper than 64");
		}
		json_decref(j);
		free(body);
	}
}

/* Brackets inside strings, and escaped quotes, do not count as nesting. */
static void test_depth_ignores_strings(void **state)
{
	char body[1024];
	size_t p = 0;
	json_t *j;
	char err[128];

	(void)state;
	p += (size_t)snprintf(body, sizeof body, "{\"s\":\"\\\"");
	for (int i = 0; i < 200; i++)
		body[p++] = '[';
	p += (size_t)snprintf(body + p, sizeof body - p, "\\\\\",\"t\":\"{{{{\"}");
	j = json_parse_object(body, p, err, sizeof err);
	if (j == NULL)
		fail_msg("rejected: %s", err);
	json_decref(j);
}

static json_t *fixture(void)
{
	static const char body[] =
		"{\"s\":\"text\",\"i\":42,\"neg\":-9223372036854775808,\"r\":1.5,"
		"\"t\":true,\"f\":false,\"n\":null,\"o\":{\"k\":1},\"a\":[1],"
		"\"big\":9223372036854775807,\"zero\":0,\"istr\":\"42\"}";
	char err[128];
	json_t *j = json_parse_object(body, sizeof body - 1, err, sizeof err);

	assert_non_null(j);
	return j;
}

struct get_case {
	const char *key;
	enum json_get str, i, b, o, a;
};

static void test_getters(void **state)
{
#define OK JSON_GET_OK
#define AB JSON_GET_ABSENT
#define NU JSON_GET_NULL
#define WT JSON_GET_WRONG_TYPE
	static const struct get_case cases[] = {
		/* key     str  int  bool obj  arr */
		{ "s",     OK,  WT,  WT,  WT,  WT },
		{ "i",     WT,  OK,  WT,  WT,  WT },
		{ "r",     WT,  WT,  WT,  WT,  WT }, /* real is not an integer */
		{ "t",     WT,  WT,  OK,  WT,  WT },
		{ "f",     WT,  WT,  OK,  WT,  WT },
		{ "n",     NU,  NU,  NU,  NU,  NU },
		{ "o",     WT,  WT,  WT,  OK,  WT },
		{ "a",     WT,  WT,  WT,  WT,  OK },
		{ "istr",  OK,  WT,  WT,  WT,  WT },
		{ "nope",  AB,  AB,  AB,  AB,  AB },
		{ "",      AB,  AB,  AB,  AB,  AB },
	};
	json_t *j = fixture();

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct get_case *c = &cases[i];
		const char *s = "untouched";
		int64_t n = 7;
		bool b = true;
		json_t *o = NULL, *a = NULL;

		assert_int_equal(json_get_str(j, c->key, &s), c->str);
		assert_int_equal(json_get_int(j, c->key, &n), c->i);
		assert_int_equal(json_get_bool(j, c->key, &b), c->b);
		assert_int_equal(json_get_obj(j, c->key, &o), c->o);
		assert_int_equal(json_get_arr(j, c->key, &a), c->a);
		if (c->str != OK)
			assert_string_equal(s, "untouched");
		if (c->i != OK)
			assert_true(n == 7);
		if (c->b != OK)
			assert_true(b);
		if (c->o != OK)
			assert_null(o);
		if (c->a != OK)
			assert_null(a);
	}
	json_decref(j);
#undef OK
#undef AB
#undef NU
#undef WT
}

static void test_getter_values(void **state)
{
	json_t *j = fixture(), *o = NULL, *a = NULL;
	const char *s = NULL;
	int64_t n = 0;
	bool b = true;

	(void)state;
	assert_int_equal(json_get_str(j, "s", &s), JSON_GET_OK);
	assert_string_equal(s, "text");
	assert_int_equal(json_get_int(j, "i", &n), JSON_GET_OK);
	assert_true(n == 42);
	assert_int_equal(json_get_int(j, "neg", &n), JSON_GET_OK);
	assert_true(n == INT64_MIN);
	assert_int_equal(json_get_int(j, "big", &n), JSON_GET_OK);
	assert_true(n == INT64_MAX);
	assert_int_equal(json_get_bool(j, "f", &b), JSON_GET_OK);
	assert_false(b);
	assert_int_equal(json_get_obj(j, "o", &o), JSON_GET_OK);
	assert_true(json_is_object(o));
	assert_int_equal(json_get_arr(j, "a", &a), JSON_GET_OK);
	assert_int_equal(json_array_size(a), 1);
	/* not an object / NULL object: absent */
	assert_int_equal(json_get_int(a, "x", &n), JSON_GET_ABSENT);
	assert_int_equal(json_get_int(NULL, "x", &n), JSON_GET_ABSENT);
	json_decref(j);
}

static const char *entry_field(const json_t *list, size_t i)
{
	return json_string_value(json_object_get(json_array_get(list, i), "field"));
}

static const char *entry_msg(const json_t *list, size_t i)
{
	return json_string_value(json_object_get(json_array_get(list, i), "message"));
}

struct str_case {
	const char *body;
	bool required;
	size_t min, max;
	bool ok;
	const char *type_msg; /* expected type error, or NULL */
	const char *rule_msg; /* expected rule error, or NULL */
};

static void test_check_str(void **state)
{
	static const struct str_case cases[] = {
		{ "{\"name\":\"Ana\"}", true, 1, 255, true, NULL, NULL },
		{ "{}", true, 1, 255, false, NULL, "is required" },
		{ "{\"name\":null}", true, 1, 255, false, NULL, "is required" },
		{ "{}", false, 1, 255, false, NULL, NULL },
		{ "{\"name\":null}", false, 1, 255, false, NULL, NULL },
		{ "{\"name\":5}", true, 1, 255, false, "must be a string", NULL },
		{ "{\"name\":[\"x\"]}", false, 1, 255, false, "must be a string", NULL },
		{ "{\"name\":\"\"}", true, 1, 255, false, NULL, "must not be empty" },
		{ "{\"name\":\"\"}", true, 0, 255, true, NULL, NULL },
		{ "{\"name\":\"abc\"}", true, 8, 72, false, NULL, "must be at least 8 characters" },
		{ "{\"name\":\"abcdef\"}", true, 1, 5, false, NULL, "must be at most 5 characters" },
		{ "{\"name\":\"ab\"}", true, 0, 1, false, NULL, "must be at most 1 character" },
		/* 5 code points in 10 bytes: length counts characters */
		{ "{\"name\":\"\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" "a\"}", true, 1, 5, true, NULL, NULL },
		{ "{\"name\":\"\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" "ab\"}", true, 1, 5, false, NULL,
		  "must be at most 5 characters" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct str_case *c = &cases[i];
		struct json_check chk = JSON_CHECK_INIT;
		json_t *j = json_parse_object(c->body, strlen(c->body), NULL, 0);
		const char *out = "untouched";
		bool got;

		assert_non_null(j);
		got = json_check_str(&chk, j, "name", c->required, c->min, c->max, &out);
		if (got != c->ok)
			fail_msg("case %zu: returned %d", i, got);
		assert_int_equal(json_check_ok(&chk), c->type_msg == NULL && c->rule_msg == NULL);
		if (c->ok)
			assert_ptr_equal(out, json_string_value(json_object_get(j, "name")));
		else
			assert_string_equal(out, "untouched");
		assert_int_equal(json_array_size(chk.type_errors), c->type_msg ? 1 : 0);
		assert_int_equal(json_array_size(chk.rule_errors), c->rule_msg ? 1 : 0);
		if (c->type_msg) {
			assert_string_equal(entry_field(chk.type_errors, 0), "name");
			assert_string_equal(entry_msg(chk.type_errors, 0), c->type_msg);
		}
		if (c->rule_msg) {
			assert_string_equal(entry_field(chk.rule_errors, 0), "name");
			assert_string_equal(entry_msg(chk.rule_errors, 0), c->rule_msg);
		}
		json_check_release(&chk);
		assert_null(chk.type_errors);
		assert_null(chk.rule_errors);
		json_decref(j);
	}
}

struct int_case {
	const char *body;
	bool required;
	int64_t min, max;
	bool ok;
	int64_t want;
	const char *type_msg, *rule_msg;
};

static void test_check_int(void **state)
{
	static const struct int_case cases[] = {
		{ "{\"n\":80}", true, 1, 1000, true, 80, NULL, NULL },
		{ "{\"n\":1}", true, 1, 1000, true, 1, NULL, NULL },
		{ "{\"n\":1000}", true, 1, 1000, true, 1000, NULL, NULL },
		{ "{\"n\":0}", true, 1, 1000, false, 0, NULL, "must be between 1 and 1000" },
		{ "{\"n\":1001}", true, 1, 1000, false, 0, NULL, "must be between 1 and 1000" },
		{ "{\"n\":-5}", true, -10, -1, true, -5, NULL, NULL },
		{ "{\"n\":1.0}", true, 1, 1000, false, 0, "must be an integer", NULL },
		{ "{\"n\":\"80\"}", true, 1, 1000, false, 0, "must be an integer", NULL },
		{ "{\"n\":true}", false, 1, 1000, false, 0, "must be an integer", NULL },
		{ "{}", true, 1, 1000, false, 0, NULL, "is required" },
		{ "{\"n\":null}", false, 1, 1000, false, 0, NULL, NULL },
		{ "{\"n\":-9223372036854775808}", true, INT64_MIN, INT64_MAX, true, INT64_MIN, NULL, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct int_case *c = &cases[i];
		struct json_check chk = JSON_CHECK_INIT;
		json_t *j = json_parse_object(c->body, strlen(c->body), NULL, 0);
		int64_t out = 12345;

		assert_non_null(j);
		if (json_check_int(&chk, j, "n", c->required, c->min, c->max, &out) != c->ok)
			fail_msg("case %zu", i);
		assert_true(out == (c->ok ? c->want : 12345));
		assert_int_equal(json_array_size(chk.type_errors), c->type_msg ? 1 : 0);
		assert_int_equal(json_array_size(chk.rule_errors), c->rule_msg ? 1 : 0);
		if (c->type_msg)
			assert_string_equal(entry_msg(chk.type_errors, 0), c->type_msg);
		if (c->rule_msg)
			assert_string_equal(entry_msg(chk.rule_errors, 0), c->rule_msg);
		json_check_release(&chk);
		json_decref(j);
	}
}

static void test_check_bool_and_collect(void **state)
{
	const char *body = "{\"a\":true,\"b\":\"yes\",\"c\":null,\"name\":7}";
	struct json_check chk = JSON_CHECK_INIT;
	json_t *j = json_parse_object(body, strlen(body), NULL, 0);
	bool v = false;
	const char *s;
	char *dump;

	(void)state;
	assert_non_null(j);
	assert_true(json_check_ok(&chk)); /* nothing yet, no arrays made */
	assert_null(chk.type_errors);
	assert_true(json_check_bool(&chk, j, "a", true, &v));
	assert_true(v);
	assert_false(json_check_bool(&chk, j, "b", true, &v));
	assert_false(json_check_bool(&chk, j, "c", true, &v));
	assert_false(json_check_bool(&chk, j, "d", false, &v));
	assert_false(json_check_str(&chk, j, "name", true, 1, 10, &s));
	json_check_rule(&chk, "components[1].text", "has %d parameters, expected %d", 3, 2);
	assert_false(json_check_ok(&chk));

	dump = json_dump_compact(chk.type_errors, NULL);
	assert_string_equal(dump, "[{\"field\":\"b\",\"message\":\"must be a boolean\"},"
				  "{\"field\":\"name\",\"message\":\"must be a string\"}]");
	free(dump);
	dump = json_dump_compact(chk.rule_errors, NULL);
	assert_string_equal(dump, "[{\"field\":\"c\",\"message\":\"is required\"},"
				  "{\"field\":\"components[1].text\","
				  "\"message\":\"has 3 parameters, expected 2\"}]");
	free(dump);
	json_check_release(&chk);
	json_check_release(&chk); /* twice is fine */
	json_decref(j);
}

static void test_utf8_len(void **state)
{
	static const struct {
		const char *s;
		size_t n;
	} cases[] = {
		{ "", 0 },
		{ "abc", 3 },
		{ "\xc3\xa9", 1 },                      /* é */
		{ "caf\xc3\xa9", 4 },
		{ "\xe2\x82\xac" "100", 4 },            /* €100 */
		{ "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 2 }, /* two emoji */
		{ "\xe4\xbd\xa0\xe5\xa5\xbd", 2 },      /* 你好 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		assert_int_equal(json_utf8_len(cases[i].s), cases[i].n);
	assert_int_equal(json_utf8_len(NULL), 0);
}

static void test_dump_compact(void **state)
{
	json_t *o = json_object();
	char *s;
	size_t len = 0;

	(void)state;
	assert_non_null(o);
	/* insertion order kept, no spaces */
	assert_int_equal(json_object_set_new(o, "zeta", json_integer(1)), 0);
	assert_int_equal(json_object_set_new(o, "alpha", json_string("caf\xc3\xa9")), 0);
	assert_int_equal(json_object_set_new(o, "mid", json_pack("[i,b,n]", 2, 1)), 0);
	s = json_dump_compact(o, &len);
	assert_string_equal(s, "{\"zeta\":1,\"alpha\":\"caf\xc3\xa9\",\"mid\":[2,true,null]}");
	assert_int_equal(len, strlen(s));
	free(s);
	s = json_dump_compact(json_array_get(json_object_get(o, "mid"), 0), NULL);
	assert_string_equal(s, "2");
	free(s);
	assert_null(json_dump_compact(NULL, &len));
	json_decref(o);
}

/* The answer helpers domain and api modules share: never-set times
 * (<= 0) and empty strings are JSON null. */
static void test_or_null(void **state)
{
	static const struct {
		int64_t us;
		const char *want; /* NULL: JSON null */
	} times[] = {
		{ 0, NULL },
		{ -1, NULL },
		{ INT64_MIN, NULL },
		{ 1, "1970-01-01T00:00:00.000001Z" },
		{ INT64_C(1795950000000000), "2026-11-29T11:00:00Z" },
	};
	static const struct {
		const char *s, *want;
	} strs[] = { { NULL, NULL }, { "", NULL }, { "a", "a" }, { " ", " " } };
	(void)state;
	for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
		json_t *v = json_time_or_null(times[i].us);
		if (times[i].want == NULL)
			assert_true(json_is_null(v));
		else
			assert_string_equal(json_string_value(v), times[i].want);
		json_decref(v);
	}
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		json_t *v = json_str_or_null(strs[i].s);
		if (strs[i].want == NULL)
			assert_true(json_is_null(v));
		else
			assert_string_equal(json_string_value(v), strs[i].want);
		json_decref(v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_error_position),
		cmocka_unit_test(test_parse_uses_len),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_depth_ignores_strings),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_getter_values),
		cmocka_unit_test(test_check_str),
		cmocka_unit_test(test_check_int),
		cmocka_unit_test(test_check_bool_and_collect),
		cmocka_unit_test(test_utf8_len),
		cmocka_unit_test(test_dump_compact),
		cmocka_unit_test(test_or_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
