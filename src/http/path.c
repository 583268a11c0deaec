/* path: strict decoding of the request path and of query arguments
 * (see server.c's design note "Paths"). Pure functions, split out of
 * server.c so that fuzz/fuzz_http_path.c drives the same code. */
#include "http/path.h"

#include <stdint.h>
#include <string.h>

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF are invalid). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool http_utf8_valid_no_ctl(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq_len(p + i, n - i);

		if (l == 0 || (l == 1 && (p[i] < 0x20 || p[i] == 0x7f)))
			return false;
		i += l;
	}
	return true;
}

enum http_path_check http_path_decode(struct arena *a, const char *raw, size_t len,
				      char **out, const char **why)
{
	char *dst;
	size_t n = 0;

	*out = NULL;
	if (len > HTTP_MAX_PATH_BYTES)
		return HTTP_PATH_TOO_LONG;
	if (len == 0 || raw[0] != '/') {
		*why = "the path must start with '/'";
		return HTTP_PATH_INVALID;
	}
	dst = arena_alloc(a, len + 1);
	if (dst == NULL) {
		*why = "out of memory";
		return HTTP_PATH_INVALID;
	}
	for (size_t i = 0; i < len; i++) {
		char c = raw[i];

		if (c == '%') {
			if (i + 2 >= len || !is_hex(raw[i + 1]) || !is_hex(raw[i + 2])) {
				*why = "the path has an invalid %-escape";
				return HTTP_PATH_INVALID;
			}
			c = (char)(hex_val(raw[i + 1]) * 16 + hex_val(raw[i + 2]));
			i += 2;
			if (c == '\0') {
				*why = "the path contains a NUL byte";
				return HTTP_PATH_INVALID;
			}
		}
		dst[n++] = c;
	}
	dst[n] = '\0';
	if (!http_utf8_valid_no_ctl(dst, n)) {
		*why = "the path has control characters or is not UTF-8";
		return HTTP_PATH_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		size_t seg_len;

		if (dst[i] != '/')
			continue;
		seg_len = strcspn(dst + i + 1, "/");
		if (seg_len == 0 && dst[i + 1] == '/') {
			*why = "the path has an empty segment";
			return HTTP_PATH_INVALID;
		}
		if ((seg_len == 1 && dst[i + 1] == '.') ||
		    (seg_len == 2 && dst[i + 1] == '.' && dst[i + 2] == '.')) {
			*why = "the path has a '.' or '..' segment";
			return HTTP_PATH_INVALID;
		}
	}
	*out = dst;
	return HTTP_PATH_OK;
}


size_t http_query_unescape(char *s)
{
	char *r = s, *w = s;

	while (*r != '\0') {
		if (r[0] == '%' && is_hex(r[1]) && is_hex(r[2]) &&
		    !(r[1] == '0' && r[2] == '0')) {
			*w++ = (char)(hex_val(r[1]) * 16 + hex_val(r[2]));
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}
