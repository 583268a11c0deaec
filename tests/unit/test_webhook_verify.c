/* Unit tests for meta/webhook_verify: every shared Meta webhook sample
 * signed over its exact bytes with "test-app-secret" (signatures computed
 * by the openssl CLI when this table was generated, an oracle independent
 * of the code under test), then the header parser's strictness, wrong
 * secrets, altered and re-serialised bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meta/webhook_verify.h"

#define SECRET "test-app-secret"
#define SECRET_LEN (sizeof SECRET - 1)

/* Generated from /work/shared/meta by openssl dgst -sha256 -hmac test-app-secret. */
struct sample { const char *name; const char *body; size_t len; const char *sig; };
static const struct sample samples[] = {
	{ "batched_entries.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\""
	"id\":\"wamid.BATCH1\",\"status\":\"sent\",\"timestamp\":\"1764410300\""
	",\"recipient_id\":\"5511987654321\",\"pricing\":{\"billable\":true,\""
	"pricing_model\":\"PMP\",\"type\":\"regular\",\"category\":\"marketing"
	"\"}},{\"id\":\"wamid.BATCH2\",\"status\":\"sent\",\"timestamp\":\"176"
	"4410300\",\"recipient_id\":\"5511987654321\",\"pricing\":{\"billable\""
	":true,\"pricing_model\":\"PMP\",\"type\":\"regular\",\"category\":\"m"
	"arketing\"}}]}},{\"field\":\"messages\",\"value\":{\"messaging_produc"
	"t\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550783881"
	"\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\"profile\""
	":{\"name\":\"Ana\"},\"wa_id\":\"5511911112222\"}],\"messages\":[{\"fr"
	"om\":\"5511911112222\",\"id\":\"wamid.BATCH3\",\"timestamp\":\"176441"
	"0500\",\"type\":\"text\",\"text\":{\"body\":\"oi\"}}]}}]}]}",
	  944, "sha256=bb34a5c8515104af5a56c3bfd7d768b3dc5397dbf5f874f8408cfb9c317e171d" },
	{ "inbound_button_reply.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\""
	"profile\":{\"name\":\"Maria Souza\"},\"wa_id\":\"5511987654321\"}],\""
	"messages\":[{\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.HBg"
	"NNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA=\"},\"from\":\"5"
	"511987654321\",\"id\":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMDFGRkE"
	"2MkY1QzE3MjY4NUQ0AA==\",\"timestamp\":\"1764410200\",\"type\":\"inter"
	"active\",\"interactive\":{\"type\":\"button_reply\",\"button_reply\":"
	"{\"id\":\"confirm_yes\",\"title\":\"Sim, confirmar\"}}}]}}]}]}",
	  665, "sha256=8c7a9811693b5c0fbff7e94aca8c28135f31be8314c9590a99a29204578daf91" },
	{ "inbound_image.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\""
	"profile\":{\"name\":\"Jo\\u00e3o\"},\"wa_id\":\"5521999990000\"}],\"m"
	"essages\":[{\"from\":\"5521999990000\",\"id\":\"wamid.HBgNNTUyMTk5OTk"
	"5MDAwMBUCABIYFjNFQjBBQkNERUYwMTIzNDU2Nzg5AA==\",\"timestamp\":\"17644"
	"10100\",\"type\":\"image\",\"image\":{\"caption\":\"comprovante\",\"m"
	"ime_type\":\"image/jpeg\",\"sha256\":\"Hn5g2yK0Q8r1ZbW4sX3v7m9pQ2eT6y"
	"U8iO0pA1sD2fG=\",\"id\":\"1479537139650973\"}}]}}]}]}",
	  594, "sha256=6e2f3bb8ce59c528bef50419cc4ddd15a5ac809942fa4a8d698f93125ac0472f" },
	{ "inbound_text.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\""
	"profile\":{\"name\":\"Maria Souza\"},\"wa_id\":\"5511987654321\"}],\""
	"messages\":[{\"from\":\"5511987654321\",\"id\":\"wamid.HBgNNTUxMTk4Nz"
	"Y1NDMyMRUCABIYFjNFQjBDNzE2QTg0RDFGNjRGQTVFAA==\",\"timestamp\":\"1764"
	"410000\",\"type\":\"text\",\"text\":{\"body\":\"Ol\\u00e1! Quero sabe"
	"r do meu pedido \\ud83d\\ude42\"}}]}}]}]}",
	  523, "sha256=eede25391b646be805cf1e6b2cd6ae400807dee1b0947d33e0250e1b737e9507" },
	{ "phone_number_quality_update.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"phone_number_quality_update\",\""
	"value\":{\"display_phone_number\":\"15550783881\",\"event\":\"THROUGH"
	"PUT_UPGRADE\",\"max_daily_conversations_per_business\":\"TIER_UNLIMIT"
	"ED\"}}]}]}",
	  257, "sha256=afd5fdefc3f02b06eba188380831b5680d154ce138d229de37222b98ae9e4e6e" },
	{ "status_delivered.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\""
	"id\":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA="
	"\",\"status\":\"delivered\",\"timestamp\":\"1764410302\",\"recipient_"
	"id\":\"5511987654321\",\"pricing\":{\"billable\":true,\"pricing_model"
	"\":\"PMP\",\"type\":\"regular\",\"category\":\"marketing\"}}]}}]}]}",
	  485, "sha256=fd41e0b8beac5ef65009c908587a65c6acdc62c89a4e0449f53faa86779de682" },
	{ "status_delivered_free_service.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\""
	"id\":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkFBQkJDQ0RERUVGRjAwMTEA\",\""
	"status\":\"delivered\",\"timestamp\":\"1764410400\",\"recipient_id\":"
	"\"5511987654321\",\"pricing\":{\"billable\":false,\"pricing_model\":\""
	"PMP\",\"type\":\"free_customer_service\",\"category\":\"service\"}}]}"
	"}]}]}",
	  494, "sha256=04669e095ee8f8943a2cfacfe0192eeaeb57d44afe9bdd2c6ae7e0ce404d749d" },
	{ "status_failed.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\""
	"id\":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA="
	"\",\"status\":\"failed\",\"timestamp\":\"1764410305\",\"recipient_id\""
	":\"5511987654321\",\"errors\":[{\"code\":131026,\"title\":\"Message u"
	"ndeliverable\",\"message\":\"Message undeliverable\",\"error_data\":{"
	"\"details\":\"Message Undeliverable.\"}}]}]}}]}]}",
	  535, "sha256=39da79fd86b34451afc5bad37760ad8866145f302721f49a4dafcb1b04fe5158" },
	{ "status_read.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\""
	"id\":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA="
	"\",\"status\":\"read\",\"timestamp\":\"1764410360\",\"recipient_id\":"
	"\"5511987654321\"}]}}]}]}",
	  390, "sha256=fa841cb06b08dc34a69bf6b9af9fe7a1916588fe549e22724fa83c815691fece" },
	{ "status_sent.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\""
	"id\":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA="
	"\",\"status\":\"sent\",\"timestamp\":\"1764410300\",\"recipient_id\":"
	"\"5511987654321\",\"pricing\":{\"billable\":true,\"pricing_model\":\""
	"PMP\",\"type\":\"regular\",\"category\":\"marketing\"}}]}}]}]}",
	  480, "sha256=adca433c0487fef022bc0bcf1aaf57673e4d94132879621832612788f997600b" },
	{ "template_category_update.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"template_category_update\",\"va"
	"lue\":{\"message_template_id\":1689556908129832,\"message_template_na"
	"me\":\"order_update\",\"message_template_language\":\"pt_BR\",\"previ"
	"ous_category\":\"UTILITY\",\"new_category\":\"MARKETING\",\"correct_c"
	"ategory\":\"MARKETING\"}}]}]}",
	  334, "sha256=ce344139fff33fdd8f20b91699b84d435cd230bf6e7d97f59768b710933d1ee5" },
	{ "template_quality_update.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"message_template_quality_update"
	"\",\"value\":{\"previous_quality_score\":\"GREEN\",\"new_quality_scor"
	"e\":\"YELLOW\",\"message_template_id\":1689556908129832,\"message_tem"
	"plate_name\":\"order_update\",\"message_template_language\":\"pt_BR\""
	"}}]}]}",
	  315, "sha256=723f14e4d3e55cc2766fcc12c53c3ca657f18830ce79ae0d431ce83ab5bf5dfe" },
	{ "template_status_approved.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"message_template_status_update\""
	",\"value\":{\"event\":\"APPROVED\",\"message_template_id\":1689556908"
	"129832,\"message_template_name\":\"order_update\",\"message_template_"
	"language\":\"pt_BR\",\"reason\":\"NONE\"}}]}]}",
	  287, "sha256=1d7c30c6d0f4c3cd93a5d52621233c92f2810c7cf3987cf5f753dc94875249ca" },
	{ "template_status_rejected.json",
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"message_template_status_update\""
	",\"value\":{\"event\":\"REJECTED\",\"message_template_id\":1689556908"
	"129833,\"message_template_name\":\"promo_black_friday\",\"message_tem"
	"plate_language\":\"pt_BR\",\"reason\":\"INVALID_FORMAT\",\"rejection_"
	"info\":{\"reason\":\"INVALID_FORMAT\",\"recommendation\":\"Adjacent p"
	"arameters such as {{1}}{{2}} are not allowed.\"}}}]}]}",
	  423, "sha256=cdb29bd37d8ea9f786b599cd59ffa55e025f91fa320e7023678c434a2a2e0392" },
};
/* inbound_text.json re-serialised (non-ASCII as UTF-8): other bytes. */
static const char reserialised[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290"
	"129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messagi"
	"ng_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15"
	"550783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\""
	"profile\":{\"name\":\"Maria Souza\"},\"wa_id\":\"5511987654321\"}],\""
	"messages\":[{\"from\":\"5511987654321\",\"id\":\"wamid.HBgNNTUxMTk4Nz"
	"Y1NDMyMRUCABIYFjNFQjBDNzE2QTg0RDFGNjRGQTVFAA==\",\"timestamp\":\"1764"
	"410000\",\"type\":\"text\",\"text\":{\"body\":\"Ol\xc3"
	"\xa1"
	"! Q"
	"uero saber do meu pedido \xf0"
	"\x9f"
	"\x99"
	"\x82"
	"\"}}]}}]}]}";

#define NSAMPLES (sizeof samples / sizeof samples[0])

static enum webhook_sig verify(const char *secret, const void *body, size_t len,
			       const char *header)
{
	return webhook_sig_verify(secret, secret != NULL ? strlen(secret) : 0, body, len, header);
}

static void test_samples_valid(void **state)
{
	(void)state;
	assert_true(NSAMPLES >= 10);
	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *s = &samples[i];
		assert_int_equal(strlen(s->body), s->len);
		if (verify(SECRET, s->body, s->len, s->sig) != WEBHOOK_SIG_OK)
			fail_msg("%s: valid signature refused", s->name);
	}
}

static void test_samples_uppercase_hex(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		char up[80];
		snprintf(up, sizeof up, "%s", samples[i].sig);
		for (char *p = up + 7; *p != '\0'; p++)
			if (*p >= 'a' && *p <= 'f')
				*p = (char)(*p - 'a' + 'A');
		assert_int_equal(verify(SECRET, samples[i].body, samples[i].len, up), WEBHOOK_SIG_OK);
	}
}

static void test_samples_wrong_secret(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *s = &samples[i];
		assert_int_equal(verify("test-app-secreT", s->body, s->len, s->sig),
				 WEBHOOK_SIG_MISMATCH);
		assert_int_equal(verify("other", s->body, s->len, s->sig), WEBHOOK_SIG_MISMATCH);
	}
}

/* Every single-byte change anywhere in a body breaks the signature. */
static void test_one_byte_altered(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		const struct sample *s = &samples[i];
		char *copy = malloc(s->len + 1);
		assert_non_null(copy);
		memcpy(copy, s->body, s->len + 1);
		size_t positions[] = { 0, s->len / 2, s->len - 1 };
		for (size_t k = 0; k < 3; k++) {
			copy[positions[k]] ^= 0x01;
			assert_int_equal(verify(SECRET, copy, s->len, s->sig), WEBHOOK_SIG_MISMATCH);
			copy[positions[k]] ^= 0x01;
		}
		assert_int_equal(verify(SECRET, copy, s->len, s->sig), WEBHOOK_SIG_OK);
		/* one byte more or less */
		assert_int_equal(verify(SECRET, copy, s->len - 1, s->sig), WEBHOOK_SIG_MISMATCH);
		free(copy);
	}
}

static const struct sample *find_sample(const char *name)
{
	for (size_t i = 0; i < NSAMPLES; i++)
		if (strcmp(samples[i].name, name) == 0)
			return &samples[i];
	fail_msg("no sample %s", name);
	return NULL;
}

/* The same JSON document re-serialised (non-ASCII as raw UTF-8, which is
 * what a parse + dump does) is other bytes: Meta's signature must fail. */
static void test_reserialised_refused(void **state)
{
	(void)state;
	const struct sample *s = find_sample("inbound_text.json");
	assert_non_null(strstr(s->body, "\\ud83d")); /* escaped as Meta sends */
	assert_int_equal(verify(SECRET, s->body, s->len, s->sig), WEBHOOK_SIG_OK);
	assert_int_equal(verify(SECRET, reserialised, strlen(reserialised), s->sig),
			 WEBHOOK_SIG_MISMATCH);
}

struct header_case {
	const char *header;
	enum webhook_sig want;
};

static void test_header_parsing(void **state)
{
	(void)state;
	const struct sample *s = find_sample("status_sent.json");
	const char *hex = s->sig + 7;
	char buf[160];
	static const char nonhex[] =
		"sha256=g000000000000000000000000000000000000000000000000000000000000000";
	const struct header_case fixed[] = {
		{ NULL, WEBHOOK_SIG_MISSING },
		{ "", WEBHOOK_SIG_MISSING },
		{ "sha256", WEBHOOK_SIG_MALFORMED },
		{ "sha256=", WEBHOOK_SIG_MALFORMED },
		{ nonhex, WEBHOOK_SIG_MALFORMED },
		{ "garbage", WEBHOOK_SIG_MALFORMED },
	};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		assert_int_equal(verify(SECRET, s->body, s->len, fixed[i].header), fixed[i].want);

	/* the right digest wrapped in ways that must all be refused */
	const char *const wraps[][2] = {
		{ "sha1=", "" },    { "SHA256=", "" }, { " sha256=", "" },
		{ "sha256= ", "" }, { "sha256=", " " }, { "sha256=", "\n" },
		{ "sha256=", "0" }, { "sha256=", ",x" }, { "", "" },
	};
	for (size_t i = 0; i < sizeof wraps / sizeof wraps[0]; i++) {
		snprintf(buf, sizeof buf, "%s%s%s", wraps[i][0], hex, wraps[i][1]);
		if (verify(SECRET, s->body, s->len, buf) != WEBHOOK_SIG_MALFORMED)
			fail_msg("accepted \"%s\"", buf);
	}
	/* 63 hex digits */
	snprintf(buf, sizeof buf, "sha256=%.63s", hex);
	assert_int_equal(verify(SECRET, s->body, s->len, buf), WEBHOOK_SIG_MALFORMED);
	/* a NUL inside stops the string: too short */
	snprintf(buf, sizeof buf, "sha256=%s", hex);
	buf[40] = '\0';
	assert_int_equal(verify(SECRET, s->body, s->len, buf), WEBHOOK_SIG_MALFORMED);
	/* well-formed, wrong digest (last digit changed) */
	snprintf(buf, sizeof buf, "sha256=%s", hex);
	buf[strlen(buf) - 1] = buf[strlen(buf) - 1] == '0' ? '1' : '0';
	assert_int_equal(verify(SECRET, s->body, s->len, buf), WEBHOOK_SIG_MISMATCH);
}

static void test_parse_digest(void **state)
{
	(void)state;
	uint8_t d[32];
	assert_int_equal(webhook_sig_parse("sha256=00ff10Ab"
					   "000000000000000000000000000000000000000000000000"
					   "000000fE", d), WEBHOOK_SIG_OK);
	assert_int_equal(d[0], 0x00);
	assert_int_equal(d[1], 0xff);
	assert_int_equal(d[2], 0x10);
	assert_int_equal(d[3], 0xab);
	assert_int_equal(d[31], 0xfe);
}

static void test_no_secret(void **state)
{
	(void)state;
	const struct sample *s = find_sample("status_sent.json");
	assert_int_equal(verify(NULL, s->body, s->len, s->sig), WEBHOOK_SIG_ERROR);
	assert_int_equal(verify("", s->body, s->len, s->sig), WEBHOOK_SIG_ERROR);
	/* a missing header is reported as missing even without a secret */
	assert_int_equal(verify(NULL, s->body, s->len, NULL), WEBHOOK_SIG_MISSING);
	assert_string_equal(webhook_sig_name(WEBHOOK_SIG_MISMATCH), "mismatch");
	assert_string_equal(webhook_sig_name(WEBHOOK_SIG_MALFORMED), "malformed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples_valid),
		cmocka_unit_test(test_samples_uppercase_hex),
		cmocka_unit_test(test_samples_wrong_secret),
		cmocka_unit_test(test_one_byte_altered),
		cmocka_unit_test(test_reserialised_refused),
		cmocka_unit_test(test_header_parsing),
		cmocka_unit_test(test_parse_digest),
		cmocka_unit_test(test_no_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
