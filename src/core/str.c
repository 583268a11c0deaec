#include "core/str.h"

#include <errno.h>
#include <limits.h>
#include <strings.h>

bool str_copy(char *dst, size_t n, const char *src)
{
	if (n == 0)
		return false;
	if (!src)
		src = "";
	size_t len = strlen(src);
	bool fits = len < n;
	if (!fits)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return fits;
}

bool str_to_int64(const char *s, int64_t *out)
{
	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	errno = 0;
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || !end || *end != '\0')
		return false;
	*out = (int64_t)v;
	return true;
}

bool str_ieq(const char *a, const char *b)
{
	return a && b && strcasecmp(a, b) == 0;
}
