/* Unit tests for jobs/dispatcher (pacing arithmetic, backoff bounds,
 * error classification) and domain/campaigns (state machine table,
 * parameter placeholders). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "domain/campaigns.h"
#include "domain/numbers.h"
#include "jobs/dispatcher.h"

static void test_interval(void **state)
{
	(void)state;
	assert_int_equal(dispatch_interval_us(1000, false), 1000);
	assert_int_equal(dispatch_interval_us(80, false), 12500);
	assert_int_equal(dispatch_interval_us(3, false), 333334); /* rounded up: never faster */
	assert_int_equal(dispatch_interval_us(50, true), 40000);  /* halved rate */
	assert_int_equal(dispatch_interval_us(0, false), 1000000);
}

struct pace_case {
	int64_t next, now;
	int want;
	int64_t interval, horizon;
	int granted;
	int64_t first_at, next_after;
};

static const struct pace_case pace_cases[] = {
	/* idle bucket: start now */
	{ 0, 1000000, 10, 20000, 250000, 10, 1000000, 1200000 },
	/* booked slightly ahead: continue from the booked slot */
	{ 1100000, 1000000, 5, 20000, 250000, 5, 1100000, 1200000 },
	/* booked beyond the horizon: nothing */
	{ 1300000, 1000000, 5, 20000, 250000, 0, 1300000, 1300000 },
	/* exactly at the horizon: still granted */
	{ 1250000, 1000000, 1, 20000, 250000, 1, 1250000, 1270000 },
	/* want 0 */
	{ 0, 1000000, 0, 20000, 250000, 0, 1000000, 0 },
};

static void test_pace_take(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof pace_cases / sizeof pace_cases[0]; i++) {
		const struct pace_case *c = &pace_cases[i];
		struct dispatch_grant g;
		dispatch_pace_take(c->next, c->now, c->want, c->interval, c->horizon, &g);
		assert_int_equal(g.granted, c->granted);
		assert_int_equal(g.first_at, c->first_at);
		assert_int_equal(g.next_slot_at, c->next_after);
	}
}

/* Taking slots one second long never starts more than mps sends in any
 * 1-second window, however the takes are split. */
static void test_pace_window(void **state)
{
	(void)state;
	int mps = 50;
	int64_t iv = dispatch_interval_us(mps, false), next = 0, now = 0;
	int64_t starts[400];
	int n = 0;
	while (n < 390) {
		struct dispatch_grant g;
		dispatch_pace_take(next, now, 7, iv, DISPATCH_HORIZON_US, &g);
		for (int k = 0; k < g.granted && n < 400; k++)
			starts[n++] = g.first_at + k * iv;
		next = g.next_slot_at;
		now += 30000;
	}
	for (int i = 0; i < n; i++) {
		int in = 0;
		for (int j = i; j < n && starts[j] < starts[i] + 1000000; j++)
			in++;
		assert_true(in <= mps);
	}
}

static void test_slot_interval(void **state)
{
	(void)state;
	assert_int_equal(dispatch_slot_interval_us(1000, false, 5000), 1006);
	assert_int_equal(dispatch_slot_interval_us(50, false, 5000), 20101);
	assert_int_equal(dispatch_slot_interval_us(50, true, 5000), 40202);
	assert_int_equal(dispatch_slot_interval_us(80, false, 0), 12501);
	assert_int_equal(dispatch_slot_interval_us(0, false, 0), 1000001);
	assert_int_equal(dispatch_slot_interval_us(10, false, -5), 100001);
}

/* Slots taken at the slot interval, each start up to DISPATCH_LATE_US late
 * (the worst mix: some on time, some as late as allowed), never put more
 * than mps starts in any closed 1-second window; the plain 1/mps interval
 * would. */
static int worst_window(const int64_t *starts, int n)
{
	int worst = 0;
	for (int i = 0; i < n; i++) {
		int in = 0;
		for (int j = 0; j < n; j++)
			if (starts[j] >= starts[i] && starts[j] <= starts[i] + 1000000)
				in++;
		if (in > worst)
			worst = in;
	}
	return worst;
}

/* The claim-ahead depth fits under the per-process cap: at the highest
 * rate a number may have, what is booked (lead + horizon + one claim's
 * span), in flight and waiting for the recorder stays below
 * DISPATCH_MAX_LOCAL, else the cap and not the horizon limits the
 * booking (with 1,024 and a 0.35-0.6 s booking the sender ran dry
 * whenever the claimer stalled). And a claimed job, booked as far ahead
 * as allowed, still starts and times out well within its claim's TTL. */
static void test_booking_fits_the_caps(void **state)
{
	(void)state;
	int64_t booked_us = DISPATCH_LEAD_US + DISPATCH_HORIZON_US + DISPATCH_CLAIM_SPAN_US;
	int64_t booked = booked_us * NUMBERS_MAX_MPS / 1000000;
	/* + requests in flight + one second of outcomes not yet recorded */
	assert_true(booked + DISPATCH_MAX_INFLIGHT + NUMBERS_MAX_MPS <= DISPATCH_MAX_LOCAL);
	assert_true(DISPATCH_HORIZON_US >= 1000000); /* a 1 s claimer stall costs no slot */
	assert_true(booked_us + DISPATCH_REQUEST_TIMEOUT_MS * 1000 + 2000000 <
		    DISPATCH_CLAIM_TTL_US);
	/* one claim takes a span, several claims fill the horizon */
	assert_true(DISPATCH_CLAIM_SPAN_US < DISPATCH_HORIZON_US);
}

static void test_pace_window_with_lateness(void **state)
{
	(void)state;
	static const int rates[] = { 1, 7, 50, 80, 333, 1000 };
	static int64_t starts[2200];
	for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
		int mps = rates[r];
		int n = mps * 2 + 2;
		for (int pass = 0; pass < 2; pass++) {
			int64_t iv = pass == 0 ? dispatch_slot_interval_us(mps, false, DISPATCH_LATE_US)
					       : dispatch_interval_us(mps, false);
			/* the first slot starts as late as allowed, the rest on time */
			for (int k = 0; k < n; k++)
				starts[k] = (int64_t)k * iv + (k == 0 ? DISPATCH_LATE_US : 0);
			int worst = worst_window(starts, n);
			if (pass == 0)
				assert_true(worst <= mps);
			else
				assert_true(worst > mps);
		}
	}
}

static void test_backoff_bounds(void **state)
{
	(void)state;
	assert_int_equal(dispatch_backoff_us(1, 0), 50000);
	assert_true(dispatch_backoff_us(1, UINT32_MAX) <= DISPATCH_BACKOFF_BASE_US);
	assert_true(dispatch_backoff_us(2, UINT32_MAX) <= 2 * DISPATCH_BACKOFF_BASE_US);
	assert_true(dispatch_backoff_us(2, UINT32_MAX) > DISPATCH_BACKOFF_BASE_US);
	assert_true(dispatch_backoff_us(40, UINT32_MAX) <= DISPATCH_BACKOFF_MAX_US);
	assert_true(dispatch_backoff_us(40, UINT32_MAX) > DISPATCH_BACKOFF_MAX_US / 2);
	assert_int_equal(dispatch_backoff_us(3, UINT32_C(0x80000000)), DISPATCH_BACKOFF_BASE_US * 2);
}

struct class_case {
	enum graph_rc rc;
	int64_t code;
	long http;
	enum graph_transport tr;
	int attempts;
	enum dispatch_outcome want;
};

static const struct class_case class_cases[] = {
	{ GRAPH_OK, 0, 200, GRAPH_TRANSPORT_NONE, 1, DISPATCH_SENT },
	{ GRAPH_ERR_META, 130429, 429, GRAPH_TRANSPORT_NONE, 1, DISPATCH_RETRY },
	{ GRAPH_ERR_META, 131056, 400, GRAPH_TRANSPORT_NONE, 1, DISPATCH_RETRY },
	{ GRAPH_ERR_META, 80007, 400, GRAPH_TRANSPORT_NONE, 1, DISPATCH_RETRY },
	{ GRAPH_ERR_META, 131057, 400, GRAPH_TRANSPORT_NONE, 1, DISPATCH_RETRY },
	{ GRAPH_ERR_META, 131000, 500, GRAPH_TRANSPORT_NONE, 1, DISPATCH_RETRY },
	{ GRAPH_ERR_META, 131016, 503, GRAPH_TRANSPORT_NONE, 1, DISPATCH_RETRY },
	{ GRAPH_ERR_META, 0, 502, GRAPH_TRANSPORT_NONE, 1, DISPATCH_RETRY },
	{ GRAPH_ERR_TRANSPORT, 0, 0, GRAPH_TRANSPORT_TIMEOUT, 1, DISPATCH_RETRY },
	{ GRAPH_ERR_META, 130429, 429, GRAPH_TRANSPORT_NONE, 5, DISPATCH_FAIL }, /* exhausted */
	{ GRAPH_ERR_META, 131026, 400, GRAPH_TRANSPORT_NONE, 1, DISPATCH_FAIL },
	{ GRAPH_ERR_META, 132000, 400, GRAPH_TRANSPORT_NONE, 1, DISPATCH_FAIL },
	{ GRAPH_ERR_META, 131049, 400, GRAPH_TRANSPORT_NONE, 1, DISPATCH_FAIL },
	{ GRAPH_ERR_META, 100, 400, GRAPH_TRANSPORT_NONE, 1, DISPATCH_FAIL },
};

static void test_classify(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof class_cases / sizeof class_cases[0]; i++) {
		const struct class_case *c = &class_cases[i];
		struct graph_error e;
		graph_error_clear(&e);
		e.code = c->code;
		e.http_status = c->http;
		e.transport = c->tr;
		assert_int_equal(dispatch_classify(c->rc, &e, c->attempts, 5), c->want);
	}
}

struct sm_case {
	const char *from;
	enum campaign_action action;
	bool future;
	const char *to; /* NULL = 409 */
};

static const struct sm_case sm_cases[] = {
	{ "draft", CAMPAIGN_START, false, "running" },
	{ "draft", CAMPAIGN_START, true, "scheduled" },
	{ "draft", CAMPAIGN_PAUSE, false, NULL },
	{ "draft", CAMPAIGN_RESUME, false, NULL },
	{ "draft", CAMPAIGN_CANCEL, false, "cancelled" },
	{ "scheduled", CAMPAIGN_START, false, NULL },
	{ "scheduled", CAMPAIGN_CANCEL, false, "cancelled" },
	{ "running", CAMPAIGN_PAUSE, false, "paused" },
	{ "running", CAMPAIGN_RESUME, false, NULL },
	{ "running", CAMPAIGN_START, false, NULL },
	{ "running", CAMPAIGN_CANCEL, false, "cancelled" },
	{ "paused", CAMPAIGN_RESUME, false, "running" },
	{ "paused", CAMPAIGN_PAUSE, false, NULL },
	{ "paused", CAMPAIGN_CANCEL, false, "cancelled" },
	{ "completed", CAMPAIGN_RESUME, false, NULL },
	{ "completed", CAMPAIGN_CANCEL, false, NULL },
	{ "cancelled", CAMPAIGN_START, false, NULL },
	{ "failed", CAMPAIGN_RESUME, false, NULL },
};

static void test_state_machine(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof sm_cases / sizeof sm_cases[0]; i++) {
		const struct sm_case *c = &sm_cases[i];
		const char *to = campaigns_next_status(c->from, c->action, c->future);
		if (c->to == NULL)
			assert_null(to);
		else
			assert_string_equal(to, c->to);
	}
	assert_true(campaigns_status_final("completed"));
	assert_false(campaigns_status_final("paused"));
}

static void test_resolve_parameters(void **state)
{
	(void)state;
	json_t *params = json_pack("[s, s, s, s, s]", "{{contact.name}}", "{{contact.phone}}",
				   "{{contact.attributes.code}}", "{{contact.attributes.n}}",
				   "literal {{contact.name}}");
	json_t *attrs = json_pack("{s:s, s:i}", "code", "X1", "n", 7);
	json_t *out = campaigns_resolve_parameters(params, "Maria", "5511987654321", attrs);
	assert_non_null(out);
	assert_string_equal(json_string_value(json_array_get(out, 0)), "Maria");
	assert_string_equal(json_string_value(json_array_get(out, 1)), "5511987654321");
	assert_string_equal(json_string_value(json_array_get(out, 2)), "X1");
	assert_string_equal(json_string_value(json_array_get(out, 3)), "7");
	assert_string_equal(json_string_value(json_array_get(out, 4)), "literal {{contact.name}}");
	json_decref(out);
	out = campaigns_resolve_parameters(params, NULL, NULL, NULL);
	assert_string_equal(json_string_value(json_array_get(out, 0)), "");
	assert_string_equal(json_string_value(json_array_get(out, 2)), "");
	json_decref(out);
	assert_null(campaigns_resolve_parameters(NULL, "a", "b", NULL));
	json_decref(params);
	json_decref(attrs);
	json_t *good = json_pack("{s:[s]}", "tags", "vip");
	assert_null(campaigns_check_audience(good));
	json_decref(good);
	json_t *bad = json_pack("{s:[s]}", "contact_ids", "nope");
	assert_non_null(campaigns_check_audience(bad));
	json_decref(bad);
	bad = json_object();
	assert_non_null(campaigns_check_audience(bad));
	json_decref(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interval),      cmocka_unit_test(test_pace_take),
		cmocka_unit_test(test_pace_window),   cmocka_unit_test(test_backoff_bounds),
		cmocka_unit_test(test_classify),      cmocka_unit_test(test_state_machine),
		cmocka_unit_test(test_resolve_parameters), cmocka_unit_test(test_slot_interval),
		cmocka_unit_test(test_pace_window_with_lateness),
		cmocka_unit_test(test_booking_fits_the_caps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
