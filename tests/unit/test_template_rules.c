/* Unit tests for meta/template_rules: Meta's validation rules (one row per
 * rule, valid and invalid), the variable scanner, preview rendering, the
 * variables list and the send-time components.
 *
 * JSON in the tables is written with single quotes and turned into double
 * quotes before parsing (no apostrophes in the texts). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meta/template_rules.h"

/* ---- helpers ---- */

static json_t *q(const char *single_quoted)
{
	char *s = strdup(single_quoted);
	json_error_t err;
	json_t *j;

	assert_non_null(s);
	for (char *p = s; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	j = json_loads(s, JSON_DECODE_ANY, &err);
	if (j == NULL)
		fail_msg("bad test JSON (%s): %s", err.text, s);
	free(s);
	return j;
}

/* A template around a components array. */
#define T(comps) "{'name':'t','language':'en_US','category':'UTILITY','components':" comps "}"
#define NAMED(comps) "{'name':'t','language':'en_US','category':'MARKETING'," \
	"'parameter_format':'NAMED','components':" comps "}"
#define BODY_OK "{'type':'BODY','text':'Hello there'}"

#define MAXF 6

/* details must list exactly these fields, in order. */
static void assert_fields(const char *desc, const json_t *details, const char *const *fields)
{
	size_t want = 0;

	while (want < MAXF && fields[want] != NULL)
		want++;
	if (json_array_size(details) != want) {
		char *dump = details ? json_dumps(details, 0) : NULL;

		fail_msg("%s: %zu details, want %zu: %s", desc, json_array_size(details),
			 want, dump ? dump : "null");
	}
	for (size_t i = 0; i < want; i++) {
		const char *f = json_string_value(json_object_get(json_array_get(details, i), "field"));
		const char *m = json_string_value(json_object_get(json_array_get(details, i), "message"));

		if (f == NULL || strcmp(f, fields[i]) != 0)
			fail_msg("%s: details[%zu].field = %s, want %s", desc, i,
				 f ? f : "(null)", fields[i]);
		if (m == NULL || *m == '\0')
			fail_msg("%s: details[%zu] has no message", desc, i);
	}
}

static void assert_msg(const char *desc, const json_t *details, const char *sub)
{
	size_t i;
	const json_t *e;

	json_array_foreach(details, i, e) {
		const char *m = json_string_value(json_object_get(e, "message"));

		if (m != NULL && strstr(m, sub) != NULL)
			return;
	}
	fail_msg("%s: no message contains '%s'", desc, sub);
}

/* ---- validation table ---- */

struct vcase {
	const char *desc;
	const char *tmpl;
	int rc;
	const char *fields[MAXF];
	const char *msg; /* some message contains this, when set */
};

static const struct vcase vcases[] = {
	/* top-level fields */
	{ "minimal valid", T("[" BODY_OK "]"), TEMPLATE_OK, { NULL }, NULL },
	{ "name upper case", "{'name':'Order_Update','language':'en','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "name" }, "a-z, 0-9 and _" },
	{ "name dash", "{'name':'order-update','language':'en','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "name" }, NULL },
	{ "name empty", "{'name':'','language':'en','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "name" }, NULL },
	{ "name missing", "{'language':'en','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "name" }, "is required" },
	{ "name wrong type", "{'name':5,'language':'en','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_BAD_TYPE, { "name" }, "must be a string" },
	{ "name digits and _", "{'name':'order_2_update','language':'en','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_OK, { NULL }, NULL },
	{ "category lower case", "{'name':'t','language':'en','category':'utility','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "category" }, "MARKETING, UTILITY or AUTHENTICATION" },
	{ "category unknown", "{'name':'t','language':'en','category':'PROMO','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "category" }, NULL },
	{ "category AUTHENTICATION", "{'name':'t','language':'en','category':'AUTHENTICATION','components':[" BODY_OK "]}",
	  TEMPLATE_OK, { NULL }, NULL },
	{ "category MARKETING", "{'name':'t','language':'en','category':'MARKETING','components':[" BODY_OK "]}",
	  TEMPLATE_OK, { NULL }, NULL },
	{ "language pt_BR", "{'name':'t','language':'pt_BR','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_OK, { NULL }, NULL },
	{ "language fil", "{'name':'t','language':'fil','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_OK, { NULL }, NULL },
	{ "language es_MX", "{'name':'t','language':'es_MX','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_OK, { NULL }, NULL },
	{ "language dash", "{'name':'t','language':'en-US','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "language" }, "like en, en_US" },
	{ "language upper", "{'name':'t','language':'EN','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "language" }, NULL },
	{ "language unknown", "{'name':'t','language':'xx_YY','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "language" }, "xx_YY is not a language Meta supports" },
	{ "language missing", "{'name':'t','category':'UTILITY','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "language" }, NULL },
	{ "parameter_format lower", "{'name':'t','language':'en','category':'UTILITY','parameter_format':'named','components':[" BODY_OK "]}",
	  TEMPLATE_INVALID, { "parameter_format" }, "POSITIONAL or NAMED" },
	{ "parameter_format POSITIONAL", "{'name':'t','language':'en','category':'UTILITY','parameter_format':'POSITIONAL','components':[" BODY_OK "]}",
	  TEMPLATE_OK, { NULL }, NULL },
	{ "components missing", "{'name':'t','language':'en','category':'UTILITY'}",
	  TEMPLATE_INVALID, { "components" }, NULL },
	{ "components object", "{'name':'t','language':'en','category':'UTILITY','components':{}}",
	  TEMPLATE_BAD_TYPE, { "components" }, "must be an array" },
	{ "many broken rules", "{'name':'Bad Name','language':'english','category':'SPAM','parameter_format':'X','components':[]}",
	  TEMPLATE_INVALID, { "name", "language", "category", "parameter_format", "components" }, NULL },
	{ "not an object", "[]", TEMPLATE_BAD_TYPE, { "" }, NULL },

	/* components */
	{ "no BODY", T("[{'type':'FOOTER','text':'bye'}]"), TEMPLATE_INVALID, { "components" }, "BODY component is required" },
	{ "duplicate BODY", T("[" BODY_OK "," BODY_OK "]"), TEMPLATE_INVALID, { "components[1].type" }, "duplicate BODY" },
	{ "duplicate FOOTER", T("[" BODY_OK ",{'type':'FOOTER','text':'a'},{'type':'FOOTER','text':'b'}]"),
	  TEMPLATE_INVALID, { "components[2].type" }, NULL },
	{ "unknown component", T("[{'type':'CAROUSEL'}," BODY_OK "]"), TEMPLATE_INVALID, { "components[0].type" }, NULL },
	{ "component not object", T("['BODY']"), TEMPLATE_BAD_TYPE, { "components[0]", "components" }, NULL },
	{ "component type missing", T("[{'text':'x'}," BODY_OK "]"), TEMPLATE_INVALID, { "components[0].type" }, NULL },
	{ "BODY text missing", T("[{'type':'BODY'}]"), TEMPLATE_INVALID, { "components[0].text" }, NULL },
	{ "BODY text empty", T("[{'type':'BODY','text':''}]"), TEMPLATE_INVALID, { "components[0].text" }, NULL },
	{ "BODY text number", T("[{'type':'BODY','text':3}]"), TEMPLATE_BAD_TYPE, { "components[0].text" }, NULL },

	/* HEADER */
	{ "HEADER TEXT ok", T("[{'type':'HEADER','format':'TEXT','text':'Your order'}," BODY_OK "]"), TEMPLATE_OK, { NULL }, NULL },
	{ "HEADER format missing", T("[{'type':'HEADER','text':'x'}," BODY_OK "]"), TEMPLATE_INVALID, { "components[0].format" }, NULL },
	{ "HEADER format unknown", T("[{'type':'HEADER','format':'GIF'}," BODY_OK "]"), TEMPLATE_INVALID, { "components[0].format" }, NULL },
	{ "HEADER TEXT no text", T("[{'type':'HEADER','format':'TEXT'}," BODY_OK "]"), TEMPLATE_INVALID, { "components[0].text" }, NULL },
	{ "HEADER one var with example", T("[{'type':'HEADER','format':'TEXT','text':'Order {{1}}','example':{'header_text':['#12']}}," BODY_OK "]"),
	  TEMPLATE_OK, { NULL }, NULL },
	{ "HEADER var without example", T("[{'type':'HEADER','format':'TEXT','text':'Order {{1}}'}," BODY_OK "]"),
	  TEMPLATE_INVALID, { "components[0].example.header_text" }, NULL },
	{ "HEADER example count", T("[{'type':'HEADER','format':'TEXT','text':'Order {{1}}','example':{'header_text':['a','b']}}," BODY_OK "]"),
	  TEMPLATE_INVALID, { "components[0].example.header_text" }, "1 variable but the example has 2 values" },
	{ "HEADER two vars", T("[{'type':'HEADER','format':'TEXT','text':'{{1}} and {{2}}'}," BODY_OK "]"),
	  TEMPLATE_INVALID, { "components[0].text" }, "at most 1 variable" },
	{ "HEADER var {{2}}", T("[{'type':'HEADER','format':'TEXT','text':'Order {{2}}','example':{'header_text':['a']}}," BODY_OK "]"),
	  TEMPLATE_INVALID, { "components[0].text" }, "HEADER has variable {{2}} but no {{1}}" },
	{ "HEADER IMAGE ok", T("[{'type':'HEADER','format':'IMAGE','example':{'header_handle':['4::aW1n']}}," BODY_OK "]"),
	  TEMPLATE_OK, { NULL }, NULL },
	{ "HEADER IMAGE no handle", T("[{'type':'HEADER','format':'IMAGE'}," BODY_OK "]"),
	  TEMPLATE_INVALID, { "components[0].example.header_handle" }, "IMAGE HEADER needs" },
	{ "HEADER DOCUMENT no handle", T("[{'type':'HEADER','format':'DOCUMENT','example':{}}," BODY_OK "]"),
	  TEMPLATE_INVALID, { "components[0].example.header_handle" }, NULL },
	{ "HEADER VIDEO bad handle", T("[{'type':'HEADER','format':'VIDEO','example':{'header_handle':'x'}}," BODY_OK "]"),
	  TEMPLATE_BAD_TYPE, { "components[0].example.header_handle" }, NULL },
	{ "HEADER LOCATION ok", T("[{'type':'HEADER','format':'LOCATION'}," BODY_OK "]"), TEMPLATE_OK, { NULL }, NULL },

	/* FOOTER */
	{ "FOOTER ok", T("[" BODY_OK ",{'type':'FOOTER','text':'Reply STOP to opt out'}]"), TEMPLATE_OK, { NULL }, NULL },
	{ "FOOTER variable", T("[" BODY_OK ",{'type':'FOOTER','text':'Bye {{1}}'}]"), TEMPLATE_INVALID,
	  { "components[1].text" }, "FOOTER must not contain variables" },
	{ "FOOTER malformed variable", T("[" BODY_OK ",{'type':'FOOTER','text':'Bye {{ x }}'}]"), TEMPLATE_INVALID,
	  { "components[1].text" }, NULL },
	{ "FOOTER 61", T("[" BODY_OK ",{'type':'FOOTER','text':'0123456789012345678901234567890123456789012345678901234567890'}]"),
	  TEMPLATE_INVALID, { "components[1].text" }, "61 characters; at most 60" },
	{ "FOOTER 60", T("[" BODY_OK ",{'type':'FOOTER','text':'012345678901234567890123456789012345678901234567890123456789'}]"),
	  TEMPLATE_OK, { NULL }, NULL },

	/* BODY variables, POSITIONAL */
	{ "body vars ok", T("[{'type':'BODY','text':'Hi {{1}}, order {{2}} shipped.','example':{'body_text':[['Ana','#1']]}}]"),
	  TEMPLATE_OK, { NULL }, NULL },
	{ "body repeated var ok", T("[{'type':'BODY','text':'Hi {{1}}, yes {{1}}!','example':{'body_text':[['Ana']]}}]"),
	  TEMPLATE_OK, { NULL }, NULL },
	{ "body gap", T("[{'type':'BODY','text':'Hi {{1}}, order {{3}} ok','example':{'body_text':[['a','b','c']]}}]"),
	  TEMPLATE_INVALID, { "components[0].text" }, "BODY has variable {{3}} but no {{2}}" },
	{ "body starts at 2", T("[{'type':'BODY','text':'Hi {{2}} ok','example':{'body_text':[['a']]}}]"),
	  TEMPLATE_INVALID, { "components[0].text" }, "BODY has variable {{2}} but no {{1}}" },
	{ "body adjacent", T("[{'type':'BODY','text':'Hi {{1}}{{2}} ok','example':{'body_text':[['a','b']]}}]"),
	  TEMPLATE_INVALID, { "components[0].text" }, "adjacent variables {{1}} and {{2}}" },
	{ "body adjacent by space", T("[{'type':'BODY','text':'Hi {{1}} \\n {{2}} ok','example':{'body_text':[['a','b']]}}]"),
	  TEMPLATE_INVALID, { "components[0].text" }, "adjacent" },
	{ "body not adjacent with comma", T("[{'type':'BODY','text':'Hi {{1}}, {{2}} ok','example':{'body_text':[['a','b']]}}]"),
	  TEMPLATE_OK, { NULL }, NULL },
	{ "body starts with var", T("[{'type':'BODY','text':'  {{1}} is your code','example':{'body_text':[['a']]}}]"),
	  TEMPLATE_INVALID, { "components[0].text" }, "must not start with a variable" },
	{ "body ends with var", T("[{'type':'BODY','text':'Your code is {{1}} ','example':{'body_text':[['a']]}}]"),
	  TEMPLATE_INVALID, { "components[0].text" }, "must not end with a variable" },
	{ "body ends with punctuation", T("[{'type':'BODY','text':'Your code is {{1}}.','example':{'body_text':[['a']]}}]"),
	  TEMPLATE_OK, { NULL }, NULL },
	{ "body only vars: three rules", T("[{'type':'BODY','text':'{{1}}{{2}}','example':{'body_text':[['a','b']]}}]"),
	  TEMPLATE_INVALID, { "components[0].text", "components[0].text", "components[0].text" }, NULL },
	{ "malformed spaces", T("[{'type':'BODY','text':'Hi {{ 1 }} ok'}]"), TEMPLATE_INVALID, { "components[0].text" }, "malformed variable \"{{ 1 }}\"" },
	{ "malformed one brace", T("[{'type':'BODY','text':'Hi {{1} ok'}]"), TEMPLATE_INVALID, { "components[0].text" }, "malformed" },
	{ "malformed empty", T("[{'type':'BODY','text':'Hi {{}} ok'}]"), TEMPLATE_INVALID, { "components[0].text" }, "{{}}" },
	{ "malformed dash", T("[{'type':'BODY','text':'Hi {{x-y}} ok'}]"), TEMPLATE_INVALID, { "components[0].text" }, NULL },
	{ "malformed upper", T("[{'type':'BODY','text':'Hi {{Name}} ok'}]"), TEMPLATE_INVALID, { "components[0].text" }, NULL },
	{ "malformed zero", T("[{'type':'BODY','text':'Hi {{0}} ok'}]"), TEMPLATE_INVALID, { "components[0].text" }, NULL },
	{ "malformed leading zero", T("[{'type':'BODY','text':'Hi {{01}} ok'}]"), TEMPLATE_INVALID, { "components[0].text" }, NULL },
	{ "single braces are text", T("[{'type':'BODY','text':'Use {x} and } or {'}]"), TEMPLATE_OK, { NULL }, NULL },
	{ "named in POSITIONAL", T("[{'type':'BODY','text':'Hi {{name}} ok'}]"), TEMPLATE_INVALID,
	  { "components[0].text" }, "parameter_format is POSITIONAL" },
	{ "mixed in POSITIONAL", T("[{'type':'BODY','text':'Hi {{1}} and {{name}} ok','example':{'body_text':[['a']]}}]"),
	  TEMPLATE_INVALID, { "components[0].text" }, NULL },
	{ "example missing", T("[{'type':'BODY','text':'Hi {{1}} ok'}]"), TEMPLATE_INVALID,
	  { "components[0].example.body_text" }, "give an example value" },
	{ "example too few", T("[{'type':'BODY','text':'Hi {{1}} and {{2}} ok','example':{'body_text':[['a']]}}]"), TEMPLATE_INVALID,
	  { "components[0].example.body_text" }, "2 variables but the example has 1 value" },
	{ "example flat array", T("[{'type':'BODY','text':'Hi {{1}} ok','example':{'body_text':['a']}}]"), TEMPLATE_BAD_TYPE,
	  { "components[0].example.body_text" }, NULL },
	{ "example empty value", T("[{'type':'BODY','text':'Hi {{1}} ok','example':{'body_text':[['']]}}]"), TEMPLATE_INVALID,
	  { "components[0].example.body_text" }, NULL },
	{ "example not object", T("[{'type':'BODY','text':'Hi {{1}} ok','example':'x'}]"), TEMPLATE_BAD_TYPE,
	  { "components[0].example" }, NULL },

	/* NAMED */
	{ "named ok", NAMED("[{'type':'BODY','text':'Hi {{first_name}}, code {{code_2}} ok','example':{'body_text_named_params':"
	  "[{'param_name':'first_name','example':'Ana'},{'param_name':'code_2','example':'X1'}]}}]"), TEMPLATE_OK, { NULL }, NULL },
	{ "named header ok", NAMED("[{'type':'HEADER','format':'TEXT','text':'For {{who}}','example':{'header_text_named_params':"
	  "[{'param_name':'who','example':'Ana'}]}}," BODY_OK "]"), TEMPLATE_OK, { NULL }, NULL },
	{ "named example missing", NAMED("[{'type':'BODY','text':'Hi {{first_name}} ok'}]"), TEMPLATE_INVALID,
	  { "components[0].example.body_text_named_params" }, "{{first_name}} but no example" },
	{ "named example extra", NAMED("[{'type':'BODY','text':'Hi {{a}} ok','example':{'body_text_named_params':"
	  "[{'param_name':'a','example':'1'},{'param_name':'b','example':'2'}]}}]"), TEMPLATE_INVALID,
	  { "components[0].example.body_text_named_params[1]" }, NULL },
	{ "positional in NAMED", NAMED("[{'type':'BODY','text':'Hi {{1}} ok'}]"), TEMPLATE_INVALID,
	  { "components[0].text" }, "parameter_format is NAMED" },
	{ "named header var in NAMED body template mixed", NAMED("[{'type':'HEADER','format':'TEXT','text':'Order {{1}}'},"
	  "{'type':'BODY','text':'Hi {{a}} ok','example':{'body_text_named_params':[{'param_name':'a','example':'1'}]}}]"),
	  TEMPLATE_INVALID, { "components[0].text" }, NULL },
	{ "named adjacent", NAMED("[{'type':'BODY','text':'Hi {{a}} {{b}} ok','example':{'body_text_named_params':"
	  "[{'param_name':'a','example':'1'},{'param_name':'b','example':'2'}]}}]"), TEMPLATE_INVALID,
	  { "components[0].text" }, "{{a}} and {{b}}" },

	/* BUTTONS */
	{ "buttons ok", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'QUICK_REPLY','text':'Yes'},"
	  "{'type':'URL','text':'Track','url':'https://x.example/t/{{1}}','example':['https://x.example/t/abc']},"
	  "{'type':'PHONE_NUMBER','text':'Call us','phone_number':'+5511999990000'},"
	  "{'type':'COPY_CODE','example':'SAVE10'}]}]"), TEMPLATE_OK, { NULL }, NULL },
	{ "buttons empty", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[]}]"), TEMPLATE_INVALID, { "components[1].buttons" }, "1 to 10" },
	{ "buttons missing", T("[" BODY_OK ",{'type':'BUTTONS'}]"), TEMPLATE_INVALID, { "components[1].buttons" }, NULL },
	{ "label too long", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'QUICK_REPLY','text':'abcdefghijklmnopqrstuvwxyz'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].text" }, "1 to 25" },
	{ "label 25", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'QUICK_REPLY','text':'abcdefghijklmnopqrstuvwxy'}]}]"),
	  TEMPLATE_OK, { NULL }, NULL },
	{ "label missing", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'QUICK_REPLY'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].text" }, NULL },
	{ "label variable", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'QUICK_REPLY','text':'Hi {{1}}'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].text" }, NULL },
	{ "button type unknown", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'FLOW','text':'Go'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].type" }, NULL },
	{ "button not object", T("[" BODY_OK ",{'type':'BUTTONS','buttons':['Yes']}]"),
	  TEMPLATE_BAD_TYPE, { "components[1].buttons[0]" }, NULL },
	{ "three URL buttons", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'URL','text':'a','url':'https://a.example'},"
	  "{'type':'URL','text':'b','url':'https://b.example'},{'type':'URL','text':'c','url':'https://c.example'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons" }, "at most 2 URL buttons, found 3" },
	{ "URL var in middle", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'URL','text':'a','url':'https://a.example/{{1}}/x','example':['https://a.example/1/x']}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].url" }, "only at the end" },
	{ "URL two vars", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'URL','text':'a','url':'https://a.example/{{1}}?{{2}}'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].url" }, "at most 1 variable" },
	{ "URL var no example", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'URL','text':'a','url':'https://a.example/{{1}}'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].example" }, NULL },
	{ "URL var {{2}}", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'URL','text':'a','url':'https://a.example/{{2}}','example':['x']}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].url" }, "must be {{1}}" },
	{ "URL not http", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'URL','text':'a','url':'ftp://a.example'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].url" }, NULL },
	{ "URL missing", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'URL','text':'a'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].url" }, NULL },
	{ "phone missing", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'PHONE_NUMBER','text':'Call'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].phone_number" }, NULL },
	{ "phone letters", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'PHONE_NUMBER','text':'Call','phone_number':'call-me'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].phone_number" }, NULL },
	{ "two phone buttons", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'PHONE_NUMBER','text':'a','phone_number':'+15550001'},"
	  "{'type':'PHONE_NUMBER','text':'b','phone_number':'+15550002'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons" }, "at most 1 PHONE_NUMBER" },
	{ "copy code no example", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'COPY_CODE'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].example" }, NULL },
	{ "copy code too long", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'COPY_CODE','example':'ABCDEFGHIJKLMNOP'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].example" }, NULL },
	{ "two copy code", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'COPY_CODE','example':'A'},{'type':'COPY_CODE','example':'B'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons" }, "at most 1 COPY_CODE" },
	{ "several button errors", T("[" BODY_OK ",{'type':'BUTTONS','buttons':[{'type':'QUICK_REPLY','text':''},"
	  "{'type':'PHONE_NUMBER','text':'x'},{'type':'URL','text':'u','url':'https://u.example/{{1}}'}]}]"),
	  TEMPLATE_INVALID, { "components[1].buttons[0].text", "components[1].buttons[1].phone_number",
			      "components[1].buttons[2].example" }, NULL },
};

static void run_vcase(const struct vcase *c)
{
	json_t *t = q(c->tmpl), *details = (json_t *)0x1;
	int rc = template_validate(t, &details);

	if (rc != c->rc) {
		char *dump = details ? json_dumps(details, 0) : NULL;

		fail_msg("%s: rc %d, want %d (%s)", c->desc, rc, c->rc, dump ? dump : "null");
	}
	if (c->rc == TEMPLATE_OK)
		assert_null(details);
	assert_fields(c->desc, details, c->fields);
	if (c->msg != NULL)
		assert_msg(c->desc, details, c->msg);
	json_decref(details);
	json_decref(t);
}

static void test_validate_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof vcases / sizeof vcases[0]; i++)
		run_vcase(&vcases[i]);
}

/* pattern with its one "%s" replaced by fill; malloc'd. */
static char *fill_in(const char *pattern, const char *fill)
{
	const char *at = strstr(pattern, "%s");
	size_t pre, fl = strlen(fill), post;
	char *out;

	assert_non_null(at);
	pre = (size_t)(at - pattern);
	post = strlen(at + 2);
	out = malloc(pre + fl + post + 1);
	assert_non_null(out);
	memcpy(out, pattern, pre);
	memcpy(out + pre, fill, fl);
	memcpy(out + pre + fl, at + 2, post + 1);
	return out;
}

/* Lengths at and past the limits, in code points (UTF-8 counts once). */
static void check_text_len(const char *desc, const char *comps_pattern, const char *unit,
	size_t n, int want_rc, const char *field)
{
	size_t ul = strlen(unit);
	char *text = malloc(n * ul + 1), *body, *tmpl;
	const char *fields[MAXF] = { field, NULL };
	json_t *details = NULL, *t;
	int rc;

	assert_non_null(text);
	for (size_t i = 0; i < n; i++)
		memcpy(text + i * ul, unit, ul);
	text[n * ul] = '\0';
	body = fill_in(comps_pattern, text);
	tmpl = fill_in("{'name':'t','language':'en','category':'UTILITY','components':%s}", body);
	t = q(tmpl);
	rc = template_validate(t, &details);
	if (rc != want_rc)
		fail_msg("%s n=%zu: rc %d want %d", desc, n, rc, want_rc);
	assert_fields(desc, details, fields);
	json_decref(details);
	json_decref(t);
	free(text);
	free(body);
	free(tmpl);
}

static void test_validate_lengths(void **state)
{
	const char *body = "[{'type':'BODY','text':'%s'}]";
	const char *header = "[{'type':'HEADER','format':'TEXT','text':'%s'},{'type':'BODY','text':'b'}]";

	(void)state;
	check_text_len("body 1024", body, "a", 1024, TEMPLATE_OK, NULL);
	check_text_len("body 1025", body, "a", 1025, TEMPLATE_INVALID, "components[0].text");
	check_text_len("body 1024 accents", body, "\xc3\xa9", 1024, TEMPLATE_OK, NULL);
	check_text_len("body 1025 accents", body, "\xc3\xa9", 1025, TEMPLATE_INVALID, "components[0].text");
	check_text_len("header 60", header, "h", 60, TEMPLATE_OK, NULL);
	check_text_len("header 61", header, "h", 61, TEMPLATE_INVALID, "components[0].text");
	check_text_len("name 512", "[{'type':'BODY','text':'b'}],'name':'%s'", "n", 512, TEMPLATE_OK, NULL);
	check_text_len("name 513", "[{'type':'BODY','text':'b'}],'name':'%s'", "n", 513, TEMPLATE_INVALID, "name");
}

static void test_validate_button_count(void **state)
{
	char buf[2048];
	size_t o = 0;
	json_t *t, *details = NULL;
	const char *const fields[MAXF] = { "components[1].buttons", NULL };

	(void)state;
	o += (size_t)snprintf(buf + o, sizeof buf - o, "%s", "{'name':'t','language':'en','category':'UTILITY',"
			      "'components':[" BODY_OK ",{'type':'BUTTONS','buttons':[");
	for (int i = 0; i < 11; i++)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%s{'type':'QUICK_REPLY','text':'b%d'}",
				      i ? "," : "", i);
	snprintf(buf + o, sizeof buf - o, "]}]}");
	t = q(buf);
	assert_int_equal(template_validate(t, &details), TEMPLATE_INVALID);
	assert_fields("11 buttons", details, fields);
	assert_msg("11 buttons", details, "has 11");
	json_decref(details);
	json_decref(t);
}

/* The samples Meta answers with (/work/shared/meta/graph_template_list_page*.json). */
static void test_meta_samples_pass(void **state)
{
	static const char *const samples[] = {
		"{'name':'order_update','parameter_format':'POSITIONAL','components':[{'type':'BODY',"
		"'text':'Ol\xc3\xa1 {{1}}, seu pedido {{2}} foi enviado.','example':{'body_text':[['Maria','#1234']]}}],"
		"'language':'pt_BR','status':'APPROVED','category':'UTILITY','id':'1689556908129832'}",
		"{'name':'welcome','parameter_format':'NAMED','components':[{'type':'HEADER','format':'TEXT',"
		"'text':'Bem-vindo!'},{'type':'BODY','text':'Oi {{first_name}}, obrigado por falar com a gente.',"
		"'example':{'body_text_named_params':[{'param_name':'first_name','example':'Maria'}]}},"
		"{'type':'FOOTER','text':'Responda SAIR para n\xc3\xa3o receber mais'},{'type':'BUTTONS',"
		"'buttons':[{'type':'QUICK_REPLY','text':'Falar com atendente'}]}],'language':'pt_BR',"
		"'status':'APPROVED','category':'MARKETING','id':'1689556908129840'}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		json_t *t = q(samples[i]), *details = NULL;

		assert_int_equal(template_validate(t, &details), TEMPLATE_OK);
		assert_null(details);
		json_decref(t);
	}
}

static void test_validate_args(void **state)
{
	json_t *details = NULL;

	(void)state;
	assert_int_equal(template_validate(NULL, &details), TEMPLATE_ERROR);
	assert_null(details);
	assert_int_equal(template_validate(json_null(), NULL), TEMPLATE_ERROR);
	assert_true(template_language_supported("en_US"));
	assert_true(template_language_supported("zh_TW"));
	assert_false(template_language_supported("en_us"));
	assert_false(template_language_supported("en_"));
	assert_false(template_language_supported(""));
	assert_false(template_language_supported(NULL));
}

/* ---- scanner ---- */

struct scase {
	const char *text;
	size_t count, malformed;
	const char *names[3];
	const char *bad;
};

static void test_scan(void **state)
{
	static const struct scase cases[] = {
		{ "", 0, 0, { NULL }, NULL },
		{ "plain { text } }}", 0, 0, { NULL }, NULL },
		{ "a {{1}} b {{22}} c", 2, 0, { "1", "22" }, NULL },
		{ "{{first_name}}{{x9_}}", 2, 0, { "first_name", "x9_" }, NULL },
		{ "{{ 1 }}", 0, 1, { NULL }, "{{ 1 }}" },
		{ "x {{1} y", 0, 1, { NULL }, "{{1} y" },
		{ "{{}}", 0, 1, { NULL }, "{{}}" },
		{ "{{x-y}} {{2}}", 1, 1, { "2" }, "{{x-y}}" },
		{ "{{Name}}", 0, 1, { NULL }, "{{Name}}" },
		{ "{{1000}}", 0, 1, { NULL }, NULL },
		{ "{{999}}", 1, 0, { "999" }, NULL },
		{ "{{{1}}}", 0, 1, { NULL }, NULL },
		{ "{{", 0, 1, { NULL }, "{{" },
		{ "end {{", 0, 1, { NULL }, "{{" },
		{ "{{\xc3\xa9}}", 0, 1, { NULL }, "{{" },
	};
	struct template_scan *sc = malloc(sizeof *sc);

	(void)state;
	assert_non_null(sc);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct scase *c = &cases[i];

		template_scan_text(c->text, sc);
		if (sc->count != c->count || sc->malformed != c->malformed)
			fail_msg("scan '%s': count %zu malformed %zu", c->text, sc->count, sc->malformed);
		for (size_t k = 0; k < c->count; k++)
			assert_string_equal(sc->vars[k].name, c->names[k]);
		if (c->bad != NULL)
			assert_string_equal(sc->bad_text, c->bad);
	}
	template_scan_text("x {{12}} y", sc);
	assert_int_equal(sc->vars[0].kind, TEMPLATE_VAR_NUMBER);
	assert_int_equal(sc->vars[0].number, 12);
	assert_int_equal(sc->vars[0].start, 2);
	assert_int_equal(sc->vars[0].end, 8);
	template_scan_text(NULL, sc);
	assert_int_equal(sc->count, 0);
	free(sc);
}

static void test_scan_too_many(void **state)
{
	char *text = malloc(TEMPLATE_VARS_MAX * 8 + 64);
	struct template_scan *sc = malloc(sizeof *sc);
	size_t o = 0;

	(void)state;
	assert_non_null(text);
	assert_non_null(sc);
	for (int i = 0; i <= TEMPLATE_VARS_MAX; i++)
		o += (size_t)snprintf(text + o, 16, "a{{%d}}", i % 900 + 1);
	template_scan_text(text, sc);
	assert_int_equal(sc->count, TEMPLATE_VARS_MAX);
	assert_true(sc->too_many);
	free(text);
	free(sc);
}

/* ---- render ---- */

#define POS_COMPS "[{'type':'HEADER','format':'TEXT','text':'Order {{1}}','example':{'header_text':['#1']}}," \
	"{'type':'BODY','text':'Hi {{1}}, order {{2}} ships {{1}}!'},{'type':'FOOTER','text':'Bye'}," \
	"{'type':'BUTTONS','buttons':[{'type':'QUICK_REPLY','text':'Ok'}," \
	"{'type':'URL','text':'Track','url':'https://t.example/o/{{1}}'}," \
	"{'type':'PHONE_NUMBER','text':'Call','phone_number':'+15550001'},{'type':'COPY_CODE','example':'X'}]}]"
#define POS_PARAMS "{'header':['#7'],'body':['Ana','#7'],'buttons':[{'index':1,'text':'abc'},{'index':3,'text':'SAVE5'}]}"

#define NAMED_COMPS "[{'type':'HEADER','format':'TEXT','text':'For {{who}}'}," \
	"{'type':'BODY','text':'Oi {{first_name}}, code {{body}} ok'}]"

#define SIMPLE "[{'type':'BODY','text':'Ol\xc3\xa1 {{1}}, seu pedido {{2}} foi enviado.'}]"

struct rcase {
	const char *desc;
	const char *comps;
	const char *format;
	const char *params;    /* NULL: no parameters */
	int rc;
	const char *expect;    /* render result (rc OK) */
	const char *fields[MAXF];
};

static const struct rcase rcases[] = {
	{ "positional short", SIMPLE, NULL, "['Maria','#1234']", TEMPLATE_OK,
	  "{'header':null,'header_format':null,'body':'Ol\xc3\xa1 Maria, seu pedido #1234 foi enviado.','footer':null,'buttons':[]}", { NULL } },
	{ "positional full", SIMPLE, "POSITIONAL", "{'body':['Maria','#1234']}", TEMPLATE_OK,
	  "{'header':null,'header_format':null,'body':'Ol\xc3\xa1 Maria, seu pedido #1234 foi enviado.','footer':null,'buttons':[]}", { NULL } },
	{ "missing", SIMPLE, NULL, "['Maria']", TEMPLATE_INVALID, NULL, { "parameters[1]" } },
	{ "missing all", SIMPLE, NULL, NULL, TEMPLATE_INVALID, NULL, { "parameters[0]", "parameters[1]" } },
	{ "extra", SIMPLE, NULL, "['a','b','c']", TEMPLATE_INVALID, NULL, { "parameters[2]" } },
	{ "full missing", SIMPLE, NULL, "{'body':['a']}", TEMPLATE_INVALID, NULL, { "parameters.body[1]" } },
	{ "value not string", SIMPLE, NULL, "['a',2]", TEMPLATE_BAD_TYPE, NULL, { "parameters[1]" } },
	{ "value empty", SIMPLE, NULL, "['a','']", TEMPLATE_INVALID, NULL, { "parameters[1]" } },
	{ "value newline", SIMPLE, NULL, "['a\\nb','c']", TEMPLATE_INVALID, NULL, { "parameters[0]" } },
	{ "value five spaces", SIMPLE, NULL, "['a     b','c']", TEMPLATE_INVALID, NULL, { "parameters[0]" } },
	{ "object for positional", SIMPLE, NULL, "{'a':'b'}", TEMPLATE_BAD_TYPE, NULL, { "parameters" } },
	{ "string params", SIMPLE, NULL, "'x'", TEMPLATE_BAD_TYPE, NULL, { "parameters" } },
	{ "no variables, no params", "[" BODY_OK "]", NULL, NULL, TEMPLATE_OK,
	  "{'header':null,'header_format':null,'body':'Hello there','footer':null,'buttons':[]}", { NULL } },
	{ "no variables, extra", "[" BODY_OK "]", NULL, "['x']", TEMPLATE_INVALID, NULL, { "parameters[0]" } },
	{ "all parts", POS_COMPS, NULL, POS_PARAMS, TEMPLATE_OK,
	  "{'header':'Order #7','header_format':'TEXT','body':'Hi Ana, order #7 ships Ana!','footer':'Bye','buttons':["
	  "{'type':'QUICK_REPLY','text':'Ok'},{'type':'URL','text':'Track','url':'https://t.example/o/abc'},"
	  "{'type':'PHONE_NUMBER','text':'Call','phone_number':'+15550001'},{'type':'COPY_CODE','text':'Copy offer code','code':'SAVE5'}]}", { NULL } },
	{ "short form misses header and buttons", POS_COMPS, NULL, "['Ana','#7']", TEMPLATE_INVALID, NULL,
	  { "parameters.header[0]", "parameters.buttons", "parameters.buttons" } },
	{ "button wrong index", POS_COMPS, NULL, "{'header':['#7'],'body':['Ana','#7'],'buttons':[{'index':0,'text':'abc'},"
	  "{'index':1,'text':'abc'},{'index':3,'text':'S'},{'index':3,'text':'T'}]}", TEMPLATE_INVALID, NULL,
	  { "parameters.buttons[0].index", "parameters.buttons[3].index" } },
	{ "button code too long", POS_COMPS, NULL, "{'header':['#7'],'body':['Ana','#7'],'buttons':[{'index':1,'text':'abc'},"
	  "{'index':3,'text':'ABCDEFGHIJKLMNOP'}]}", TEMPLATE_INVALID, NULL, { "parameters.buttons[1].text" } },
	{ "header extra", SIMPLE, NULL, "{'header':['x'],'body':['a','b']}", TEMPLATE_INVALID, NULL, { "parameters.header" } },
	{ "named short", NAMED_COMPS, "NAMED", "{'first_name':'Ana','body':'B1'}", TEMPLATE_INVALID, NULL,
	  { "parameters.header.who" } },
	{ "named full", NAMED_COMPS, "NAMED", "{'header':{'who':'you'},'body':{'first_name':'Ana','body':'B1'}}", TEMPLATE_OK,
	  "{'header':'For you','header_format':'TEXT','body':'Oi Ana, code B1 ok','footer':null,'buttons':[]}", { NULL } },
	{ "named missing and extra", NAMED_COMPS, "NAMED", "{'header':{'who':'you'},'body':{'first_name':'Ana','nick':'A'}}",
	  TEMPLATE_INVALID, NULL, { "parameters.body.body", "parameters.body.nick" } },
	{ "array for named", NAMED_COMPS, "NAMED", "{'header':{'who':'you'},'body':['Ana']}", TEMPLATE_BAD_TYPE, NULL,
	  { "parameters.body" } },
	{ "named template read as positional", NAMED_COMPS, NULL, "[]", TEMPLATE_INVALID, NULL,
	  { "components[0].text", "components[1].text" } },
	{ "media header preview", "[{'type':'HEADER','format':'IMAGE'}," BODY_OK "]", NULL, NULL, TEMPLATE_OK,
	  "{'header':null,'header_format':'IMAGE','body':'Hello there','footer':null,'buttons':[]}", { NULL } },
	{ "media header bad", "[{'type':'HEADER','format':'IMAGE'}," BODY_OK "]", NULL, "{'header':{'link':'ftp://x'}}",
	  TEMPLATE_INVALID, NULL, { "parameters.header" } },
	{ "no body", "[{'type':'FOOTER','text':'x'}]", NULL, NULL, TEMPLATE_INVALID, NULL, { "components" } },
	{ "components not array", "{}", NULL, NULL, TEMPLATE_BAD_TYPE, NULL, { "components" } },
	{ "malformed body", "[{'type':'BODY','text':'a {{x-y}} b'}]", NULL, NULL, TEMPLATE_INVALID, NULL, { "components[0].text" } },
};

static void test_render_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof rcases / sizeof rcases[0]; i++) {
		const struct rcase *c = &rcases[i];
		json_t *comps = q(c->comps), *params = c->params ? q(c->params) : NULL;
		json_t *out = (json_t *)0x1, *details = (json_t *)0x1;
		int rc = template_render(comps, c->format, params, &out, &details);

		if (rc != c->rc) {
			char *dump = details ? json_dumps(details, 0) : NULL;

			fail_msg("%s: rc %d want %d (%s)", c->desc, rc, c->rc, dump ? dump : "null");
		}
		assert_fields(c->desc, details, c->fields);
		if (c->rc == TEMPLATE_OK) {
			json_t *want = q(c->expect);

			if (!json_equal(out, want)) {
				char *dump = json_dumps(out, JSON_SORT_KEYS);

				fail_msg("%s: rendered %s", c->desc, dump ? dump : "null");
			}
			json_decref(want);
		} else {
			assert_null(out);
		}
		json_decref(out);
		json_decref(details);
		json_decref(comps);
		json_decref(params);
	}
}

/* The short and the full form give the same preview. */
static void test_render_forms_agree(void **state)
{
	json_t *comps = q(SIMPLE), *a = q("['x','y']"), *b = q("{'body':['x','y'],'buttons':[]}");
	json_t *ra = NULL, *rb = NULL, *d = NULL;

	(void)state;
	assert_int_equal(template_render(comps, NULL, a, &ra, &d), TEMPLATE_OK);
	assert_int_equal(template_render(comps, "POSITIONAL", b, &rb, &d), TEMPLATE_OK);
	assert_true(json_equal(ra, rb));
	assert_int_equal(template_render(comps, NULL, a, NULL, &d), TEMPLATE_ERROR);
	json_decref(ra);
	json_decref(rb);
	json_decref(comps);
	json_decref(a);
	json_decref(b);
}

/* ---- variables and send components ---- */

/* Call first, then check: the result pointers are read after the call. */
#define EXPECT_OK_JSON(desc, call, want_q) do { \
		int rc_ = (call); \
		expect_ok_json((desc), rc_, out, d, (want_q)); \
	} while (0)

static void expect_ok_json(const char *desc, int rc, json_t *got, json_t *details, const char *want_q)
{
	json_t *want = q(want_q);

	if (rc != TEMPLATE_OK) {
		char *dump = details ? json_dumps(details, 0) : NULL;

		fail_msg("%s: rc %d (%s)", desc, rc, dump ? dump : "null");
	}
	if (!json_equal(got, want)) {
		char *dump = json_dumps(got, JSON_SORT_KEYS);

		fail_msg("%s: got %s", desc, dump ? dump : "null");
	}
	json_decref(want);
	json_decref(got);
}

static void test_variables(void **state)
{
	json_t *c1 = q(POS_COMPS), *c2 = q(NAMED_COMPS), *c3 = q("[{'type':'BODY','text':'a {{2}} b {{1}} c {{2}}'}]");
	json_t *out = NULL, *d = NULL;

	(void)state;
	EXPECT_OK_JSON("positional", template_variables(c1, NULL, &out, &d),
		       "{'header':['1'],'header_format':'TEXT','body':['1','2'],'buttons':["
		       "{'index':1,'type':'URL','variables':['1']},{'index':3,'type':'COPY_CODE','variables':['coupon_code']}]}");
	EXPECT_OK_JSON("named", template_variables(c2, "NAMED", &out, &d),
		       "{'header':['who'],'header_format':'TEXT','body':['first_name','body'],'buttons':[]}");
	EXPECT_OK_JSON("ascending", template_variables(c3, "POSITIONAL", &out, &d),
		       "{'header':[],'header_format':null,'body':['1','2'],'buttons':[]}");
	assert_int_equal(template_variables(c2, NULL, &out, &d), TEMPLATE_INVALID);
	assert_null(out);
	assert_int_equal(json_array_size(d), 2); /* HEADER and BODY */
	json_decref(d);
	json_decref(c1);
	json_decref(c2);
	json_decref(c3);
}

static void test_send_components(void **state)
{
	json_t *c1 = q(POS_COMPS), *p1 = q(POS_PARAMS);
	json_t *c2 = q(NAMED_COMPS), *p2 = q("{'header':{'who':'you'},'body':{'first_name':'Ana','body':'B1'}}");
	json_t *c3 = q("[{'type':'HEADER','format':'DOCUMENT'}," BODY_OK "]");
	json_t *p3 = q("{'header':{'link':'https://f.example/a.pdf','filename':'a.pdf','junk':1}}");
	json_t *c4 = q("[" BODY_OK "]");
	json_t *out = NULL, *d = NULL;

	(void)state;
	EXPECT_OK_JSON("positional", template_send_components(c1, NULL, p1, &out, &d),
		"[{'type':'header','parameters':[{'type':'text','text':'#7'}]},"
		"{'type':'body','parameters':[{'type':'text','text':'Ana'},{'type':'text','text':'#7'}]},"
		"{'type':'button','sub_type':'url','index':'1','parameters':[{'type':'text','text':'abc'}]},"
		"{'type':'button','sub_type':'copy_code','index':'3','parameters':[{'type':'coupon_code','coupon_code':'SAVE5'}]}]");
	EXPECT_OK_JSON("named", template_send_components(c2, "NAMED", p2, &out, &d),
		"[{'type':'header','parameters':[{'type':'text','parameter_name':'who','text':'you'}]},"
		"{'type':'body','parameters':[{'type':'text','parameter_name':'first_name','text':'Ana'},"
		"{'type':'text','parameter_name':'body','text':'B1'}]}]");
	EXPECT_OK_JSON("document", template_send_components(c3, NULL, p3, &out, &d),
		"[{'type':'header','parameters':[{'type':'document','document':"
		"{'link':'https://f.example/a.pdf','filename':'a.pdf'}}]}]");
	EXPECT_OK_JSON("no variables", template_send_components(c4, NULL, NULL, &out, &d), "[]");

	/* a media header is required when sending, not for preview */
	assert_int_equal(template_send_components(c3, NULL, NULL, &out, &d), TEMPLATE_INVALID);
	assert_null(out);
	assert_string_equal(json_string_value(json_object_get(json_array_get(d, 0), "field")),
			    "parameters.header");
	json_decref(d);
	assert_int_equal(template_send_components(c1, NULL, c4, &out, &d), TEMPLATE_BAD_TYPE);
	assert_null(out);
	json_decref(d);

	json_decref(c1);
	json_decref(p1);
	json_decref(c2);
	json_decref(p2);
	json_decref(c3);
	json_decref(p3);
	json_decref(c4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate_table),
		cmocka_unit_test(test_validate_lengths),
		cmocka_unit_test(test_validate_button_count),
		cmocka_unit_test(test_meta_samples_pass),
		cmocka_unit_test(test_validate_args),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_scan_too_many),
		cmocka_unit_test(test_render_table),
		cmocka_unit_test(test_render_forms_agree),
		cmocka_unit_test(test_variables),
		cmocka_unit_test(test_send_components),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
