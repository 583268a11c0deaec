/* libFuzzer driver for meta/webhook_parse: signed but otherwise untrusted
 * Meta webhook bodies (the signature only proves Meta, or whoever holds the
 * app secret, sent them).
 *
 * Feeds the bytes to webhook_parse and checks invariants:
 *   - a failure leaves a non-empty error line and an empty result;
 *   - a success stays within the WH_MAX_* bounds, every required field is
 *     set (message id/type/content, status id/status, change field), and
 *     each status re-parses on its own (pending_statuses payloads) to the
 *     same wamid and timestamp;
 *   - names and ranks of every type are static strings.
 * Build (from the repo root):
 *   clang -std=c17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -Isrc -include src/core/banned.h fuzz/fuzz_webhook_parse.c \
 *     src/meta/webhook_parse.c src/core/json.c -ljansson -o fuzz_webhook_parse
 *   ./fuzz_webhook_parse -max_total_time=60 fuzz/corpus/webhook_parse */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "meta/webhook_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const struct wh_message *m)
{
	if (m->id == NULL || m->type_name == NULL || m->content == NULL ||
	    m->timestamp_us < 0 || (m->from == NULL && m->from_user_id == NULL))
		abort();
	if (wh_msg_type_name(m->type) == NULL)
		abort();
}

static void check_status(const struct wh_status *s)
{
	struct wh_status again;
	char err[WH_ERR_MAX];
	if (s->id == NULL || s->status == NULL || s->raw == NULL || s->timestamp_us < 0)
		abort();
	if (webhook_parse_status(s->raw, &again, err, sizeof err) != WEBHOOK_PARSE_OK)
		abort();
	if (strcmp(again.id, s->id) != 0 || again.timestamp_us != s->timestamp_us ||
	    again.kind != s->kind)
		abort();
	(void)wh_status_rank(s->status);
}

static void check_parsed(const struct webhook_parsed *wp)
{
	size_t items = 0;
	if (wp->root == NULL || wp->nchanges > WH_MAX_CHANGES)
		abort();
	for (size_t i = 0; i < wp->nchanges; i++) {
		const struct wh_change *ch = &wp->changes[i];
		if (ch->field == NULL || wh_change_kind_name(ch->kind) == NULL)
			abort();
		for (size_t j = 0; j < ch->nmessages; j++)
			check_message(&ch->messages[j]);
		for (size_t j = 0; j < ch->nstatuses; j++)
			check_status(&ch->statuses[j]);
		for (size_t j = 0; j < ch->npreferences; j++)
			if (ch->preferences[j].value == NULL)
				abort();
		if (ch->kind == WH_CHANGE_PHONE_QUALITY && ch->phone.event == NULL)
			abort();
		items += ch->nmessages + ch->nstatuses + ch->ncontacts + ch->npreferences;
	}
	if (items > WH_MAX_ITEMS)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct webhook_parsed wp;
	char err[WH_ERR_MAX];
	int rc = webhook_parse((const char *)data, size, &wp, err, sizeof err);
	if (rc == WEBHOOK_PARSE_OK) {
		check_parsed(&wp);
		webhook_parsed_free(&wp);
	} else if (err[0] == '\0' || wp.root != NULL || wp.changes != NULL) {
		abort();
	}
	return 0;
}
