/* str: small bounded string helpers. */
#ifndef PYTAKE_STR_H
#define PYTAKE_STR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy src (NULL = "") into dst[n] always NUL-terminated; false when it
 * had to truncate. */
bool str_copy(char *dst, size_t n, const char *src);
/* Strict decimal int64: the whole string, optional leading '-', no spaces. */
bool str_to_int64(const char *s, int64_t *out);
/* ASCII case-insensitive equality. */
bool str_ieq(const char *a, const char *b);

#endif
