/* libFuzzer driver for meta/graph's response parsers: everything Meta (or
 * whatever answers at GRAPH_API_BASE_URL) sends back is untrusted.
 *
 * The first input byte picks an HTTP status; the rest is the body, fed to
 * every parser (error object, send, template create, list page, delete),
 * and any paging.next found goes through the same-origin check. Invariants:
 *   - every graph_error string field is NUL-terminated inside its array;
 *   - a failure is either Meta's error (GRAPH_ERR_META) or a named
 *     transport kind, never GRAPH_OK with an error set;
 *   - a parsed wamid / template id is non-empty and fits its buffer;
 *   - a list page only ever appends objects, and next is non-empty and
 *     shorter than GRAPH_URL_MAX.
 * Build: make fuzz (fuzz/meson.build), or by hand from the repo root:
 *   clang -std=c17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Isrc -include src/core/banned.h fuzz/fuzz_graph_error.c \
 *     src/meta/graph.c src/core/json.c src/core/str.c src/core/crypto.c \
 *     -ljansson -lcurl -lcrypto -o fuzz_graph_error
 *   ./fuzz_graph_error -max_total_time=60 fuzz/corpus/graph_error */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meta/graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = { 200, 201, 400, 401, 403, 404, 429, 500, 502, 503 };

static struct graph_client *client(void)
{
	static struct graph_client *c;

	if (c == NULL)
		c = graph_client_new("https://graph.facebook.com/v24.0", 1000);
	return c;
}

static void check_terminated(const char *s, size_t n)
{
	if (memchr(s, '\0', n) == NULL)
		__builtin_trap();
}

static void check_error(const struct graph_error *e, enum graph_rc rc)
{
	check_terminated(e->type, sizeof(e->type));
	check_terminated(e->message, sizeof(e->message));
	check_terminated(e->details, sizeof(e->details));
	check_terminated(e->fbtrace_id, sizeof(e->fbtrace_id));
	if (rc == GRAPH_ERR_TRANSPORT && e->transport == GRAPH_TRANSPORT_NONE)
		__builtin_trap();
	if (rc == GRAPH_ERR_META && e->transport != GRAPH_TRANSPORT_NONE)
		__builtin_trap();
	(void)graph_error_transient(e);
}

static void fuzz_list(const char *body, size_t len)
{
	struct graph_error err;
	json_t *arr = json_array();
	char *next = NULL;
	enum graph_rc rc;
	size_t i;
	json_t *item;

	if (arr == NULL)
		return;
	rc = graph_parse_list_page(body, len, arr, &next, &err);
	if (rc == GRAPH_OK) {
		json_array_foreach(arr, i, item)
			if (!json_is_object(item))
				__builtin_trap();
		if (next != NULL && (next[0] == '\0' || strlen(next) >= GRAPH_URL_MAX))
			__builtin_trap();
		if (next != NULL)
			(void)graph_same_origin(client(), next);
	} else {
		if (next != NULL || json_array_size(arr) != 0)
			__builtin_trap();
		check_error(&err, rc);
	}
	free(next);
	json_decref(arr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct graph_error err;
	struct graph_template_created t;
	char wamid[GRAPH_WAMID_MAX];
	const char *body;
	size_t len;
	long status;
	enum graph_rc rc;

	if (size < 1)
		return 0;
	status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	body = (const char *)data + 1;
	len = size - 1;

	rc = graph_parse_error(status, body, len, &err);
	if (rc != GRAPH_ERR_META && rc != GRAPH_ERR_TRANSPORT)
		__builtin_trap();
	if (err.http_status != status)
		__builtin_trap();
	check_error(&err, rc);

	rc = graph_parse_send(body, len, wamid, sizeof(wamid), &err);
	if (rc == GRAPH_OK && (wamid[0] == '\0' || strlen(wamid) >= sizeof(wamid)))
		__builtin_trap();
	if (rc != GRAPH_OK)
		check_error(&err, rc);

	rc = graph_parse_template_created(body, len, &t, &err);
	if (rc == GRAPH_OK) {
		if (t.id[0] == '\0')
			__builtin_trap();
		check_terminated(t.category, sizeof(t.category));
	} else {
		check_error(&err, rc);
	}

	rc = graph_parse_success(body, len, &err);
	if (rc != GRAPH_OK)
		check_error(&err, rc);

	fuzz_list(body, len);
	if (len < GRAPH_URL_MAX) {
		char url[GRAPH_URL_MAX];

		memcpy(url, body, len);
		url[len] = '\0';
		(void)graph_same_origin(client(), url);
	}
	return 0;
}
