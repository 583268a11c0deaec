/* webhook_parse: one Meta webhook body (already signature-checked) into
 * typed events.
 *
 * Design note
 * - The body is parsed once with jansson (core/json.h rules: valid UTF-8,
 *   no duplicate keys, nesting <= JSON_MAX_DEPTH). Every string pointer in
 *   the result points into that parsed tree, which the result owns
 *   (struct webhook_parsed.root): it stays valid until webhook_parsed_free.
 * - Strict about types, tolerant of unknown keys: a known key holding the
 *   wrong JSON type, or a required key missing (message id/from/type,
 *   status id/status/timestamp), makes the whole body a parse error
 *   (WEBHOOK_PARSE_INVALID with a message naming the place, e.g.
 *   "entry[0].changes[1].value.statuses[0].id: must be a string").
 *   Unknown keys are ignored; unknown change fields become
 *   WH_CHANGE_UNKNOWN; unknown message types WH_MSG_UNKNOWN with their raw
 *   object kept in content.
 * - Bounded: at most WH_MAX_ENTRIES entries, WH_MAX_CHANGES changes in all,
 *   WH_MAX_ITEMS messages + statuses + contacts + preferences in all; past
 *   that the body is WEBHOOK_PARSE_TOO_BIG.
 * - Meta timestamps are decimal strings of seconds (integers accepted too);
 *   they are returned as microseconds. Template ids (JSON numbers or
 *   strings) are returned as decimal strings.
 * - Nothing here touches the database or logs. */
#ifndef PYTAKE_WEBHOOK_PARSE_H
#define PYTAKE_WEBHOOK_PARSE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WH_MAX_ENTRIES 1000
#define WH_MAX_CHANGES 2000
#define WH_MAX_ITEMS 50000
#define WH_ERR_MAX 256

enum webhook_parse_status {
	WEBHOOK_PARSE_OK = 0,
	WEBHOOK_PARSE_INVALID = -1, /* not JSON, wrong shape or type */
	WEBHOOK_PARSE_TOO_BIG = -2, /* past one of the WH_MAX_* bounds */
	WEBHOOK_PARSE_NOMEM = -3,
};

enum wh_change_kind {
	WH_CHANGE_MESSAGES = 1,          /* messages, statuses, contacts */
	WH_CHANGE_TEMPLATE_STATUS,       /* message_template_status_update */
	WH_CHANGE_TEMPLATE_QUALITY,      /* message_template_quality_update */
	WH_CHANGE_TEMPLATE_CATEGORY,     /* template_category_update */
	WH_CHANGE_PHONE_QUALITY,         /* phone_number_quality_update */
	WH_CHANGE_USER_PREFERENCES,      /* user_preferences */
	WH_CHANGE_UNKNOWN,               /* any other field: stored, not failed */
};

enum wh_msg_type {
	WH_MSG_TEXT = 1,
	WH_MSG_IMAGE,
	WH_MSG_VIDEO,
	WH_MSG_AUDIO,
	WH_MSG_DOCUMENT,
	WH_MSG_STICKER,
	WH_MSG_INTERACTIVE, /* button_reply / list_reply / nfm_reply */
	WH_MSG_BUTTON,      /* template quick-reply tap */
	WH_MSG_REACTION,
	WH_MSG_LOCATION,
	WH_MSG_CONTACTS,
	WH_MSG_ORDER,
	WH_MSG_SYSTEM,
	WH_MSG_UNSUPPORTED, /* Meta's own "unsupported" */
	WH_MSG_UNKNOWN,     /* a type this parser does not know */
};

enum wh_status_kind {
	WH_STATUS_SENT = 1,
	WH_STATUS_DELIVERED,
	WH_STATUS_READ,
	WH_STATUS_FAILED,
	WH_STATUS_OTHER, /* e.g. "deleted", "warning": recorded, no transition */
};

/* contacts[]: who sent the messages of this change. */
struct wh_contact {
	const char *wa_id;   /* may be NULL (username-only users) */
	const char *user_id; /* BSUID, may be NULL */
	const char *name;    /* profile.name, may be NULL */
};

struct wh_message {
	const char *id;           /* wamid, required */
	const char *from;         /* wa_id of the sender; NULL when only a BSUID */
	const char *from_user_id; /* BSUID, may be NULL */
	int64_t timestamp_us;
	const char *type_name;    /* Meta's "type" string as sent */
	enum wh_msg_type type;
	const char *context_id;   /* context.id: the message replied to, or NULL */
	/* The text to show: text.body, a media caption, the button text,
	 * the reply title, the reaction emoji; NULL when none. */
	const char *text;
	/* media (image/video/audio/document/sticker) */
	const char *media_id, *mime_type, *sha256, *caption, *filename;
	/* interactive replies and button taps */
	const char *reply_kind;   /* "button_reply", "list_reply", ... */
	const char *reply_id;     /* reply id, or the button payload */
	/* The type's own object (message[type]); for WH_MSG_UNKNOWN and
	 * messages without such an object, the whole message object.
	 * Borrowed from root. */
	json_t *content;
};

struct wh_status {
	const char *id;           /* wamid */
	const char *status;       /* as sent */
	enum wh_status_kind kind;
	int64_t timestamp_us;
	const char *recipient_id;
	const char *recipient_user_id; /* BSUID, may be NULL */
	bool has_error;
	int64_t error_code;
	const char *error_title, *error_message, *error_details;
	bool has_pricing;
	int billable;             /* -1 absent, 0 false, 1 true */
	const char *pricing_type, *pricing_category, *pricing_model;
	const char *conversation_id, *conversation_origin;
	const char *biz_opaque_callback_data;
	json_t *raw;              /* the status object (borrowed from root) */
};

/* user_preferences[]: marketing stop/resume. */
struct wh_preference {
	const char *wa_id, *user_id;
	const char *category; /* e.g. "marketing_messages" */
	const char *value;    /* "stop" | "resume" */
	int64_t timestamp_us;
};

/* The template events (status, quality, category). */
struct wh_template_event {
	char meta_template_id[24]; /* "" when absent */
	const char *name, *language;
	const char *event;          /* status update: APPROVED, REJECTED, ... */
	const char *reason;         /* status update: reason ("NONE" = none) */
	const char *recommendation; /* rejection_info.recommendation */
	const char *previous_quality, *new_quality;
	const char *previous_category, *new_category;
};

struct wh_phone_quality {
	const char *display_phone_number;
	const char *event;      /* FLAGGED, UNFLAGGED, THROUGHPUT_UPGRADE, ... */
	const char *limit_tier; /* max_daily_conversations_per_business, or
	                           current_limit */
};

struct wh_change {
	enum wh_change_kind kind;
	const char *field;          /* as sent */
	const char *waba_id;        /* entry[].id */
	const char *phone_number_id;      /* value.metadata, NULL for account events */
	const char *display_phone_number; /* value.metadata */
	struct wh_contact *contacts;
	size_t ncontacts;
	struct wh_message *messages;
	size_t nmessages;
	struct wh_status *statuses;
	size_t nstatuses;
	struct wh_preference *preferences;
	size_t npreferences;
	struct wh_template_event tmpl;    /* WH_CHANGE_TEMPLATE_* */
	struct wh_phone_quality phone;    /* WH_CHANGE_PHONE_QUALITY */
	json_t *value;                    /* the change's value (borrowed) */
};

struct webhook_parsed {
	json_t *root;          /* owned */
	const char *object;    /* "whatsapp_business_account" */
	struct wh_change *changes;
	size_t nchanges;
};

/* Parse body (len bytes, need not be NUL-terminated) into *out. On
 * WEBHOOK_PARSE_OK *out owns everything (free with webhook_parsed_free);
 * otherwise *out is left empty and err holds one line saying why. */
int webhook_parse(const char *body, size_t len, struct webhook_parsed *out, char *err,
		  size_t errlen) __attribute__((warn_unused_result));

/* Parse one status object (as stored in pending_statuses.payload, or taken
 * from a body) into *out; strings borrow from obj. WEBHOOK_PARSE_OK or
 * WEBHOOK_PARSE_INVALID with err. */
int webhook_parse_status(json_t *obj, struct wh_status *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Free what webhook_parse made and zero *p. NULL is a no-op. */
void webhook_parsed_free(struct webhook_parsed *p);

/* Static names for logs and the database ("text", "image", ...;
 * "messages", "message_template_status_update", ...). */
const char *wh_msg_type_name(enum wh_msg_type t);
const char *wh_change_kind_name(enum wh_change_kind k);

/* Rank of a message status for forward-only moves: queued 0, sent 1,
 * delivered 2, read 3; failed 4 (terminal); -1 for anything else. */
int wh_status_rank(const char *status);

#endif
