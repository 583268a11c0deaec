/* json: helpers on jansson for request bodies and answers.
 *
 * Request bodies are parsed strictly (JSON_REJECT_DUPLICATES, valid UTF-8,
 * no NUL in strings, nesting at most JSON_MAX_DEPTH). Getters tell apart a
 * field that is absent, null, or of the wrong JSON type, so handlers can
 * answer 400 (wrong type) and 422 (missing / out of range) as API.md says. */
#ifndef PYTAKE_JSON_H
#define PYTAKE_JSON_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

/* Parse a body that must be a JSON object. NULL on failure with a short
 * reason in err ("body is not valid JSON: ... at line 1 column 5",
 * "body must be a JSON object", "JSON nesting is deeper than 64"). */
json_t *json_parse_object(const char *body, size_t len, char *err, size_t errlen);

enum json_get {
	JSON_GET_OK = 0,
	JSON_GET_ABSENT,     /* key not present */
	JSON_GET_NULL,       /* present and null */
	JSON_GET_WRONG_TYPE, /* present, other type */
};
/* Typed getters; out untouched unless JSON_GET_OK. Integers must be JSON
 * integers (not reals) within int64. */
enum json_get json_get_str(const json_t *obj, const char *key, const char **out);
enum json_get json_get_int(const json_t *obj, const char *key, int64_t *out);
enum json_get json_get_bool(const json_t *obj, const char *key, bool *out);
enum json_get json_get_obj(const json_t *obj, const char *key, json_t **out);
enum json_get json_get_arr(const json_t *obj, const char *key, json_t **out);

/* Collects validation problems for one request. Two kinds:
 * type errors (-> 400 invalid_request) and rule errors (-> 422
 * validation_error); each entry is {"field": ..., "message": ...}. */
struct json_check {
	json_t *type_errors;   /* array, created on first use */
	json_t *rule_errors;   /* array, created on first use */
};
#define JSON_CHECK_INIT { NULL, NULL }
void json_check_type(struct json_check *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void json_check_rule(struct json_check *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool json_check_ok(const struct json_check *c);
void json_check_release(struct json_check *c);

/* Read a string field into *out following the rules above: wrong type ->
 * type error; absent/null and required -> "is required" rule error;
 * length outside [min_len, max_len] (UTF-8 code points) -> rule error.
 * Returns true when *out was set. */
bool json_check_str(struct json_check *c, const json_t *obj, const char *key,
		    bool required, size_t min_len, size_t max_len, const char **out);
bool json_check_int(struct json_check *c, const json_t *obj, const char *key,
		    bool required, int64_t min, int64_t max, int64_t *out);
bool json_check_bool(struct json_check *c, const json_t *obj, const char *key,
		     bool required, bool *out);

/* Number of UTF-8 code points in s (s is valid UTF-8, as jansson ensures). */
size_t json_utf8_len(const char *s);

/* Answer values, new references: the RFC 3339 UTC text of a time in
 * microseconds (time_format_rfc3339), or JSON null when us <= 0 (never
 * set); the JSON string s, or JSON null when s is NULL or "". */
json_t *json_time_or_null(int64_t us);
json_t *json_str_or_null(const char *s);

/* Serialize compactly; caller frees with free(). */
char *json_dump_compact(const json_t *v, size_t *len_out);

#endif
