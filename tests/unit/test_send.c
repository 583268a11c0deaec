/* Unit tests of the pure parts of sending and the inbox renderers:
 * send_graph_body (Meta's request body), message_json (API.md's message
 * fields, exact money strings) and conversation_json / the window rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "domain/conversations.h"
#include "domain/messages.h"
#include "domain/send.h"

static void assert_json_eq(json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);
	assert_non_null(want);
	assert_non_null(got);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS);
		print_error("got %s\nwant %s\n", g, want_text);
		free(g);
		fail();
	}
	json_decref(want);
}

static void test_graph_body(void **state)
{
	(void)state;
	static const struct {
		const char *wa_id, *bsuid, *type, *object, *want;
	} cases[] = {
		{ "5511987654321", NULL, "text", "{\"preview_url\":false,\"body\":\"hi\"}",
		  "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
		  "\"to\":\"5511987654321\",\"type\":\"text\","
		  "\"text\":{\"preview_url\":false,\"body\":\"hi\"}}" },
		{ "", "US.123", "template", "{\"name\":\"t\",\"language\":{\"code\":\"en\"}}",
		  "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
		  "\"recipient\":\"US.123\",\"type\":\"template\","
		  "\"template\":{\"name\":\"t\",\"language\":{\"code\":\"en\"}}}" },
		{ "14155552671", "US.9", "template", "{\"components\":[]}",
		  "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
		  "\"to\":\"14155552671\",\"type\":\"template\",\"template\":{\"components\":[]}}" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *obj = json_loads(cases[i].object, 0, NULL);
		json_t *b = send_graph_body(cases[i].wa_id, cases[i].bsuid, cases[i].type, obj);
		assert_json_eq(b, cases[i].want);
		json_decref(b);
		json_decref(obj);
	}
}

static void test_message_json_fields_and_money(void **state)
{
	(void)state;
	static const struct {
		bool has_cost;
		int64_t micros;
		const char *want; /* JSON of "cost" */
	} cases[] = {
		{ false, 0, "null" },        { true, 0, "\"0.000000\"" },
		{ true, 12500000, "\"12.500000\"" }, { true, 3400, "\"0.003400\"" },
		{ true, -1, "\"-0.000001\"" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct message m = { 0 };
		memcpy(m.id, "0190f0a0-0000-7000-8000-000000000001", 37);
		memcpy(m.conversation_id, "0190f0a0-0000-7000-8000-000000000002", 37);
		memcpy(m.direction, "outbound", 9);
		memcpy(m.type, "text", 5);
		memcpy(m.status, "failed", 7);
		m.text = strdup("hi");
		m.has_error_code = true;
		m.error_code = 131026;
		memcpy(m.error_message, "undeliverable", 14);
		m.created_at = 1764410000000000;
		m.failed_at = 1764410001500000;
		m.has_cost = cases[i].has_cost;
		m.cost_micros = cases[i].micros;
		json_t *j = message_json(&m);
		assert_non_null(j);
		assert_int_equal(json_object_size(j), 18);
		assert_string_equal(json_string_value(json_object_get(j, "created_at")),
				    "2025-11-29T09:53:20Z");
		assert_true(json_is_null(json_object_get(j, "wamid")));
		assert_true(json_is_null(json_object_get(j, "content")));
		assert_true(json_is_null(json_object_get(j, "sent_at")));
		assert_int_equal(json_integer_value(json_object_get(j, "error_code")), 131026);
		char *cost = json_dumps(json_object_get(j, "cost"), JSON_ENCODE_ANY);
		assert_string_equal(cost, cases[i].want);
		free(cost);
		json_decref(j);
		message_release(&m);
	}
}

static void test_conversation_window_and_json(void **state)
{
	(void)state;
	struct conversation cv = { 0 };
	memcpy(cv.id, "0190f0a0-0000-7000-8000-00000000000a", 37);
	memcpy(cv.contact_id, "0190f0a0-0000-7000-8000-00000000000b", 37);
	memcpy(cv.status, "open", 5);
	memcpy(cv.contact_wa_id, "5511987654321", 14);
	cv.created_at = 100;
	assert_false(conversation_window_open(&cv, 50)); /* never opened */
	assert_int_equal(conversation_sort_at(&cv), 100);
	cv.last_message_at = 200;
	cv.window_expires_at = 1000;
	assert_int_equal(conversation_sort_at(&cv), 200);
	assert_true(conversation_window_open(&cv, 999));
	assert_false(conversation_window_open(&cv, 1000));
	json_t *j = conversation_json(&cv);
	assert_non_null(j);
	json_t *contact = json_object_get(j, "contact");
	assert_string_equal(json_string_value(json_object_get(contact, "phone")), "5511987654321");
	assert_true(json_is_null(json_object_get(contact, "name")));
	assert_true(json_is_null(json_object_get(j, "assigned_to")));
	assert_int_equal(json_integer_value(json_object_get(j, "unread_count")), 0);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_graph_body),
		cmocka_unit_test(test_message_json_fields_and_money),
		cmocka_unit_test(test_conversation_window_and_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
