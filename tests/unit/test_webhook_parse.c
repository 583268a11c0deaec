/* Unit tests for meta/webhook_parse: every shared Meta sample (and a few
 * extra seeds: every inbound message type, user_preferences, an unknown
 * field) parsed into the expected typed events, table-driven; then
 * malformed and oversized bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meta/webhook_parse.h"

/* The shared Meta samples (../shared/meta) and extra seeds, as sent. */
static const char S_BATCHED_ENTRIES[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\"id\""
	":\"wamid.BATCH1\",\"status\":\"sent\",\"timestamp\":\"1764410300\",\"r"
	"ecipient_id\":\"5511987654321\",\"pricing\":{\"billable\":true,\"prici"
	"ng_model\":\"PMP\",\"type\":\"regular\",\"category\":\"marketing\"}},{"
	"\"id\":\"wamid.BATCH2\",\"status\":\"sent\",\"timestamp\":\"1764410300"
	"\",\"recipient_id\":\"5511987654321\",\"pricing\":{\"billable\":true,\""
	"pricing_model\":\"PMP\",\"type\":\"regular\",\"category\":\"marketing\""
	"}}]}},{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whats"
	"app\",\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_n"
	"umber_id\":\"106540352242922\"},\"contacts\":[{\"profile\":{\"name\":\""
	"Ana\"},\"wa_id\":\"5511911112222\"}],\"messages\":[{\"from\":\"5511911"
	"112222\",\"id\":\"wamid.BATCH3\",\"timestamp\":\"1764410500\",\"type\""
	":\"text\",\"text\":{\"body\":\"oi\"}}]}}]}]}";
static const char S_INBOUND_BUTTON_REPLY[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\"pro"
	"file\":{\"name\":\"Maria Souza\"},\"wa_id\":\"5511987654321\"}],\"mess"
	"ages\":[{\"context\":{\"from\":\"15550783881\",\"id\":\"wamid.HBgNNTUx"
	"MTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA=\"},\"from\":\"5511987"
	"654321\",\"id\":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMDFGRkE2MkY1Qz"
	"E3MjY4NUQ0AA==\",\"timestamp\":\"1764410200\",\"type\":\"interactive\""
	",\"interactive\":{\"type\":\"button_reply\",\"button_reply\":{\"id\":\""
	"confirm_yes\",\"title\":\"Sim, confirmar\"}}}]}}]}]}";
static const char S_INBOUND_IMAGE[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\"pro"
	"file\":{\"name\":\"Jo\\u00e3o\"},\"wa_id\":\"5521999990000\"}],\"messa"
	"ges\":[{\"from\":\"5521999990000\",\"id\":\"wamid.HBgNNTUyMTk5OTk5MDAw"
	"MBUCABIYFjNFQjBBQkNERUYwMTIzNDU2Nzg5AA==\",\"timestamp\":\"1764410100\""
	",\"type\":\"image\",\"image\":{\"caption\":\"comprovante\",\"mime_type"
	"\":\"image/jpeg\",\"sha256\":\"Hn5g2yK0Q8r1ZbW4sX3v7m9pQ2eT6yU8iO0pA1s"
	"D2fG=\",\"id\":\"1479537139650973\"}}]}}]}]}";
static const char S_INBOUND_MIXED[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\"pro"
	"file\":{\"name\":\"Ana\"},\"wa_id\":\"5511911112222\",\"user_id\":\"BR"
	".123abc\"}],\"messages\":[{\"from\":\"5511911112222\",\"id\":\"wamid.R"
	"1\",\"timestamp\":\"1764410600\",\"type\":\"reaction\",\"reaction\":{\""
	"message_id\":\"wamid.OUT1\",\"emoji\":\"\\ud83d\\udc4d\"}},{\"from\":\""
	"5511911112222\",\"id\":\"wamid.L1\",\"timestamp\":\"1764410601\",\"typ"
	"e\":\"location\",\"location\":{\"latitude\":-23.55,\"longitude\":-46.6"
	"3,\"name\":\"Loja\",\"address\":\"Av Paulista\"}},{\"from\":\"55119111"
	"12222\",\"id\":\"wamid.C1\",\"timestamp\":\"1764410602\",\"type\":\"co"
	"ntacts\",\"contacts\":[{\"name\":{\"formatted_name\":\"Bob\"},\"phones"
	"\":[{\"phone\":\"+1 555\"}]}]},{\"from\":\"5511911112222\",\"id\":\"wa"
	"mid.D1\",\"timestamp\":\"1764410603\",\"type\":\"document\",\"document"
	"\":{\"filename\":\"nota.pdf\",\"mime_type\":\"application/pdf\",\"sha2"
	"56\":\"abc=\",\"id\":\"999\"}},{\"from\":\"5511911112222\",\"id\":\"wa"
	"mid.LR1\",\"timestamp\":\"1764410604\",\"type\":\"interactive\",\"inte"
	"ractive\":{\"type\":\"list_reply\",\"list_reply\":{\"id\":\"row_2\",\""
	"title\":\"Segunda\",\"description\":\"d\"}}},{\"from\":\"5511911112222"
	"\",\"id\":\"wamid.B1\",\"timestamp\":\"1764410605\",\"type\":\"button\""
	",\"button\":{\"text\":\"Parar\",\"payload\":\"STOP_PROMO\"}},{\"from\""
	":\"5511911112222\",\"id\":\"wamid.U1\",\"timestamp\":\"1764410606\",\""
	"type\":\"unsupported\",\"errors\":[{\"code\":131051,\"title\":\"Messag"
	"e type unknown\"}]},{\"from\":\"5511911112222\",\"id\":\"wamid.X1\",\""
	"timestamp\":\"1764410607\",\"type\":\"hologram\",\"hologram\":{\"k\":1"
	"}},{\"from\":\"5511911112222\",\"id\":\"wamid.O1\",\"timestamp\":\"176"
	"4410608\",\"type\":\"order\",\"order\":{\"catalog_id\":\"1\",\"product"
	"_items\":[]}}]}}]}]}";
static const char S_INBOUND_TEXT[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\":[{\"pro"
	"file\":{\"name\":\"Maria Souza\"},\"wa_id\":\"5511987654321\"}],\"mess"
	"ages\":[{\"from\":\"5511987654321\",\"id\":\"wamid.HBgNNTUxMTk4NzY1NDM"
	"yMRUCABIYFjNFQjBDNzE2QTg0RDFGNjRGQTVFAA==\",\"timestamp\":\"1764410000"
	"\",\"type\":\"text\",\"text\":{\"body\":\"Ol\\u00e1! Quero saber do me"
	"u pedido \\ud83d\\ude42\"}}]}}]}]}";
static const char S_PHONE_NUMBER_QUALITY_UPDATE[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"phone_number_quality_update\",\"v"
	"alue\":{\"display_phone_number\":\"15550783881\",\"event\":\"THROUGHPU"
	"T_UPGRADE\",\"max_daily_conversations_per_business\":\"TIER_UNLIMITED\""
	"}}]}]}";
static const char S_STATUS_DELIVERED[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\"id\""
	":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA=\",\""
	"status\":\"delivered\",\"timestamp\":\"1764410302\",\"recipient_id\":\""
	"5511987654321\",\"pricing\":{\"billable\":true,\"pricing_model\":\"PMP"
	"\",\"type\":\"regular\",\"category\":\"marketing\"}}]}}]}]}";
static const char S_STATUS_DELIVERED_FREE_SERVICE[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\"id\""
	":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEkFBQkJDQ0RERUVGRjAwMTEA\",\"stat"
	"us\":\"delivered\",\"timestamp\":\"1764410400\",\"recipient_id\":\"551"
	"1987654321\",\"pricing\":{\"billable\":false,\"pricing_model\":\"PMP\""
	",\"type\":\"free_customer_service\",\"category\":\"service\"}}]}}]}]}";
static const char S_STATUS_FAILED[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\"id\""
	":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA=\",\""
	"status\":\"failed\",\"timestamp\":\"1764410305\",\"recipient_id\":\"55"
	"11987654321\",\"errors\":[{\"code\":131026,\"title\":\"Message undeliv"
	"erable\",\"message\":\"Message undeliverable\",\"error_data\":{\"detai"
	"ls\":\"Message Undeliverable.\"}}]}]}}]}]}";
static const char S_STATUS_READ[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\"id\""
	":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA=\",\""
	"status\":\"read\",\"timestamp\":\"1764410360\",\"recipient_id\":\"5511"
	"987654321\"}]}}]}]}";
static const char S_STATUS_SENT[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"783881\",\"phone_number_id\":\"106540352242922\"},\"statuses\":[{\"id\""
	":\"wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA=\",\""
	"status\":\"sent\",\"timestamp\":\"1764410300\",\"recipient_id\":\"5511"
	"987654321\",\"pricing\":{\"billable\":true,\"pricing_model\":\"PMP\",\""
	"type\":\"regular\",\"category\":\"marketing\"}}]}}]}]}";
static const char S_TEMPLATE_CATEGORY_UPDATE[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"template_category_update\",\"valu"
	"e\":{\"message_template_id\":1689556908129832,\"message_template_name\""
	":\"order_update\",\"message_template_language\":\"pt_BR\",\"previous_c"
	"ategory\":\"UTILITY\",\"new_category\":\"MARKETING\",\"correct_categor"
	"y\":\"MARKETING\"}}]}]}";
static const char S_TEMPLATE_QUALITY_UPDATE[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"message_template_quality_update\""
	",\"value\":{\"previous_quality_score\":\"GREEN\",\"new_quality_score\""
	":\"YELLOW\",\"message_template_id\":1689556908129832,\"message_templat"
	"e_name\":\"order_update\",\"message_template_language\":\"pt_BR\"}}]}]"
	"}";
static const char S_TEMPLATE_STATUS_APPROVED[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"message_template_status_update\","
	"\"value\":{\"event\":\"APPROVED\",\"message_template_id\":168955690812"
	"9832,\"message_template_name\":\"order_update\",\"message_template_lan"
	"guage\":\"pt_BR\",\"reason\":\"NONE\"}}]}]}";
static const char S_TEMPLATE_STATUS_REJECTED[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"message_template_status_update\","
	"\"value\":{\"event\":\"REJECTED\",\"message_template_id\":168955690812"
	"9833,\"message_template_name\":\"promo_black_friday\",\"message_templa"
	"te_language\":\"pt_BR\",\"reason\":\"INVALID_FORMAT\",\"rejection_info"
	"\":{\"reason\":\"INVALID_FORMAT\",\"recommendation\":\"Adjacent parame"
	"ters such as {{1}}{{2}} are not allowed.\"}}}]}]}";
static const char S_UNKNOWN_FIELD[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"account_alerts\",\"value\":{\"ent"
	"ity_type\":\"WABA\",\"alert_info\":{\"alert_severity\":\"INFORMATIONAL"
	"\"}}}]}]}";
static const char S_UNKNOWN_NUMBER[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging"
	"_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550"
	"000000\",\"phone_number_id\":\"999999999\"},\"contacts\":[{\"profile\""
	":{\"name\":\"X\"},\"wa_id\":\"5511900000000\"}],\"messages\":[{\"from\""
	":\"5511900000000\",\"id\":\"wamid.UNKNOWNNUM\",\"timestamp\":\"1764410"
	"000\",\"type\":\"text\",\"text\":{\"body\":\"hi\"}}]}}]}]}";
static const char S_USER_PREFERENCES_STOP[] =
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1022901"
	"29340398\",\"changes\":[{\"field\":\"user_preferences\",\"value\":{\"m"
	"essaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\""
	":\"15550783881\",\"phone_number_id\":\"106540352242922\"},\"contacts\""
	":[{\"profile\":{\"name\":\"Ana\"},\"wa_id\":\"5511911112222\"}],\"user"
	"_preferences\":[{\"wa_id\":\"5511911112222\",\"detail\":\"User request"
	"ed to stop marketing messages\",\"category\":\"marketing_messages\",\""
	"value\":\"stop\",\"timestamp\":1764410700}]}}]}]}";

#define PNID "106540352242922"
#define WABA "102290129340398"
#define S(x) x, sizeof(x) - 1

/* What the first change of a sample must hold; NULL / 0 = not checked. */
struct expect {
	const char *name;
	const char *body;
	size_t len;
	size_t nchanges;
	enum wh_change_kind kind;
	const char *field;
	const char *phone_number_id;
	size_t nmessages, nstatuses, ncontacts;
	/* first message */
	enum wh_msg_type mtype;
	const char *wamid;
	const char *from;
	const char *text;
	int64_t ts_us;
	const char *media_id, *mime_type, *sha256;
	const char *reply_kind, *reply_id, *context_id;
	/* first contact */
	const char *contact_name, *contact_wa_id;
	/* first status */
	const char *status_id;
	enum wh_status_kind skind;
	int64_t status_ts_us;
	int64_t error_code;
	const char *error_message;
	const char *pricing_type, *pricing_category;
	int billable; /* -1 absent, 0, 1; 9 = not checked */
	/* template and account events */
	const char *tmpl_id, *tmpl_name, *tmpl_language, *tmpl_event, *tmpl_reason;
	const char *new_quality, *new_category, *recommendation;
	const char *phone_event, *limit_tier;
};

#define WAMID_OUT "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA="

static const struct expect CASES[] = {
	{ .name = "inbound_text", S(S_INBOUND_TEXT), .nchanges = 1, .kind = WH_CHANGE_MESSAGES,
	  .field = "messages", .phone_number_id = PNID, .nmessages = 1, .ncontacts = 1,
	  .mtype = WH_MSG_TEXT,
	  .wamid = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDNzE2QTg0RDFGNjRGQTVFAA==",
	  .from = "5511987654321",
	  .text = "Ol\xc3\xa1! Quero saber do meu pedido \xf0\x9f\x99\x82",
	  .ts_us = 1764410000000000LL, .contact_name = "Maria Souza",
	  .contact_wa_id = "5511987654321", .billable = 9 },
	{ .name = "inbound_image", S(S_INBOUND_IMAGE), .nchanges = 1, .kind = WH_CHANGE_MESSAGES,
	  .phone_number_id = PNID, .nmessages = 1, .ncontacts = 1, .mtype = WH_MSG_IMAGE,
	  .text = "comprovante", .ts_us = 1764410100000000LL, .media_id = "1479537139650973",
	  .mime_type = "image/jpeg", .sha256 = "Hn5g2yK0Q8r1ZbW4sX3v7m9pQ2eT6yU8iO0pA1sD2fG=",
	  .contact_name = "Jo\xc3\xa3o", .contact_wa_id = "5521999990000", .billable = 9 },
	{ .name = "inbound_button_reply", S(S_INBOUND_BUTTON_REPLY), .nchanges = 1,
	  .kind = WH_CHANGE_MESSAGES, .nmessages = 1, .ncontacts = 1, .mtype = WH_MSG_INTERACTIVE,
	  .text = "Sim, confirmar", .reply_kind = "button_reply", .reply_id = "confirm_yes",
	  .context_id = WAMID_OUT, .billable = 9 },
	{ .name = "status_sent", S(S_STATUS_SENT), .nchanges = 1, .kind = WH_CHANGE_MESSAGES,
	  .phone_number_id = PNID, .nstatuses = 1, .status_id = WAMID_OUT,
	  .skind = WH_STATUS_SENT, .status_ts_us = 1764410300000000LL,
	  .pricing_type = "regular", .pricing_category = "marketing", .billable = 1 },
	{ .name = "status_delivered", S(S_STATUS_DELIVERED), .nchanges = 1, .nstatuses = 1,
	  .status_id = WAMID_OUT, .skind = WH_STATUS_DELIVERED,
	  .status_ts_us = 1764410302000000LL, .pricing_type = "regular", .billable = 1 },
	{ .name = "status_delivered_free_service", S(S_STATUS_DELIVERED_FREE_SERVICE),
	  .nchanges = 1, .nstatuses = 1, .skind = WH_STATUS_DELIVERED,
	  .pricing_type = "free_customer_service", .pricing_category = "service", .billable = 0 },
	{ .name = "status_read", S(S_STATUS_READ), .nchanges = 1, .nstatuses = 1,
	  .status_id = WAMID_OUT, .skind = WH_STATUS_READ, .status_ts_us = 1764410360000000LL,
	  .billable = -1 },
	{ .name = "status_failed", S(S_STATUS_FAILED), .nchanges = 1, .nstatuses = 1,
	  .skind = WH_STATUS_FAILED, .error_code = 131026,
	  .error_message = "Message undeliverable", .billable = -1 },
	{ .name = "batched_entries", S(S_BATCHED_ENTRIES), .nchanges = 2,
	  .kind = WH_CHANGE_MESSAGES, .nstatuses = 2, .status_id = "wamid.BATCH1",
	  .skind = WH_STATUS_SENT, .billable = 1 },
	{ .name = "template_status_approved", S(S_TEMPLATE_STATUS_APPROVED), .nchanges = 1,
	  .kind = WH_CHANGE_TEMPLATE_STATUS, .field = "message_template_status_update",
	  .tmpl_id = "1689556908129832", .tmpl_name = "order_update", .tmpl_language = "pt_BR",
	  .tmpl_event = "APPROVED", .tmpl_reason = "NONE", .billable = 9 },
	{ .name = "template_status_rejected", S(S_TEMPLATE_STATUS_REJECTED), .nchanges = 1,
	  .kind = WH_CHANGE_TEMPLATE_STATUS, .tmpl_id = "1689556908129833",
	  .tmpl_name = "promo_black_friday", .tmpl_event = "REJECTED",
	  .tmpl_reason = "INVALID_FORMAT",
	  .recommendation = "Adjacent parameters such as {{1}}{{2}} are not allowed.",
	  .billable = 9 },
	{ .name = "template_quality_update", S(S_TEMPLATE_QUALITY_UPDATE), .nchanges = 1,
	  .kind = WH_CHANGE_TEMPLATE_QUALITY, .tmpl_id = "1689556908129832",
	  .new_quality = "YELLOW", .billable = 9 },
	{ .name = "template_category_update", S(S_TEMPLATE_CATEGORY_UPDATE), .nchanges = 1,
	  .kind = WH_CHANGE_TEMPLATE_CATEGORY, .tmpl_id = "1689556908129832",
	  .new_category = "MARKETING", .billable = 9 },
	{ .name = "phone_number_quality_update", S(S_PHONE_NUMBER_QUALITY_UPDATE),
	  .nchanges = 1, .kind = WH_CHANGE_PHONE_QUALITY,
	  .field = "phone_number_quality_update", .phone_event = "THROUGHPUT_UPGRADE",
	  .limit_tier = "TIER_UNLIMITED", .billable = 9 },
	{ .name = "user_preferences_stop", S(S_USER_PREFERENCES_STOP), .nchanges = 1,
	  .kind = WH_CHANGE_USER_PREFERENCES, .phone_number_id = PNID, .ncontacts = 1,
	  .billable = 9 },
	{ .name = "unknown_field", S(S_UNKNOWN_FIELD), .nchanges = 1,
	  .kind = WH_CHANGE_UNKNOWN, .field = "account_alerts", .billable = 9 },
	{ .name = "unknown_number", S(S_UNKNOWN_NUMBER), .nchanges = 1,
	  .kind = WH_CHANGE_MESSAGES, .phone_number_id = "999999999", .nmessages = 1, .ncontacts = 1,
	  .mtype = WH_MSG_TEXT, .text = "hi", .billable = 9 },
};

static void check_str(const char *what, const char *want, const char *got)
{
	if (want == NULL)
		return;
	if (got == NULL || strcmp(want, got) != 0)
		fail_msg("%s: want \"%s\", got \"%s\"", what, want, got ? got : "(null)");
}

static void check_message(const struct expect *e, const struct wh_message *m)
{
	if (e->mtype != 0)
		assert_int_equal(m->type, e->mtype);
	check_str("wamid", e->wamid, m->id);
	check_str("from", e->from, m->from);
	check_str("text", e->text, m->text);
	check_str("media_id", e->media_id, m->media_id);
	check_str("mime_type", e->mime_type, m->mime_type);
	check_str("sha256", e->sha256, m->sha256);
	check_str("reply_kind", e->reply_kind, m->reply_kind);
	check_str("reply_id", e->reply_id, m->reply_id);
	check_str("context_id", e->context_id, m->context_id);
	if (e->ts_us != 0)
		assert_int_equal(m->timestamp_us, e->ts_us);
	assert_non_null(m->content);
}

static void check_status(const struct expect *e, const struct wh_status *s)
{
	check_str("status id", e->status_id, s->id);
	if (e->skind != 0)
		assert_int_equal(s->kind, e->skind);
	if (e->status_ts_us != 0)
		assert_int_equal(s->timestamp_us, e->status_ts_us);
	if (e->error_code != 0) {
		assert_true(s->has_error);
		assert_int_equal(s->error_code, e->error_code);
	}
	check_str("error_message", e->error_message, s->error_message);
	check_str("pricing_type", e->pricing_type, s->pricing_type);
	check_str("pricing_category", e->pricing_category, s->pricing_category);
	if (e->billable != 9)
		assert_int_equal(s->billable, e->billable);
	assert_string_equal(s->recipient_id, "5511987654321");
	assert_non_null(s->raw);
}

static void check_events(const struct expect *e, const struct wh_change *ch)
{
	check_str("template id", e->tmpl_id, ch->tmpl.meta_template_id);
	check_str("template name", e->tmpl_name, ch->tmpl.name);
	check_str("template language", e->tmpl_language, ch->tmpl.language);
	check_str("template event", e->tmpl_event, ch->tmpl.event);
	check_str("template reason", e->tmpl_reason, ch->tmpl.reason);
	check_str("recommendation", e->recommendation, ch->tmpl.recommendation);
	check_str("new quality", e->new_quality, ch->tmpl.new_quality);
	check_str("new category", e->new_category, ch->tmpl.new_category);
	check_str("phone event", e->phone_event, ch->phone.event);
	check_str("limit tier", e->limit_tier, ch->phone.limit_tier);
}

static void test_samples(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
		const struct expect *e = &CASES[i];
		struct webhook_parsed wp;
		char err[WH_ERR_MAX];
		print_message("sample %s\n", e->name);
		int rc = webhook_parse(e->body, e->len, &wp, err, sizeof err);
		if (rc != WEBHOOK_PARSE_OK)
			fail_msg("%s: %s", e->name, err);
		assert_string_equal(wp.object, "whatsapp_business_account");
		assert_int_equal(wp.nchanges, e->nchanges);
		const struct wh_change *ch = &wp.changes[0];
		if (e->kind != 0)
			assert_int_equal(ch->kind, e->kind);
		check_str("field", e->field, ch->field);
		check_str("waba", WABA, ch->waba_id);
		check_str("phone_number_id", e->phone_number_id, ch->phone_number_id);
		assert_int_equal(ch->nmessages, e->nmessages);
		assert_int_equal(ch->nstatuses, e->nstatuses);
		assert_int_equal(ch->ncontacts, e->ncontacts);
		if (ch->nmessages > 0)
			check_message(e, &ch->messages[0]);
		if (ch->nstatuses > 0)
			check_status(e, &ch->statuses[0]);
		if (ch->ncontacts > 0) {
			check_str("contact name", e->contact_name, ch->contacts[0].name);
			check_str("contact wa_id", e->contact_wa_id, ch->contacts[0].wa_id);
		}
		check_events(e, ch);
		webhook_parsed_free(&wp);
		assert_null(wp.root);
	}
}

/* batched_entries: the second change is an inbound text with its contact. */
static void test_batched_second_change(void **state)
{
	struct webhook_parsed wp;
	char err[WH_ERR_MAX];
	(void)state;
	assert_int_equal(webhook_parse(S(S_BATCHED_ENTRIES), &wp, err, sizeof err), 0);
	assert_int_equal(wp.nchanges, 2);
	assert_string_equal(wp.changes[0].statuses[1].id, "wamid.BATCH2");
	const struct wh_change *ch = &wp.changes[1];
	assert_int_equal(ch->nmessages, 1);
	assert_string_equal(ch->messages[0].id, "wamid.BATCH3");
	assert_string_equal(ch->messages[0].text, "oi");
	assert_string_equal(ch->contacts[0].name, "Ana");
	webhook_parsed_free(&wp);
}

/* Every inbound type of inbound_mixed.json, in order. */
static void test_message_types(void **state)
{
	static const struct {
		enum wh_msg_type type;
		const char *id, *text, *extra;
	} want[] = {
		{ WH_MSG_REACTION, "wamid.R1", "\xf0\x9f\x91\x8d", "wamid.OUT1" },
		{ WH_MSG_LOCATION, "wamid.L1", "Loja", NULL },
		{ WH_MSG_CONTACTS, "wamid.C1", NULL, NULL },
		{ WH_MSG_DOCUMENT, "wamid.D1", NULL, "999" },
		{ WH_MSG_INTERACTIVE, "wamid.LR1", "Segunda", "row_2" },
		{ WH_MSG_BUTTON, "wamid.B1", "Parar", "STOP_PROMO" },
		{ WH_MSG_UNSUPPORTED, "wamid.U1", NULL, NULL },
		{ WH_MSG_UNKNOWN, "wamid.X1", NULL, NULL },
		{ WH_MSG_ORDER, "wamid.O1", NULL, NULL },
	};
	struct webhook_parsed wp;
	char err[WH_ERR_MAX];
	(void)state;
	assert_int_equal(webhook_parse(S(S_INBOUND_MIXED), &wp, err, sizeof err), 0);
	const struct wh_change *ch = &wp.changes[0];
	assert_int_equal(ch->nmessages, sizeof want / sizeof want[0]);
	assert_string_equal(ch->contacts[0].user_id, "BR.123abc");
	for (size_t i = 0; i < ch->nmessages; i++) {
		const struct wh_message *m = &ch->messages[i];
		assert_int_equal(m->type, want[i].type);
		assert_string_equal(m->id, want[i].id);
		check_str("text", want[i].text, m->text);
		if (want[i].text == NULL)
			assert_null(m->text);
		assert_non_null(m->content);
	}
	assert_string_equal(ch->messages[0].context_id, "wamid.OUT1");
	assert_string_equal(ch->messages[3].media_id, "999");
	assert_string_equal(ch->messages[3].filename, "nota.pdf");
	assert_string_equal(ch->messages[4].reply_kind, "list_reply");
	assert_string_equal(ch->messages[4].reply_id, "row_2");
	assert_string_equal(ch->messages[5].reply_id, "STOP_PROMO");
	assert_true(json_is_array(ch->messages[2].content));
	/* unknown type: the whole message object is kept */
	assert_non_null(json_object_get(ch->messages[7].content, "hologram"));
	assert_string_equal(ch->messages[7].type_name, "hologram");
	assert_string_equal(wh_msg_type_name(ch->messages[7].type), "unknown");
	webhook_parsed_free(&wp);
}

static void test_user_preferences(void **state)
{
	struct webhook_parsed wp;
	char err[WH_ERR_MAX];
	(void)state;
	assert_int_equal(webhook_parse(S(S_USER_PREFERENCES_STOP), &wp, err, sizeof err), 0);
	const struct wh_change *ch = &wp.changes[0];
	assert_int_equal(ch->npreferences, 1);
	assert_string_equal(ch->preferences[0].wa_id, "5511911112222");
	assert_string_equal(ch->preferences[0].value, "stop");
	assert_string_equal(ch->preferences[0].category, "marketing_messages");
	assert_int_equal(ch->preferences[0].timestamp_us, 1764410700000000LL);
	webhook_parsed_free(&wp);
}

/* A stored status payload parses on its own (pending statuses). */
static void test_parse_status_alone(void **state)
{
	json_error_t je;
	json_t *o = json_loads("{\"id\":\"wamid.Z\",\"status\":\"delivered\",\"timestamp\":17,"
			       "\"conversation\":{\"id\":\"c1\",\"origin\":{\"type\":\"service\"}},"
			       "\"biz_opaque_callback_data\":\"camp-1\"}", 0, &je);
	struct wh_status s;
	char err[WH_ERR_MAX];
	(void)state;
	assert_non_null(o);
	assert_int_equal(webhook_parse_status(o, &s, err, sizeof err), 0);
	assert_string_equal(s.id, "wamid.Z");
	assert_int_equal(s.kind, WH_STATUS_DELIVERED);
	assert_int_equal(s.timestamp_us, 17000000);
	assert_string_equal(s.conversation_id, "c1");
	assert_string_equal(s.conversation_origin, "service");
	assert_string_equal(s.biz_opaque_callback_data, "camp-1");
	assert_int_equal(s.billable, -1);
	json_decref(o);
	o = json_loads("{\"id\":\"wamid.Z\",\"status\":\"read\",\"timestamp\":\"x1\"}", 0, &je);
	assert_int_equal(webhook_parse_status(o, &s, err, sizeof err), WEBHOOK_PARSE_INVALID);
	assert_non_null(strstr(err, "timestamp"));
	json_decref(o);
}

static void test_status_rank(void **state)
{
	(void)state;
	assert_int_equal(wh_status_rank("queued"), 0);
	assert_int_equal(wh_status_rank("sent"), 1);
	assert_int_equal(wh_status_rank("delivered"), 2);
	assert_int_equal(wh_status_rank("read"), 3);
	assert_int_equal(wh_status_rank("failed"), 4);
	assert_int_equal(wh_status_rank("received"), -1);
	assert_int_equal(wh_status_rank(NULL), -1);
}

#define CH(v) "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\"," \
	"\"changes\":[{\"field\":\"messages\",\"value\":" v "}]}]}"

static void test_malformed(void **state)
{
	static const struct {
		const char *body;
		int rc;
		const char *err_has;
	} bad[] = {
		{ "", WEBHOOK_PARSE_INVALID, "JSON" },
		{ "not json", WEBHOOK_PARSE_INVALID, "JSON" },
		{ "[1,2]", WEBHOOK_PARSE_INVALID, "object" },
		{ "{\"object\":\"x\"}", WEBHOOK_PARSE_INVALID, "entry: is required" },
		{ "{\"entry\":{}}", WEBHOOK_PARSE_INVALID, "entry: must be an array" },
		{ "{\"entry\":[1]}", WEBHOOK_PARSE_INVALID, "entry[0]: must be an object" },
		{ "{\"entry\":[{\"changes\":[{\"value\":{}}]}]}", WEBHOOK_PARSE_INVALID,
		  "changes[0].field: is required" },
		{ "{\"entry\":[{\"id\":5,\"changes\":[]}]}", WEBHOOK_PARSE_INVALID,
		  "entry[0].id: must be a string" },
		{ CH("[]"), WEBHOOK_PARSE_INVALID, "value: must be an object" },
		{ CH("{\"messages\":{}}"), WEBHOOK_PARSE_INVALID, "messages: must be an array" },
		{ CH("{\"messages\":[{\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"text\"}]}"),
		  WEBHOOK_PARSE_INVALID, "messages[0].id: is required" },
		{ CH("{\"messages\":[{\"id\":\"w\",\"timestamp\":\"1\",\"type\":\"text\"}]}"),
		  WEBHOOK_PARSE_INVALID, "from: is required" },
		{ CH("{\"messages\":[{\"id\":\"w\",\"from\":\"1\",\"timestamp\":\"-5\",\"type\":\"text\"}]}"),
		  WEBHOOK_PARSE_INVALID, "timestamp: must be decimal seconds" },
		{ CH("{\"messages\":[{\"id\":\"w\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"text\","
		     "\"text\":{\"body\":7}}]}"),
		  WEBHOOK_PARSE_INVALID, "messages[0].text.body: must be a string" },
		{ CH("{\"messages\":[{\"id\":\"w\",\"from\":\"1\",\"timestamp\":\"1\",\"type\":\"image\","
		     "\"image\":\"x\"}]}"),
		  WEBHOOK_PARSE_INVALID, "image: must be an object" },
		{ CH("{\"statuses\":[{\"id\":\"w\",\"status\":\"sent\"}]}"), WEBHOOK_PARSE_INVALID,
		  "statuses[0].timestamp: is required" },
		{ CH("{\"statuses\":[{\"id\":\"w\",\"status\":\"failed\",\"timestamp\":\"1\","
		     "\"errors\":[{\"code\":\"131026\"}]}]}"),
		  WEBHOOK_PARSE_INVALID, "errors[0].code: must be an integer" },
		{ CH("{\"statuses\":[{\"id\":\"w\",\"status\":\"sent\",\"timestamp\":\"1\","
		     "\"pricing\":{\"billable\":\"yes\"}}]}"),
		  WEBHOOK_PARSE_INVALID, "pricing.billable: must be a boolean" },
		{ CH("{\"metadata\":{\"phone_number_id\":106}}"), WEBHOOK_PARSE_INVALID,
		  "metadata.phone_number_id: must be a string" },
		{ "{\"entry\":[{\"changes\":[{\"field\":\"message_template_status_update\","
		  "\"value\":{\"event\":\"APPROVED\"}}]}]}",
		  WEBHOOK_PARSE_INVALID, "message_template_id: is required" },
		{ "{\"entry\":[{\"changes\":[{\"field\":\"message_template_status_update\","
		  "\"value\":{\"message_template_id\":1.5}}]}]}",
		  WEBHOOK_PARSE_INVALID, "must be an integer or a string" },
		{ "{\"entry\":[],\"entry\":[]}", WEBHOOK_PARSE_INVALID, "" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct webhook_parsed wp;
		char err[WH_ERR_MAX];
		int rc = webhook_parse(bad[i].body, strlen(bad[i].body), &wp, err, sizeof err);
		if (rc != bad[i].rc || strstr(err, bad[i].err_has) == NULL)
			fail_msg("case %zu: rc %d err \"%s\" (want %d, \"%s\")", i, rc, err,
				 bad[i].rc, bad[i].err_has);
		assert_null(wp.root);
		assert_null(wp.changes);
	}
}

/* Unknown keys are ignored; an unknown change field keeps any value. */
static void test_tolerant(void **state)
{
	const char *b = "{\"object\":\"x\",\"new_top\":1,\"entry\":[{\"id\":\"9\",\"time\":1,"
			"\"changes\":[{\"field\":\"messages\",\"value\":{\"extra\":[1],"
			"\"statuses\":[{\"id\":\"w\",\"status\":\"deleted\",\"timestamp\":\"2\","
			"\"future\":{}}]}},{\"field\":\"brand_new\",\"value\":[1,2]}]}]}";
	struct webhook_parsed wp;
	char err[WH_ERR_MAX];
	(void)state;
	assert_int_equal(webhook_parse(b, strlen(b), &wp, err, sizeof err), 0);
	assert_int_equal(wp.nchanges, 2);
	assert_int_equal(wp.changes[0].statuses[0].kind, WH_STATUS_OTHER);
	assert_int_equal(wp.changes[1].kind, WH_CHANGE_UNKNOWN);
	assert_true(json_is_array(wp.changes[1].value));
	webhook_parsed_free(&wp);
	webhook_parsed_free(NULL);
}

/* Past WH_MAX_ENTRIES / WH_MAX_CHANGES: TOO_BIG, nothing leaked. */
static void test_bounds(void **state)
{
	size_t n = WH_MAX_CHANGES + 1, cap = 64 + n * 40;
	char *b = malloc(cap);
	size_t len = 0;
	struct webhook_parsed wp;
	char err[WH_ERR_MAX];
	(void)state;
	assert_non_null(b);
	len += (size_t)snprintf(b + len, cap - len, "{\"entry\":[{\"changes\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(b + len, cap - len, "%s{\"field\":\"x\"}", i ? "," : "");
	len += (size_t)snprintf(b + len, cap - len, "]}]}");
	assert_true(len < cap);
	assert_int_equal(webhook_parse(b, len, &wp, err, sizeof err), WEBHOOK_PARSE_TOO_BIG);
	assert_non_null(strstr(err, "changes"));
	len = 0;
	len += (size_t)snprintf(b + len, cap - len, "{\"entry\":[");
	for (size_t i = 0; i < WH_MAX_ENTRIES + 1; i++)
		len += (size_t)snprintf(b + len, cap - len, "%s{}", i ? "," : "");
	len += (size_t)snprintf(b + len, cap - len, "]}");
	assert_int_equal(webhook_parse(b, len, &wp, err, sizeof err), WEBHOOK_PARSE_TOO_BIG);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_batched_second_change),
		cmocka_unit_test(test_message_types),
		cmocka_unit_test(test_user_preferences),
		cmocka_unit_test(test_parse_status_alone),
		cmocka_unit_test(test_status_rank),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_tolerant),
		cmocka_unit_test(test_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
