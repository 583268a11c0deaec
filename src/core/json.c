/* json: strict request-body parsing, typed getters and the validation
 * collector on top of jansson.
 *
 * Depth: jansson's own nesting limit is 2048, far above ours, so bodies are
 * pre-scanned byte by byte (skipping string contents, honouring escapes)
 * and refused before jansson sees them when '[' / '{' nest deeper than
 * JSON_MAX_DEPTH. The scan is linear and allocation-free. */
#include "core/json.h"

#include <stdarg.h>

#include "core/timeutil.h"

#define JSON_MSG_MAX 256

/* Deepest '['/'{' nesting in body, outside strings; stops counting once
 * the limit is passed. */
static int max_nesting(const char *body, size_t len)
{
	int depth = 0, deepest = 0;
	bool in_string = false, escaped = false;

	for (size_t i = 0; i < len && deepest <= JSON_MAX_DEPTH; i++) {
		char c = body[i];

		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			depth++;
			if (depth > deepest)
				deepest = depth;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return deepest;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(err, errlen, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
}

json_t *json_parse_object(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = NULL;

	if (body == NULL) {
		set_err(err, errlen, "body is empty");
		goto out;
	}
	if (max_nesting(body, len) > JSON_MAX_DEPTH) {
		set_err(err, errlen, "JSON nesting is deeper than %d", JSON_MAX_DEPTH);
		goto out;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (root == NULL) {
		set_err(err, errlen, "body is not valid JSON: %s at line %d column %d",
			jerr.text, jerr.line, jerr.column);
		goto out;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		root = NULL;
		set_err(err, errlen, "body must be a JSON object");
	}
out:
	return root;
}

/* The value under key, classified; *v is set only for JSON_GET_OK-able. */
static enum json_get lookup(const json_t *obj, const char *key, json_t **v)
{
	json_t *x;

	if (obj == NULL || key == NULL || !json_is_object(obj))
		return JSON_GET_ABSENT;
	x = json_object_get(obj, key);
	if (x == NULL)
		return JSON_GET_ABSENT;
	if (json_is_null(x))
		return JSON_GET_NULL;
	*v = x;
	return JSON_GET_OK;
}

enum json_get json_get_str(const json_t *obj, const char *key, const char **out)
{
	json_t *v = NULL;
	enum json_get r = lookup(obj, key, &v);

	if (r != JSON_GET_OK)
		return r;
	if (!json_is_string(v))
		return JSON_GET_WRONG_TYPE;
	*out = json_string_value(v);
	return JSON_GET_OK;
}

enum json_get json_get_int(const json_t *obj, const char *key, int64_t *out)
{
	json_t *v = NULL;
	enum json_get r = lookup(obj, key, &v);

	if (r != JSON_GET_OK)
		return r;
	if (!json_is_integer(v))
		return JSON_GET_WRONG_TYPE;
	*out = (int64_t)json_integer_value(v);
	return JSON_GET_OK;
}

enum json_get json_get_bool(const json_t *obj, const char *key, bool *out)
{
	json_t *v = NULL;
	enum json_get r = lookup(obj, key, &v);

	if (r != JSON_GET_OK)
		return r;
	if (!json_is_boolean(v))
		return JSON_GET_WRONG_TYPE;
	*out = json_is_true(v);
	return JSON_GET_OK;
}

enum json_get json_get_obj(const json_t *obj, const char *key, json_t **out)
{
	json_t *v = NULL;
	enum json_get r = lookup(obj, key, &v);

	if (r != JSON_GET_OK)
		return r;
	if (!json_is_object(v))
		return JSON_GET_WRONG_TYPE;
	*out = v;
	return JSON_GET_OK;
}

enum json_get json_get_arr(const json_t *obj, const char *key, json_t **out)
{
	json_t *v = NULL;
	enum json_get r = lookup(obj, key, &v);

	if (r != JSON_GET_OK)
		return r;
	if (!json_is_array(v))
		return JSON_GET_WRONG_TYPE;
	*out = v;
	return JSON_GET_OK;
}

/* ---- validation collector ---- */

/* Append {"field","message"} to *list, creating it on first use. */
static void check_add(json_t **list, const char *field, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void check_add(json_t **list, const char *field, const char *fmt, va_list ap)
{
	char msg[JSON_MSG_MAX];
	json_t *entry;

	if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
		msg[0] = '\0';
	if (*list == NULL) {
		*list = json_array();
		if (*list == NULL)
			return;
	}
	entry = json_pack("{s:s, s:s}", "field", field != NULL ? field : "",
			  "message", msg);
	if (entry == NULL)
		return;
	if (json_array_append_new(*list, entry) != 0)
		return;
}

void json_check_type(struct json_check *c, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	check_add(&c->type_errors, field, fmt, ap);
	va_end(ap);
}

void json_check_rule(struct json_check *c, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	check_add(&c->rule_errors, field, fmt, ap);
	va_end(ap);
}

bool json_check_ok(const struct json_check *c)
{
	return json_array_size(c->type_errors) == 0 &&
	       json_array_size(c->rule_errors) == 0;
}

void json_check_release(struct json_check *c)
{
	if (c == NULL)
		return;
	json_decref(c->type_errors);
	json_decref(c->rule_errors);
	c->type_errors = NULL;
	c->rule_errors = NULL;
}

/* Common handling of a getter result; true when the value is present and of
 * the right type (the caller then checks its range). */
static bool check_present(struct json_check *c, const char *key, enum json_get r,
			  bool required, const char *type_msg)
{
	switch (r) {
	case JSON_GET_OK:
		return true;
	case JSON_GET_WRONG_TYPE:
		json_check_type(c, key, "%s", type_msg);
		return false;
	case JSON_GET_ABSENT:
	case JSON_GET_NULL:
		if (required)
			json_check_rule(c, key, "is required");
		return false;
	}
	return false;
}

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

bool json_check_str(struct json_check *c, const json_t *obj, const char *key,
		    bool required, size_t min_len, size_t max_len, const char **out)
{
	const char *s = NULL;
	size_t n;

	if (!check_present(c, key, json_get_str(obj, key, &s), required,
			   "must be a string"))
		return false;
	n = json_utf8_len(s);
	if (n < min_len) {
		if (min_len == 1)
			json_check_rule(c, key, "must not be empty");
		else
			json_check_rule(c, key, "must be at least %zu characters", min_len);
		return false;
	}
	if (n > max_len) {
		json_check_rule(c, key, "must be at most %zu character%s", max_len,
				plural(max_len));
		return false;
	}
	*out = s;
	return true;
}

bool json_check_int(struct json_check *c, const json_t *obj, const char *key,
		    bool required, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (!check_present(c, key, json_get_int(obj, key, &v), required,
			   "must be an integer"))
		return false;
	if (v < min || v > max) {
		json_check_rule(c, key, "must be between %lld and %lld",
				(long long)min, (long long)max);
		return false;
	}
	*out = v;
	return true;
}

bool json_check_bool(struct json_check *c, const json_t *obj, const char *key,
		     bool required, bool *out)
{
	bool v = false;

	if (!check_present(c, key, json_get_bool(obj, key, &v), required,
			   "must be a boolean"))
		return false;
	*out = v;
	return true;
}

size_t json_utf8_len(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xC0) != 0x80)
			n++;
	return n;
}

char *json_dump_compact(const json_t *v, size_t *len_out)
{
	char *s;

	if (v == NULL)
		return NULL;
	s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	if (s != NULL && len_out != NULL)
		*len_out = strlen(s);
	return s;
}

json_t *json_time_or_null(int64_t us)
{
	char buf[TIME_RFC3339_LEN];
	if (us <= 0)
		return json_null();
	return json_string(time_format_rfc3339(us, buf, sizeof buf));
}

json_t *json_str_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}
