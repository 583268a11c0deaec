/* libFuzzer driver for core/json: untrusted request bodies.
 *
 * Feeds the bytes to json_parse_object and, when an object comes back,
 * exercises every getter and checker on a few fixed keys and on each key
 * actually present, then checks invariants:
 *   - a failed parse leaves a NUL-terminated, non-empty error message;
 *   - exactly one getter kind succeeds for a non-null present key;
 *   - json_dump_compact output parses back to an equal object.
 * Build (from the repo root):
 *   clang -std=c17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Isrc -include src/core/banned.h fuzz/fuzz_json.c src/core/json.c \
 *     -ljansson -o fuzz_json
 *   ./fuzz_json -max_total_time=60 fuzz/corpus/json */
#include <stdint.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fixed_keys[] = { "name", "a", "", "id", "components" };

static void exercise_key(const json_t *obj, const char *key)
{
	struct json_check chk = JSON_CHECK_INIT;
	const char *s = NULL;
	int64_t i = 0;
	bool b = false;
	json_t *o = NULL, *a = NULL;
	int ok = 0;
	enum json_get rs = json_get_str(obj, key, &s);

	ok += rs == JSON_GET_OK;
	ok += json_get_int(obj, key, &i) == JSON_GET_OK;
	ok += json_get_bool(obj, key, &b) == JSON_GET_OK;
	ok += json_get_obj(obj, key, &o) == JSON_GET_OK;
	ok += json_get_arr(obj, key, &a) == JSON_GET_OK;
	if (rs == JSON_GET_ABSENT || rs == JSON_GET_NULL) {
		if (ok != 0)
			__builtin_trap();
	} else if (ok > 1) {
		__builtin_trap();
	}
	if (s != NULL && json_utf8_len(s) > strlen(s))
		__builtin_trap();

	(void)json_check_str(&chk, obj, key, true, 1, 255, &s);
	(void)json_check_int(&chk, obj, key, false, -1000, 1000, &i);
	(void)json_check_bool(&chk, obj, key, true, &b);
	if (json_check_ok(&chk) && rs != JSON_GET_OK)
		__builtin_trap(); /* "required" string absent must be reported */
	json_check_release(&chk);
}

static void check_round_trip(const json_t *root)
{
	size_t len = 0;
	char *dump = json_dump_compact(root, &len);
	char err[160];
	json_t *back;

	if (dump == NULL)
		return; /* out of memory only */
	back = json_parse_object(dump, len, err, sizeof err);
	if (back == NULL || !json_equal(root, back))
		__builtin_trap();
	json_decref(back);
	free(dump);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[160];
	json_t *root;
	const char *key;
	json_t *value;

	err[0] = '\0';
	root = json_parse_object((const char *)data, size, err, sizeof err);
	if (root == NULL) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL)
			__builtin_trap();
		return 0;
	}
	for (size_t k = 0; k < sizeof fixed_keys / sizeof fixed_keys[0]; k++)
		exercise_key(root, fixed_keys[k]);
	json_object_foreach(root, key, value) {
		(void)value;
		exercise_key(root, key);
	}
	check_round_trip(root);
	json_decref(root);
	return 0;
}
