/* libFuzzer driver for the paging cursor (src/api/paging.c,
 * page_cursor_decode): the `cursor` query parameter of every list
 * endpoint, untrusted text.
 *
 * Checked promises: a refused cursor leaves the page untouched; an
 * accepted one is base64url of "<int64 >= 0>:<uuid>" with the id stored in
 * lower case, and encoding it again (page_cursor) decodes to the same
 * (created_at, id).
 * Run: make fuzz (fuzz/corpus/paging/ seeds). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/paging.h"
#include "core/arena.h"
#include "core/uuid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct page p, before, again;
	struct arena a = ARENA_INIT;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0'; /* a query value is a C string */
	page_first(&p, 50);
	before = p;
	if (!page_cursor_decode(text, &p)) {
		if (memcmp(&p, &before, sizeof p) != 0)
			__builtin_trap();
		goto out;
	}
	if (!p.has_cursor || p.after_at < 0 || !uuid_is_valid(p.after_id))
		__builtin_trap();
	for (const char *c = p.after_id; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			__builtin_trap();
	const char *enc = page_cursor(&a, p.after_at, p.after_id);
	if (enc == NULL)
		__builtin_trap();
	page_first(&again, 50);
	if (!page_cursor_decode(enc, &again) || again.after_at != p.after_at ||
	    strcmp(again.after_id, p.after_id) != 0)
		__builtin_trap();
out:
	arena_release(&a);
	free(text);
	return 0;
}
