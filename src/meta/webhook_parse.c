/* webhook_parse: Meta webhook body -> typed events (see webhook_parse.h). */
#include "meta/webhook_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

#define PATH_MAX_LEN 160

struct pctx {
	char *err;
	size_t errlen;
	size_t nitems;
	size_t nchanges;
};

static int fail(struct pctx *p, const char *path, const char *key, const char *what)
{
	if (p->err != NULL && p->errlen > 0) {
		if (key != NULL)
			snprintf(p->err, p->errlen, "%s.%s: %s", path, key, what);
		else
			snprintf(p->err, p->errlen, "%s: %s", path, what);
	}
	return WEBHOOK_PARSE_INVALID;
}

static int too_big(struct pctx *p, const char *what)
{
	if (p->err != NULL && p->errlen > 0)
		snprintf(p->err, p->errlen, "webhook body has too many %s", what);
	return WEBHOOK_PARSE_TOO_BIG;
}

/* dst = "a.b" (or "a" when b is NULL), cut to n bytes: paths only name
 * the place of an error, so a cut one is still useful. */
static void join_path(char *dst, size_t n, const char *a, const char *b)
{
	int w = b != NULL ? snprintf(dst, n, "%s.%s", a, b) : snprintf(dst, n, "%s", a);
	if (w < 0 && n > 0)
		dst[0] = '\0';
}

/* ---- typed getters: absent and null give NULL, the wrong type fails ---- */

static int opt_str(struct pctx *p, const json_t *o, const char *key, const char *path,
		   const char **out)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return fail(p, path, key, "must be a string");
	*out = json_string_value(v);
	return 0;
}

static int req_str(struct pctx *p, const json_t *o, const char *key, const char *path,
		   const char **out)
{
	if (opt_str(p, o, key, path, out) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (*out == NULL || (*out)[0] == '\0')
		return fail(p, path, key, "is required");
	return 0;
}

static int opt_typed(struct pctx *p, const json_t *o, const char *key, const char *path,
		     json_type want, json_t **out)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_typeof(v) != want)
		return fail(p, path, key,
			    want == JSON_OBJECT ? "must be an object" : "must be an array");
	*out = v;
	return 0;
}

static int opt_obj(struct pctx *p, const json_t *o, const char *key, const char *path,
		   json_t **out)
{
	return opt_typed(p, o, key, path, JSON_OBJECT, out);
}

static int opt_arr(struct pctx *p, const json_t *o, const char *key, const char *path,
		   json_t **out)
{
	return opt_typed(p, o, key, path, JSON_ARRAY, out);
}

/* Seconds since the epoch as a decimal string (Meta) or an integer ->
 * microseconds. Bounded to 12 digits so the product cannot overflow. */
static int parse_seconds(const char *s, int64_t *us)
{
	int64_t v = 0;
	size_t n = strlen(s);
	if (n == 0 || n > 12)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*us = v * 1000000;
	return 0;
}

static int get_time(struct pctx *p, const json_t *o, const char *key, const char *path,
		    bool required, int64_t *us)
{
	json_t *v = json_object_get(o, key);
	*us = 0;
	if (v == NULL || json_is_null(v))
		return required ? fail(p, path, key, "is required") : 0;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || i > 999999999999LL)
			return fail(p, path, key, "is out of range");
		*us = (int64_t)i * 1000000;
		return 0;
	}
	if (!json_is_string(v))
		return fail(p, path, key, "must be a string of seconds");
	if (parse_seconds(json_string_value(v), us) != 0)
		return fail(p, path, key, "must be decimal seconds");
	return 0;
}

/* A Meta id given as a JSON integer or a digit string -> decimal text. */
static int get_meta_id(struct pctx *p, const json_t *o, const char *key, const char *path,
		       char out[24])
{
	json_t *v = json_object_get(o, key);
	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return fail(p, path, key, "must not be negative");
		snprintf(out, 24, "%lld", (long long)json_integer_value(v));
		return 0;
	}
	if (!json_is_string(v))
		return fail(p, path, key, "must be an integer or a string");
	const char *s = json_string_value(v);
	size_t n = strlen(s);
	if (n == 0 || n > 23)
		return fail(p, path, key, "must be 1 to 23 digits");
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return fail(p, path, key, "must be digits");
	memcpy(out, s, n + 1);
	return 0;
}

/* ---- names ---- */

static const struct {
	const char *name;
	enum wh_msg_type type;
} MSG_TYPES[] = {
	{ "text", WH_MSG_TEXT },           { "image", WH_MSG_IMAGE },
	{ "video", WH_MSG_VIDEO },         { "audio", WH_MSG_AUDIO },
	{ "document", WH_MSG_DOCUMENT },   { "sticker", WH_MSG_STICKER },
	{ "interactive", WH_MSG_INTERACTIVE }, { "button", WH_MSG_BUTTON },
	{ "reaction", WH_MSG_REACTION },   { "location", WH_MSG_LOCATION },
	{ "contacts", WH_MSG_CONTACTS },   { "order", WH_MSG_ORDER },
	{ "system", WH_MSG_SYSTEM },       { "unsupported", WH_MSG_UNSUPPORTED },
};

static const struct {
	const char *name;
	enum wh_change_kind kind;
} CHANGE_KINDS[] = {
	{ "messages", WH_CHANGE_MESSAGES },
	{ "message_template_status_update", WH_CHANGE_TEMPLATE_STATUS },
	{ "message_template_quality_update", WH_CHANGE_TEMPLATE_QUALITY },
	{ "template_category_update", WH_CHANGE_TEMPLATE_CATEGORY },
	{ "phone_number_quality_update", WH_CHANGE_PHONE_QUALITY },
	{ "user_preferences", WH_CHANGE_USER_PREFERENCES },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *wh_msg_type_name(enum wh_msg_type t)
{
	for (size_t i = 0; i < NELEM(MSG_TYPES); i++)
		if (MSG_TYPES[i].type == t)
			return MSG_TYPES[i].name;
	return "unknown";
}

const char *wh_change_kind_name(enum wh_change_kind k)
{
	for (size_t i = 0; i < NELEM(CHANGE_KINDS); i++)
		if (CHANGE_KINDS[i].kind == k)
			return CHANGE_KINDS[i].name;
	return "unknown";
}

static enum wh_msg_type msg_type_of(const char *name)
{
	for (size_t i = 0; i < NELEM(MSG_TYPES); i++)
		if (strcmp(MSG_TYPES[i].name, name) == 0)
			return MSG_TYPES[i].type;
	return WH_MSG_UNKNOWN;
}

static enum wh_change_kind change_kind_of(const char *field)
{
	for (size_t i = 0; i < NELEM(CHANGE_KINDS); i++)
		if (strcmp(CHANGE_KINDS[i].name, field) == 0)
			return CHANGE_KINDS[i].kind;
	return WH_CHANGE_UNKNOWN;
}

int wh_status_rank(const char *status)
{
	static const char *const order[] = { "queued", "sent", "delivered", "read", "failed" };
	if (status == NULL)
		return -1;
	for (int i = 0; i < (int)NELEM(order); i++)
		if (strcmp(order[i], status) == 0)
			return i;
	return -1;
}

static enum wh_status_kind status_kind_of(const char *s)
{
	if (strcmp(s, "sent") == 0)
		return WH_STATUS_SENT;
	if (strcmp(s, "delivered") == 0)
		return WH_STATUS_DELIVERED;
	if (strcmp(s, "read") == 0)
		return WH_STATUS_READ;
	if (strcmp(s, "failed") == 0)
		return WH_STATUS_FAILED;
	return WH_STATUS_OTHER;
}

/* ---- messages ---- */

static int parse_media(struct pctx *p, const json_t *c, const char *path, struct wh_message *m)
{
	if (opt_str(p, c, "id", path, &m->media_id) != 0 ||
	    opt_str(p, c, "mime_type", path, &m->mime_type) != 0 ||
	    opt_str(p, c, "sha256", path, &m->sha256) != 0 ||
	    opt_str(p, c, "caption", path, &m->caption) != 0 ||
	    opt_str(p, c, "filename", path, &m->filename) != 0)
		return WEBHOOK_PARSE_INVALID;
	m->text = m->caption;
	return 0;
}

static int parse_interactive(struct pctx *p, const json_t *c, const char *path,
			     struct wh_message *m)
{
	json_t *reply = NULL;
	char sub[PATH_MAX_LEN + 32];
	if (opt_str(p, c, "type", path, &m->reply_kind) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (m->reply_kind == NULL)
		return 0;
	if (opt_obj(p, c, m->reply_kind, path, &reply) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (reply == NULL)
		return 0;
	join_path(sub, sizeof sub, path, m->reply_kind);
	if (opt_str(p, reply, "id", sub, &m->reply_id) != 0 ||
	    opt_str(p, reply, "title", sub, &m->text) != 0)
		return WEBHOOK_PARSE_INVALID;
	return 0;
}

/* The fields of the type's own object (c). */
static int parse_content(struct pctx *p, const json_t *c, const char *path,
			 struct wh_message *m)
{
	switch (m->type) {
	case WH_MSG_TEXT:
		return opt_str(p, c, "body", path, &m->text);
	case WH_MSG_IMAGE:
	case WH_MSG_VIDEO:
	case WH_MSG_AUDIO:
	case WH_MSG_DOCUMENT:
	case WH_MSG_STICKER:
		return parse_media(p, c, path, m);
	case WH_MSG_INTERACTIVE:
		return parse_interactive(p, c, path, m);
	case WH_MSG_BUTTON:
		if (opt_str(p, c, "text", path, &m->text) != 0 ||
		    opt_str(p, c, "payload", path, &m->reply_id) != 0)
			return WEBHOOK_PARSE_INVALID;
		return 0;
	case WH_MSG_REACTION:
		if (opt_str(p, c, "emoji", path, &m->text) != 0)
			return WEBHOOK_PARSE_INVALID;
		if (m->context_id == NULL &&
		    opt_str(p, c, "message_id", path, &m->context_id) != 0)
			return WEBHOOK_PARSE_INVALID;
		return 0;
	case WH_MSG_LOCATION:
		return opt_str(p, c, "name", path, &m->text);
	case WH_MSG_SYSTEM:
		return opt_str(p, c, "body", path, &m->text);
	default:
		return 0;
	}
}

static int parse_message(struct pctx *p, json_t *o, const char *path, struct wh_message *m)
{
	json_t *ctx = NULL;
	char sub[PATH_MAX_LEN + 32];
	if (!json_is_object(o))
		return fail(p, path, NULL, "must be an object");
	if (req_str(p, o, "id", path, &m->id) != 0 ||
	    opt_str(p, o, "from", path, &m->from) != 0 ||
	    opt_str(p, o, "from_user_id", path, &m->from_user_id) != 0 ||
	    get_time(p, o, "timestamp", path, true, &m->timestamp_us) != 0 ||
	    req_str(p, o, "type", path, &m->type_name) != 0 ||
	    opt_obj(p, o, "context", path, &ctx) != 0)
		return WEBHOOK_PARSE_INVALID;
	if ((m->from == NULL || m->from[0] == '\0') &&
	    (m->from_user_id == NULL || m->from_user_id[0] == '\0'))
		return fail(p, path, "from", "is required (or from_user_id)");
	if (ctx != NULL) {
		join_path(sub, sizeof sub, path, "context");
		if (opt_str(p, ctx, "id", sub, &m->context_id) != 0)
			return WEBHOOK_PARSE_INVALID;
	}
	m->type = msg_type_of(m->type_name);
	m->content = o;
	if (m->type == WH_MSG_UNKNOWN || m->type == WH_MSG_UNSUPPORTED)
		return 0;
	json_t *c = json_object_get(o, m->type_name);
	if (c == NULL || json_is_null(c))
		return 0;
	if (m->type == WH_MSG_CONTACTS) {
		if (!json_is_array(c))
			return fail(p, path, m->type_name, "must be an array");
		m->content = c;
		return 0;
	}
	if (!json_is_object(c))
		return fail(p, path, m->type_name, "must be an object");
	m->content = c;
	join_path(sub, sizeof sub, path, m->type_name);
	return parse_content(p, c, sub, m);
}

/* ---- statuses ---- */

static int parse_status_error(struct pctx *p, const json_t *errors, const char *path,
			      struct wh_status *s)
{
	json_t *e = json_array_get(errors, 0);
	json_t *data = NULL, *code;
	char sub[PATH_MAX_LEN + 32];
	if (e == NULL)
		return 0;
	if (snprintf(sub, sizeof sub, "%s.errors[0]", path) < 0)
		sub[0] = '\0';
	if (!json_is_object(e))
		return fail(p, sub, NULL, "must be an object");
	code = json_object_get(e, "code");
	if (code != NULL && !json_is_null(code)) {
		if (!json_is_integer(code))
			return fail(p, sub, "code", "must be an integer");
		s->error_code = (int64_t)json_integer_value(code);
	}
	if (opt_str(p, e, "title", sub, &s->error_title) != 0 ||
	    opt_str(p, e, "message", sub, &s->error_message) != 0 ||
	    opt_obj(p, e, "error_data", sub, &data) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (data != NULL) {
		char dpath[PATH_MAX_LEN + 48];
		join_path(dpath, sizeof dpath, sub, "error_data");
		if (opt_str(p, data, "details", dpath, &s->error_details) != 0)
			return WEBHOOK_PARSE_INVALID;
	}
	s->has_error = true;
	return 0;
}

static int parse_pricing(struct pctx *p, const json_t *pr, const char *path, struct wh_status *s)
{
	char sub[PATH_MAX_LEN + 32];
	json_t *b = json_object_get(pr, "billable");
	join_path(sub, sizeof sub, path, "pricing");
	s->has_pricing = true;
	if (b != NULL && !json_is_null(b)) {
		if (!json_is_boolean(b))
			return fail(p, sub, "billable", "must be a boolean");
		s->billable = json_is_true(b) ? 1 : 0;
	}
	if (opt_str(p, pr, "type", sub, &s->pricing_type) != 0 ||
	    opt_str(p, pr, "category", sub, &s->pricing_category) != 0 ||
	    opt_str(p, pr, "pricing_model", sub, &s->pricing_model) != 0)
		return WEBHOOK_PARSE_INVALID;
	return 0;
}

static int parse_status_at(struct pctx *p, json_t *o, const char *path, struct wh_status *s)
{
	json_t *errors = NULL, *pricing = NULL, *conv = NULL;
	memset(s, 0, sizeof *s);
	s->billable = -1;
	if (!json_is_object(o))
		return fail(p, path, NULL, "must be an object");
	s->raw = o;
	if (req_str(p, o, "id", path, &s->id) != 0 ||
	    req_str(p, o, "status", path, &s->status) != 0 ||
	    get_time(p, o, "timestamp", path, true, &s->timestamp_us) != 0 ||
	    opt_str(p, o, "recipient_id", path, &s->recipient_id) != 0 ||
	    opt_str(p, o, "recipient_user_id", path, &s->recipient_user_id) != 0 ||
	    opt_str(p, o, "biz_opaque_callback_data", path, &s->biz_opaque_callback_data) != 0 ||
	    opt_arr(p, o, "errors", path, &errors) != 0 ||
	    opt_obj(p, o, "pricing", path, &pricing) != 0 ||
	    opt_obj(p, o, "conversation", path, &conv) != 0)
		return WEBHOOK_PARSE_INVALID;
	s->kind = status_kind_of(s->status);
	if (errors != NULL && parse_status_error(p, errors, path, s) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (pricing != NULL && parse_pricing(p, pricing, path, s) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (conv != NULL) {
		json_t *origin = NULL;
		char sub[PATH_MAX_LEN + 32];
		join_path(sub, sizeof sub, path, "conversation");
		if (opt_str(p, conv, "id", sub, &s->conversation_id) != 0 ||
		    opt_obj(p, conv, "origin", sub, &origin) != 0)
			return WEBHOOK_PARSE_INVALID;
		if (origin != NULL && opt_str(p, origin, "type", sub, &s->conversation_origin) != 0)
			return WEBHOOK_PARSE_INVALID;
	}
	return 0;
}

int webhook_parse_status(json_t *obj, struct wh_status *out, char *err, size_t errlen)
{
	struct pctx p = { .err = err, .errlen = errlen };
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	return parse_status_at(&p, obj, "status", out);
}

/* ---- contacts and preferences ---- */

static int parse_contact(struct pctx *p, json_t *o, const char *path, struct wh_contact *c)
{
	json_t *profile = NULL;
	if (!json_is_object(o))
		return fail(p, path, NULL, "must be an object");
	if (opt_str(p, o, "wa_id", path, &c->wa_id) != 0 ||
	    opt_str(p, o, "user_id", path, &c->user_id) != 0 ||
	    opt_obj(p, o, "profile", path, &profile) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (profile != NULL) {
		char sub[PATH_MAX_LEN + 32];
		join_path(sub, sizeof sub, path, "profile");
		if (opt_str(p, profile, "name", sub, &c->name) != 0)
			return WEBHOOK_PARSE_INVALID;
	}
	return 0;
}

static int parse_preference(struct pctx *p, json_t *o, const char *path, struct wh_preference *u)
{
	if (!json_is_object(o))
		return fail(p, path, NULL, "must be an object");
	if (opt_str(p, o, "wa_id", path, &u->wa_id) != 0 ||
	    opt_str(p, o, "user_id", path, &u->user_id) != 0 ||
	    opt_str(p, o, "category", path, &u->category) != 0 ||
	    req_str(p, o, "value", path, &u->value) != 0 ||
	    get_time(p, o, "timestamp", path, false, &u->timestamp_us) != 0)
		return WEBHOOK_PARSE_INVALID;
	return 0;
}

/* ---- arrays of items ---- */

typedef int (*item_fn)(struct pctx *p, json_t *o, const char *path, void *item);

static int parse_items(struct pctx *p, const json_t *value, const char *key,
		       const char *path, size_t item_size, item_fn fn, void **out,
		       size_t *n)
{
	json_t *arr = NULL;
	char sub[PATH_MAX_LEN + 48];
	*out = NULL;
	*n = 0;
	if (opt_arr(p, value, key, path, &arr) != 0)
		return WEBHOOK_PARSE_INVALID;
	size_t count = arr != NULL ? json_array_size(arr) : 0;
	if (count == 0)
		return 0;
	if (count > WH_MAX_ITEMS - p->nitems)
		return too_big(p, "items");
	p->nitems += count;
	char *items = calloc(count, item_size);
	if (items == NULL)
		return WEBHOOK_PARSE_NOMEM;
	*out = items;
	for (size_t i = 0; i < count; i++) {
		if (snprintf(sub, sizeof sub, "%s.%s[%zu]", path, key, i) < 0)
			sub[0] = '\0';
		int rc = fn(p, json_array_get(arr, i), sub, items + i * item_size);
		if (rc != 0)
			return rc; /* *out is freed with the change */
		(*n)++;
	}
	return 0;
}

static int message_item(struct pctx *p, json_t *o, const char *path, void *item)
{
	return parse_message(p, o, path, item);
}

static int status_item(struct pctx *p, json_t *o, const char *path, void *item)
{
	return parse_status_at(p, o, path, item);
}

static int contact_item(struct pctx *p, json_t *o, const char *path, void *item)
{
	return parse_contact(p, o, path, item);
}

static int preference_item(struct pctx *p, json_t *o, const char *path, void *item)
{
	return parse_preference(p, o, path, item);
}

/* ---- changes ---- */

static int parse_metadata(struct pctx *p, const json_t *value, const char *path,
			  struct wh_change *ch)
{
	json_t *md = NULL;
	char sub[PATH_MAX_LEN + 32];
	if (opt_obj(p, value, "metadata", path, &md) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (md == NULL)
		return 0;
	join_path(sub, sizeof sub, path, "metadata");
	if (opt_str(p, md, "phone_number_id", sub, &ch->phone_number_id) != 0 ||
	    opt_str(p, md, "display_phone_number", sub, &ch->display_phone_number) != 0)
		return WEBHOOK_PARSE_INVALID;
	return 0;
}

static int parse_messages_value(struct pctx *p, const json_t *v, const char *path,
				struct wh_change *ch)
{
	int rc = parse_metadata(p, v, path, ch);
	if (rc == 0)
		rc = parse_items(p, v, "contacts", path, sizeof(struct wh_contact), contact_item,
				 (void **)&ch->contacts, &ch->ncontacts);
	if (rc == 0)
		rc = parse_items(p, v, "messages", path, sizeof(struct wh_message), message_item,
				 (void **)&ch->messages, &ch->nmessages);
	if (rc == 0)
		rc = parse_items(p, v, "statuses", path, sizeof(struct wh_status), status_item,
				 (void **)&ch->statuses, &ch->nstatuses);
	return rc;
}

static int parse_template_value(struct pctx *p, const json_t *v, const char *path,
				struct wh_template_event *t)
{
	json_t *info = NULL;
	if (get_meta_id(p, v, "message_template_id", path, t->meta_template_id) != 0 ||
	    opt_str(p, v, "message_template_name", path, &t->name) != 0 ||
	    opt_str(p, v, "message_template_language", path, &t->language) != 0 ||
	    opt_str(p, v, "event", path, &t->event) != 0 ||
	    opt_str(p, v, "reason", path, &t->reason) != 0 ||
	    opt_obj(p, v, "rejection_info", path, &info) != 0 ||
	    opt_str(p, v, "previous_quality_score", path, &t->previous_quality) != 0 ||
	    opt_str(p, v, "new_quality_score", path, &t->new_quality) != 0 ||
	    opt_str(p, v, "previous_category", path, &t->previous_category) != 0 ||
	    opt_str(p, v, "new_category", path, &t->new_category) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (info != NULL) {
		char sub[PATH_MAX_LEN + 32];
		const char *r = NULL;
		join_path(sub, sizeof sub, path, "rejection_info");
		if (opt_str(p, info, "reason", sub, &r) != 0 ||
		    opt_str(p, info, "recommendation", sub, &t->recommendation) != 0)
			return WEBHOOK_PARSE_INVALID;
		if (t->reason == NULL)
			t->reason = r;
	}
	if (t->meta_template_id[0] == '\0' && (t->name == NULL || t->language == NULL))
		return fail(p, path, "message_template_id",
			    "is required (or message_template_name and _language)");
	return 0;
}

static int parse_phone_value(struct pctx *p, const json_t *v, const char *path,
			     struct wh_phone_quality *q)
{
	const char *cur = NULL;
	if (opt_str(p, v, "display_phone_number", path, &q->display_phone_number) != 0 ||
	    req_str(p, v, "event", path, &q->event) != 0 ||
	    opt_str(p, v, "max_daily_conversations_per_business", path, &q->limit_tier) != 0 ||
	    opt_str(p, v, "current_limit", path, &cur) != 0)
		return WEBHOOK_PARSE_INVALID;
	if (q->limit_tier == NULL)
		q->limit_tier = cur;
	return 0;
}

static int parse_change(struct pctx *p, json_t *o, const char *path, const char *waba_id,
			struct wh_change *ch)
{
	char sub[PATH_MAX_LEN + 32];
	if (!json_is_object(o))
		return fail(p, path, NULL, "must be an object");
	ch->waba_id = waba_id;
	if (req_str(p, o, "field", path, &ch->field) != 0)
		return WEBHOOK_PARSE_INVALID;
	ch->kind = change_kind_of(ch->field);
	ch->value = json_object_get(o, "value");
	if (ch->kind == WH_CHANGE_UNKNOWN)
		return 0; /* stored as is, whatever its value */
	if (!json_is_object(ch->value))
		return fail(p, path, "value", "must be an object");
	join_path(sub, sizeof sub, path, "value");
	switch (ch->kind) {
	case WH_CHANGE_MESSAGES:
		return parse_messages_value(p, ch->value, sub, ch);
	case WH_CHANGE_USER_PREFERENCES: {
		int rc = parse_metadata(p, ch->value, sub, ch);
		if (rc == 0)
			rc = parse_items(p, ch->value, "contacts", sub, sizeof(struct wh_contact),
					 contact_item, (void **)&ch->contacts, &ch->ncontacts);
		if (rc == 0)
			rc = parse_items(p, ch->value, "user_preferences", sub,
					 sizeof(struct wh_preference), preference_item,
					 (void **)&ch->preferences, &ch->npreferences);
		return rc;
	}
	case WH_CHANGE_PHONE_QUALITY:
		return parse_phone_value(p, ch->value, sub, &ch->phone);
	default:
		return parse_template_value(p, ch->value, sub, &ch->tmpl);
	}
}

static void change_release(struct wh_change *ch)
{
	free(ch->contacts);
	free(ch->messages);
	free(ch->statuses);
	free(ch->preferences);
}

void webhook_parsed_free(struct webhook_parsed *wp)
{
	if (wp == NULL)
		return;
	for (size_t i = 0; i < wp->nchanges; i++)
		change_release(&wp->changes[i]);
	free(wp->changes);
	json_decref(wp->root);
	memset(wp, 0, sizeof *wp);
}

/* Count the changes of every entry (bounded) so one array holds them. */
static int count_changes(struct pctx *p, const json_t *entries, size_t *total)
{
	size_t n = 0;
	char path[PATH_MAX_LEN];
	if (json_array_size(entries) > WH_MAX_ENTRIES)
		return too_big(p, "entries");
	for (size_t i = 0; i < json_array_size(entries); i++) {
		json_t *e = json_array_get(entries, i), *changes = NULL;
		if (snprintf(path, sizeof path, "entry[%zu]", i) < 0)
			path[0] = '\0';
		if (!json_is_object(e))
			return fail(p, path, NULL, "must be an object");
		if (opt_arr(p, e, "changes", path, &changes) != 0)
			return WEBHOOK_PARSE_INVALID;
		n += changes != NULL ? json_array_size(changes) : 0;
		if (n > WH_MAX_CHANGES)
			return too_big(p, "changes");
	}
	*total = n;
	return 0;
}

static int parse_entries(struct pctx *p, const json_t *entries, struct webhook_parsed *wp)
{
	char path[PATH_MAX_LEN];
	for (size_t i = 0; i < json_array_size(entries); i++) {
		json_t *e = json_array_get(entries, i);
		json_t *changes = json_object_get(e, "changes");
		const char *waba = NULL;
		if (snprintf(path, sizeof path, "entry[%zu]", i) < 0)
			path[0] = '\0';
		if (opt_str(p, e, "id", path, &waba) != 0)
			return WEBHOOK_PARSE_INVALID;
		for (size_t j = 0; j < json_array_size(changes); j++) {
			if (snprintf(path, sizeof path, "entry[%zu].changes[%zu]", i, j) < 0)
				path[0] = '\0';
			struct wh_change *ch = &wp->changes[wp->nchanges++];
			int rc = parse_change(p, json_array_get(changes, j), path, waba, ch);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int webhook_parse(const char *body, size_t len, struct webhook_parsed *out, char *err,
		  size_t errlen)
{
	struct pctx p = { .err = err, .errlen = errlen };
	struct webhook_parsed wp = { 0 };
	json_t *entries = NULL;
	size_t total = 0;
	int rc = WEBHOOK_PARSE_INVALID;

	memset(out, 0, sizeof *out);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	wp.root = json_parse_object(body, len, err, errlen);
	if (wp.root == NULL)
		goto out;
	if (opt_str(&p, wp.root, "object", "body", &wp.object) != 0 ||
	    opt_arr(&p, wp.root, "entry", "body", &entries) != 0)
		goto out;
	if (entries == NULL) {
		rc = fail(&p, "body", "entry", "is required");
		goto out;
	}
	rc = count_changes(&p, entries, &total);
	if (rc != 0)
		goto out;
	if (total > 0) {
		wp.changes = calloc(total, sizeof *wp.changes);
		if (wp.changes == NULL) {
			rc = WEBHOOK_PARSE_NOMEM;
			goto out;
		}
	}
	rc = parse_entries(&p, entries, &wp);
out:
	if (rc != 0) {
		webhook_parsed_free(&wp);
		return rc;
	}
	*out = wp;
	return WEBHOOK_PARSE_OK;
}
