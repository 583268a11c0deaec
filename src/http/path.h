/* path: the untrusted text of a request target, decoded strictly.
 *
 * - http_path_decode: the raw path (no query string) is %-decoded; an
 *   invalid %-escape, %00, control bytes, invalid UTF-8 (overlong forms,
 *   surrogates, past U+10FFFF), "//" (an empty segment), "." or ".."
 *   segments make it invalid; a raw path over HTTP_MAX_PATH_BYTES is too
 *   long (414). %2F decodes to '/' and then acts as a separator.
 * - http_query_unescape: query keys and values (MHD's unescape callback):
 *   valid %XX escapes decoded in place, anything else (bad escapes, %00)
 *   left as it was, so a value never gains a NUL.
 * Used by server.c; fuzzed by fuzz/fuzz_http_path.c. */
#ifndef PYTAKE_HTTP_PATH_H
#define PYTAKE_HTTP_PATH_H
#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"

#define HTTP_MAX_PATH_BYTES 2048

enum http_path_check { HTTP_PATH_OK, HTTP_PATH_INVALID, HTTP_PATH_TOO_LONG };

/* Decode raw[0..len) into an arena string *out (NUL-terminated, starts
 * with '/'). On HTTP_PATH_INVALID *why says what is wrong (static text);
 * *out is NULL unless HTTP_PATH_OK. */
enum http_path_check http_path_decode(struct arena *a, const char *raw, size_t len,
				      char **out, const char **why);
/* Decode s (NUL-terminated) in place as described above; the new length. */
size_t http_query_unescape(char *s);
/* s[0..n) is valid UTF-8 without C0 controls or DEL. */
bool http_utf8_valid_no_ctl(const char *s, size_t n);

#endif
