/* arena: chunked bump allocator.
 *
 * Design: a singly linked list of chunks, newest first. Allocations bump
 * `used` in the head chunk. When the head is full a new chunk is pushed whose
 * capacity doubles (4 KiB, 8 KiB, ... up to ARENA_CHUNK_MAX). A request
 * larger than a quarter of the next chunk size gets a chunk of its own, which
 * is linked *behind* the head so the head keeps serving small requests.
 * Every allocation is rounded up to ARENA_ALIGN bytes and chunk data starts
 * ARENA_ALIGN-aligned, so every pointer handed out is aligned for any type. */
#include "core/arena.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

#define ARENA_ALIGN 16u
#define ARENA_CHUNK_FIRST ((size_t)4 * 1024)
#define ARENA_CHUNK_MAX ((size_t)1024 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t cap;  /* usable bytes in data[] */
	size_t used; /* bytes already handed out */
	alignas(16) unsigned char data[];
};

_Static_assert(sizeof(struct arena_chunk) % ARENA_ALIGN == 0,
	       "chunk header keeps data aligned");

/* Round n up to ARENA_ALIGN; false on overflow. */
static bool round_up(size_t n, size_t *out)
{
	if (n > SIZE_MAX - (ARENA_ALIGN - 1))
		return false;
	*out = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	return true;
}

/* A new chunk with cap usable bytes (cap is a multiple of ARENA_ALIGN). */
static struct arena_chunk *chunk_new(size_t cap)
{
	size_t total;
	struct arena_chunk *c;

	if (cap > SIZE_MAX - sizeof(struct arena_chunk))
		return NULL;
	total = sizeof(struct arena_chunk) + cap;
	c = aligned_alloc(ARENA_ALIGN, total);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->cap = cap;
	c->used = 0;
	return c;
}

/* Size for the next regular chunk: double the head's, bounded. */
static size_t next_chunk_size(const struct arena *a)
{
	size_t cap;

	if (a->head == NULL)
		return ARENA_CHUNK_FIRST;
	cap = a->head->cap;
	if (cap < ARENA_CHUNK_FIRST)
		cap = ARENA_CHUNK_FIRST;
	if (cap >= ARENA_CHUNK_MAX / 2)
		return ARENA_CHUNK_MAX;
	return cap * 2;
}

/* Get n (already rounded) bytes from a new chunk. */
static void *alloc_slow(struct arena *a, size_t n)
{
	size_t cap = next_chunk_size(a);
	struct arena_chunk *c;

	if (n > cap / 4) {
		/* Large request: its own exactly-sized chunk behind the head. */
		c = chunk_new(n);
		if (c == NULL)
			return NULL;
		c->used = n;
		if (a->head == NULL) {
			a->head = c;
		} else {
			c->next = a->head->next;
			a->head->next = c;
		}
		return c->data;
	}
	c = chunk_new(cap);
	if (c == NULL)
		return NULL;
	c->next = a->head;
	a->head = c;
	c->used = n;
	return c->data;
}

void *arena_alloc(struct arena *a, size_t n)
{
	size_t want;
	void *p;

	if (!round_up(n == 0 ? 1 : n, &want))
		return NULL;
	if (want > SIZE_MAX - a->total)
		return NULL;
	if (a->limit != 0 && a->total + want > a->limit)
		return NULL;
	if (a->head != NULL && a->head->cap - a->head->used >= want) {
		p = a->head->data + a->head->used;
		a->head->used += want;
	} else {
		p = alloc_slow(a, want);
		if (p == NULL)
			return NULL;
	}
	a->total += want;
	memset(p, 0, want);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *p;

	if (s == NULL || len == SIZE_MAX)
		return NULL;
	p = arena_alloc(a, len + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	if (s == NULL)
		return NULL;
	return arena_strndup(a, s, strlen(s));
}

char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
	va_list measure;
	int need;
	char *p;

	va_copy(measure, ap);
	need = vsnprintf(NULL, 0, fmt, measure);
	va_end(measure);
	if (need < 0)
		return NULL;
	p = arena_alloc(a, (size_t)need + 1);
	if (p == NULL)
		return NULL;
	if (vsnprintf(p, (size_t)need + 1, fmt, ap) != need)
		return NULL;
	return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void arena_release(struct arena *a)
{
	struct arena_chunk *c = a->head;

	while (c != NULL) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->total = 0;
}
