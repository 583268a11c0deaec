/* arena: a bump allocator for memory that lives exactly as long as one unit
 * of work (an HTTP request, a job batch). Everything allocated from it is
 * freed at once by arena_release(); nothing is freed individually.
 * Not thread-safe: one arena belongs to one thread at a time. */
#ifndef PYTAKE_ARENA_H
#define PYTAKE_ARENA_H
#include <stdarg.h>
#include <stddef.h>

struct arena_chunk;
struct arena {
	struct arena_chunk *head;
	size_t total;   /* bytes handed out, for limits and metrics */
	size_t limit;   /* 0 = unlimited; allocation past it returns NULL */
};
#define ARENA_INIT { NULL, 0, 0 }

/* Zeroed memory of n bytes, aligned for any type; NULL when out of memory
 * or past the arena's limit. */
void *arena_alloc(struct arena *a, size_t n);
/* Copy of s[0..len) with a NUL added. */
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);
/* printf into the arena. */
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Free every chunk; the arena is empty and reusable afterwards. */
void arena_release(struct arena *a);

#endif
