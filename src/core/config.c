/* config: one table of settings drives parsing, validation, printing, docs.
 *
 * Design: config_defs[] lists every setting with its type, the offset of
 * its field in struct config, its default text, bounds and help. Loading
 * resolves each setting in turn (environment, else .env, else default; an
 * empty value counts as unset) and parses the text with the parser of its
 * type, writing through the offset. The .env file is parsed first into one
 * slot per known setting (unknown keys are checked for syntax, then
 * ignored); we never call setenv, the struct is the only result.
 *
 * Secret values (SECRET_STRING, KEY32_BASE64 and URL passwords) are never
 * echoed in error messages or printed by config_print. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sodium.h>

enum config_type {
	CT_INT,           /* int within [min, max] */
	CT_BOOL,          /* true/false/1/0/yes/no/on/off */
	CT_STRING,        /* char *, any non-empty text */
	CT_ENUM,          /* int index into choices */
	CT_SIZE,          /* size_t bytes within [min, max], k/m/g suffix */
	CT_URL,           /* char *, must start with one of choices */
	CT_KEY32_BASE64,  /* uint8_t[32] + bool flag at flag_offset */
	CT_SECRET_STRING, /* char *, never echoed or printed */
};

struct config_def {
	const char *name;
	enum config_type type;
	size_t offset;               /* field in struct config */
	size_t flag_offset;          /* KEY32_BASE64: its "set" bool */
	const char *def;             /* default text; NULL = unset */
	long long min, max;          /* INT, SIZE */
	const char *const *choices;  /* ENUM values, URL prefixes; NULL-ended */
	const char *help;
};

#define KIB 1024LL
#define MIB (1024LL * 1024LL)
#define GIB (1024LL * 1024LL * 1024LL)

#define DOTENV_MAX_BYTES (1024 * 1024)
#define KEY_FILE_MAX_BYTES 4096
#define SHOWN_VALUE_MAX 64
#define KEY_BYTES 32

static const char *const log_levels[] = { "debug", "info", "warn", "error",
					  NULL };
static const char *const log_formats[] = { "json", "text", NULL };
static const char *const environments[] = { "development", "production",
					    NULL };
static const char *const database_prefixes[] = { "sqlite:", "postgresql://",
						 "postgres://", NULL };
static const char *const redis_prefixes[] = { "redis://", "rediss://", NULL };
static const char *const http_prefixes[] = { "http://", "https://", NULL };

/* The order of the fields in enum log_level / log_format / environment
 * must match the choices above; an ENUM field is written as an int. */
_Static_assert(LOG_DEBUG == 0 && LOG_INFO == 1 && LOG_WARN == 2 &&
		       LOG_ERROR == 3,
	       "log_levels[] order");
_Static_assert(LOG_FORMAT_JSON == 0 && LOG_FORMAT_TEXT == 1,
	       "log_formats[] order");
_Static_assert(ENV_DEVELOPMENT == 0 && ENV_PRODUCTION == 1,
	       "environments[] order");
_Static_assert(sizeof(enum log_level) == sizeof(int) &&
		       sizeof(enum log_format) == sizeof(int) &&
		       sizeof(enum environment) == sizeof(int),
	       "ENUM fields are written as int");

#define OFF(field) offsetof(struct config, field)
#define INT_DEF(n, f, d, lo, hi, h)                                          \
	{ .name = (n), .type = CT_INT, .offset = OFF(f), .def = (d),         \
	  .min = (lo), .max = (hi), .help = (h) }
#define SIZE_DEF(n, f, d, lo, hi, h)                                         \
	{ .name = (n), .type = CT_SIZE, .offset = OFF(f), .def = (d),        \
	  .min = (lo), .max = (hi), .help = (h) }
#define STR_DEF(n, t, f, d, ch, h)                                           \
	{ .name = (n), .type = (t), .offset = OFF(f), .def = (d),            \
	  .choices = (ch), .help = (h) }

static const struct config_def config_defs[] = {
	/* server */
	STR_DEF("BIND_ADDRESS", CT_STRING, bind_address, "127.0.0.1", NULL,
		"Address the HTTP server listens on."),
	INT_DEF("PORT", port, "8000", 1, 65535, "HTTP port."),
	INT_DEF("HTTP_THREADS", http_threads, "0", 0, 256,
		"HTTP worker threads; 0 means two per CPU core."),
	INT_DEF("REQUEST_TIMEOUT", request_timeout_s, "30", 1, 3600,
		"Seconds before an idle or slow request is cut off."),
	INT_DEF("SLOW_REQUEST_MS", slow_request_ms, "500", 1, 600000,
		"Requests slower than this many milliseconds are logged."),
	SIZE_DEF("MAX_BODY_BYTES", max_body_bytes, "4194304", KIB, GIB,
		 "Largest accepted request body."),
	SIZE_DEF("MAX_HEADER_BYTES", max_header_bytes, "16384", KIB, MIB,
		 "Largest accepted request header block."),
	INT_DEF("MAX_CONNECTIONS", max_connections, "10000", 1, 1000000,
		"Concurrent HTTP connections before new ones are refused."),
	/* storage */
	STR_DEF("DATABASE_URL", CT_URL, database_url, "sqlite:data/pytake.db",
		database_prefixes,
		"Database: sqlite:PATH or a PostgreSQL connection URL."),
	INT_DEF("DB_POOL_SIZE", db_pool_size, "0", 0, 1024,
		"Database connections; 0 means HTTP_THREADS + 4."),
	STR_DEF("DATA_DIR", CT_STRING, data_dir, "data", NULL,
		"Directory for generated keys and local files (mode 0700)."),
	STR_DEF("REDIS_URL", CT_URL, redis_url, NULL, redis_prefixes,
		"Redis for shared rate limits and revocations; unset = in-process."),
	/* auth */
	STR_DEF("JWT_SECRET_KEY", CT_SECRET_STRING, jwt_secret_key, NULL, NULL,
		"Secret signing access tokens (32+ bytes). Required in "
		"production; generated into DATA_DIR in development."),
	INT_DEF("ACCESS_TOKEN_EXPIRE_MINUTES", access_token_expire_minutes,
		"15", 1, 1440, "Access token lifetime in minutes."),
	INT_DEF("REFRESH_TOKEN_EXPIRE_DAYS", refresh_token_expire_days, "7", 1,
		365, "Refresh token lifetime in days."),
	{ .name = "RATE_LIMIT_ENABLED", .type = CT_BOOL,
	  .offset = OFF(rate_limit_enabled), .def = "true",
	  .help = "Whether per-client rate limiting is on." },
	INT_DEF("RATE_LIMIT_REQUESTS_PER_MINUTE",
		rate_limit_requests_per_minute, "600", 1, 1000000,
		"Requests per minute allowed per client."),
	/* logging */
	STR_DEF("LOG_LEVEL", CT_ENUM, log_level, "info", log_levels,
		"Lowest level written to the log."),
	STR_DEF("LOG_FORMAT", CT_ENUM, log_format, "json", log_formats,
		"Log line format."),
	STR_DEF("ENVIRONMENT", CT_ENUM, environment, "development",
		environments,
		"production requires JWT_SECRET_KEY and ENCRYPTION_KEY."),
	/* Meta */
	STR_DEF("META_APP_SECRET", CT_SECRET_STRING, meta_app_secret, NULL,
		NULL, "Meta app secret; verifies webhook signatures."),
	STR_DEF("WEBHOOK_VERIFY_TOKEN", CT_SECRET_STRING, webhook_verify_token,
		NULL, NULL, "Token Meta echoes when subscribing the webhook."),
	STR_DEF("GRAPH_API_BASE_URL", CT_URL, graph_api_base_url,
		"https://graph.facebook.com/v24.0", http_prefixes,
		"Base URL of the Meta Graph API."),
	/* secrets at rest */
	{ .name = "ENCRYPTION_KEY", .type = CT_KEY32_BASE64,
	  .offset = OFF(encryption_key), .flag_offset = OFF(encryption_key_set),
	  .help = "AES-256 key for secrets at rest. Required in production; "
		  "generated into DATA_DIR in development." },
	/* campaigns, contacts */
	INT_DEF("CAMPAIGN_MAX_ATTEMPTS", campaign_max_attempts, "5", 1, 20,
		"Send attempts per campaign recipient."),
	STR_DEF("OPT_OUT_KEYWORDS", CT_STRING, opt_out_keywords,
		"STOP,SAIR,PARAR,CANCELAR,UNSUBSCRIBE", NULL,
		"Comma-separated inbound words that opt a contact out."),
};

#define N_DEFS (sizeof config_defs / sizeof config_defs[0])
_Static_assert(sizeof config_defs / sizeof config_defs[0] ==
		       CONFIG_SETTING_COUNT,
	       "CONFIG_SETTING_COUNT matches the table");

/* ---- small helpers ---------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool is_secret_type(enum config_type t)
{
	return t == CT_SECRET_STRING || t == CT_KEY32_BASE64;
}

/* Copy text into out (outlen >= 4) for quoting in a message: control and
 * non-ASCII bytes become '?', long text is cut with "...". */
static void shown_value(const char *text, char *out, size_t outlen)
{
	size_t n = 0, i;
	size_t cap = outlen - 1 < SHOWN_VALUE_MAX ? outlen - 1 : SHOWN_VALUE_MAX;
	bool cut = strlen(text) > cap;

	if (cut)
		cap -= 3;
	for (i = 0; text[i] != '\0' && n < cap; i++) {
		unsigned char c = (unsigned char)text[i];
		out[n++] = (c < 0x20 || c >= 0x7f || c == '"') ? '?' : (char)c;
	}
	if (cut) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
}

static void choices_text(const char *const *choices, const char *last_sep,
			 char *out, size_t outlen)
{
	size_t used = 0;
	int n = 0, i;

	while (choices[n] != NULL)
		n++;
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		const char *sep = i == 0 ? "" : (i == n - 1 ? last_sep : ", ");
		int w = snprintf(out + used, outlen - used, "%s%s", sep,
				 choices[i]);
		if (w < 0 || (size_t)w >= outlen - used)
			return;
		used += (size_t)w;
	}
}

/* Bounded appender for building masked text. */
struct outbuf {
	char *p;
	size_t len, cap; /* cap includes the NUL */
};

static void out_add(struct outbuf *o, const char *s, size_t n)
{
	if (o->len + n >= o->cap)
		n = o->cap - 1 - o->len;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

/* Length of the user:password@host part after "scheme://" (up to / ? #). */
static size_t authority_len(const char *auth)
{
	return strcspn(auth, "/?#");
}

/* Write into out (outlen > 0) the URL with its password replaced by "****":
 * the one in user:password@ and any password=... query parameter. */
static void mask_url(const char *url, char *out, size_t outlen)
{
	struct outbuf o = { .p = out, .len = 0, .cap = outlen };
	const char *sep = strstr(url, "://"), *p = url, *at = NULL, *colon;
	size_t i, alen;

	out[0] = '\0';
	if (sep != NULL) {
		const char *auth = sep + 3;
		alen = authority_len(auth);
		for (i = 0; i < alen; i++)
			if (auth[i] == '@')
				at = auth + i;
		colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
		if (colon != NULL) {
			out_add(&o, url, (size_t)(colon + 1 - url));
			out_add(&o, "****", 4);
			p = at;
		}
	}
	while (*p != '\0') {
		size_t n = strcspn(p, "?&");
		out_add(&o, p, n);
		p += n;
		if (*p == '\0')
			break;
		out_add(&o, p, 1);
		p++;
		if (strncasecmp(p, "password=", 9) == 0) {
			out_add(&o, p, 9);
			out_add(&o, "****", 4);
			p += 9 + strcspn(p + 9, "&#");
		}
	}
}

/* ---- value parsers ---------------------------------------------------- */

/* Strict integer: optional '-', digits only, whole string, no spaces. */
static int parse_ll(const char *text, long long *out, char **rest)
{
	char *end = NULL;
	long long v;

	if (!(isdigit((unsigned char)text[0]) ||
	      (text[0] == '-' && isdigit((unsigned char)text[1]))))
		return -1;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || end == text)
		return -1;
	*out = v;
	*rest = end;
	return 0;
}

static int parse_int(const struct config_def *d, const char *text,
		     struct config *cfg)
{
	long long v;
	char *rest;

	if (parse_ll(text, &v, &rest) != 0 || *rest != '\0' || v < d->min ||
	    v > d->max)
		return -1;
	*(int *)((char *)cfg + d->offset) = (int)v;
	return 0;
}

static int parse_size(const struct config_def *d, const char *text,
		      struct config *cfg)
{
	long long v, mult = 1;
	char *rest;

	if (parse_ll(text, &v, &rest) != 0 || v < 0)
		return -1;
	if (*rest != '\0') {
		switch (tolower((unsigned char)*rest)) {
		case 'k': mult = KIB; break;
		case 'm': mult = MIB; break;
		case 'g': mult = GIB; break;
		default: return -1;
		}
		if (rest[1] != '\0')
			return -1;
	}
	if (v > d->max / mult || v * mult < d->min || v * mult > d->max)
		return -1;
	*(size_t *)((char *)cfg + d->offset) = (size_t)(v * mult);
	return 0;
}

static int parse_bool(const struct config_def *d, const char *text,
		      struct config *cfg)
{
	static const char *const yes[] = { "true", "1", "yes", "on" };
	static const char *const no[] = { "false", "0", "no", "off" };
	bool *field = (bool *)((char *)cfg + d->offset);
	size_t i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*field = true;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*field = false;
			return 0;
		}
	}
	return -1;
}

static int parse_enum(const struct config_def *d, const char *text,
		      struct config *cfg)
{
	int i;

	for (i = 0; d->choices[i] != NULL; i++)
		if (strcasecmp(text, d->choices[i]) == 0) {
			*(int *)((char *)cfg + d->offset) = i;
			return 0;
		}
	return -1;
}

static bool has_control_or_space(const char *text)
{
	for (; *text != '\0'; text++)
		if ((unsigned char)*text <= 0x20 || *text == 0x7f)
			return true;
	return false;
}

static int store_string(const struct config_def *d, const char *text,
			struct config *cfg)
{
	char **field = (char **)((char *)cfg + d->offset);
	char *copy = strdup(text);

	if (copy == NULL)
		return -2;
	free(*field);
	*field = copy;
	return 0;
}

static int parse_url(const struct config_def *d, const char *text,
		     struct config *cfg)
{
	int i;

	if (has_control_or_space(text))
		return -1;
	for (i = 0; d->choices[i] != NULL; i++) {
		size_t plen = strlen(d->choices[i]);
		if (strncasecmp(text, d->choices[i], plen) == 0 &&
		    text[plen] != '\0')
			return store_string(d, text, cfg);
	}
	return -1;
}

/* Decode base64 (standard or URL-safe alphabet, padding optional) that
 * must be exactly KEY_BYTES long. */
static int decode_key32(const char *text, uint8_t out[KEY_BYTES])
{
	static const int variants[] = {
		sodium_base64_VARIANT_ORIGINAL,
		sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
		sodium_base64_VARIANT_URLSAFE,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING,
	};
	uint8_t buf[KEY_BYTES + 3];
	size_t i, n = 0;
	const char *end = NULL;
	size_t len = strlen(text);

	for (i = 0; i < sizeof variants / sizeof variants[0]; i++) {
		if (sodium_base642bin(buf, sizeof buf, text, len, NULL, &n, &end,
				      variants[i]) == 0 &&
		    end == text + len && n == KEY_BYTES) {
			memcpy(out, buf, KEY_BYTES);
			sodium_memzero(buf, sizeof buf);
			return 0;
		}
	}
	sodium_memzero(buf, sizeof buf);
	return -1;
}

static int parse_key32(const struct config_def *d, const char *text,
		       struct config *cfg)
{
	uint8_t *key = (uint8_t *)((char *)cfg + d->offset);

	if (decode_key32(text, key) != 0)
		return -1;
	*(bool *)((char *)cfg + d->flag_offset) = true;
	return 0;
}

/* Parse text into the field of d. 0 ok, -1 invalid value, -2 no memory. */
static int parse_value(const struct config_def *d, const char *text,
		       struct config *cfg)
{
	switch (d->type) {
	case CT_INT: return parse_int(d, text, cfg);
	case CT_SIZE: return parse_size(d, text, cfg);
	case CT_BOOL: return parse_bool(d, text, cfg);
	case CT_ENUM: return parse_enum(d, text, cfg);
	case CT_URL: return parse_url(d, text, cfg);
	case CT_KEY32_BASE64: return parse_key32(d, text, cfg);
	case CT_STRING:
	case CT_SECRET_STRING: return store_string(d, text, cfg);
	}
	return -1;
}

/* What a setting accepts, in words, for errors and docs. */
static void accepts_text(const struct config_def *d, char *out, size_t outlen)
{
	char list[256];

	switch (d->type) {
	case CT_INT:
		snprintf(out, outlen, "an integer from %lld to %lld", d->min,
			 d->max);
		break;
	case CT_SIZE:
		snprintf(out, outlen,
			 "a size in bytes from %lld to %lld (suffix k, m or g "
			 "allowed)",
			 d->min, d->max);
		break;
	case CT_BOOL:
		snprintf(out, outlen, "true/false, 1/0, yes/no or on/off");
		break;
	case CT_ENUM:
		choices_text(d->choices, " or ", list, sizeof list);
		snprintf(out, outlen, "one of %s", list);
		break;
	case CT_URL:
		choices_text(d->choices, " or ", list, sizeof list);
		snprintf(out, outlen, "a URL starting with %s", list);
		break;
	case CT_KEY32_BASE64:
		snprintf(out, outlen, "base64 that decodes to exactly 32 bytes");
		break;
	case CT_STRING:
		snprintf(out, outlen, "text");
		break;
	case CT_SECRET_STRING:
		snprintf(out, outlen, "secret text");
		break;
	}
}

static void value_error(const struct config_def *d, const char *text,
			char *err, size_t errlen)
{
	char accepts[320], shown[SHOWN_VALUE_MAX + 1], masked[512];

	accepts_text(d, accepts, sizeof accepts);
	if (is_secret_type(d->type)) {
		set_err(err, errlen, "%s: expected %s (value not shown, %zu "
			"characters)", d->name, accepts, strlen(text));
		return;
	}
	if (d->type == CT_URL) {
		mask_url(text, masked, sizeof masked);
		text = masked;
	}
	shown_value(text, shown, sizeof shown);
	set_err(err, errlen, "%s: expected %s, got \"%s\"", d->name, accepts,
		shown);
}

/* ---- .env parsing ----------------------------------------------------- */

static int find_def(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < N_DEFS; i++)
		if (strlen(config_defs[i].name) == len &&
		    memcmp(config_defs[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

static bool only_comment_left(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0' || *p == '#';
}

/* Parse the value part of one line (p points after '=') into out
 * (outlen > strlen(p)). Returns NULL on success or a message. */
static const char *dotenv_value(const char *p, char *out)
{
	size_t n = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\'') {
		const char *close = strchr(p + 1, '\'');
		if (close == NULL)
			return "unterminated single quote";
		n = (size_t)(close - (p + 1));
		memcpy(out, p + 1, n);
		p = close + 1;
	} else if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\0')
				return "unterminated double quote";
			if (*p == '\\') {
				p++;
				if (*p == 'n')
					out[n++] = '\n';
				else if (*p == '"' || *p == '\\')
					out[n++] = *p;
				else
					return "unknown escape in double quotes "
					       "(use \\n, \\\" or \\\\)";
			} else {
				out[n++] = *p;
			}
		}
		p++;
	} else {
		const char *start = p;
		/* '#' after whitespace starts a comment (p[-1] is '=' or ws) */
		while (*p != '\0' &&
		       !(*p == '#' && (p[-1] == ' ' || p[-1] == '\t')))
			p++;
		n = (size_t)(p - start);
		while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
			n--;
		memcpy(out, start, n);
		out[n] = '\0';
		return NULL;
	}
	out[n] = '\0';
	if (!only_comment_left(p))
		return "unexpected text after the closing quote";
	return NULL;
}

/* Parse one line (NUL-terminated, no newline). Blank and comment lines are
 * fine. A known key's value goes into vals[index] (replacing an earlier
 * one). Returns NULL or a message; -2 in *oom on allocation failure. */
static const char *dotenv_line(char *line, char *vals[N_DEFS], bool *oom)
{
	char *p = line, *key, *value;
	size_t keylen;
	const char *msg;
	int idx;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return NULL;
	if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
		p += 6;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	key = p;
	if (!(isalpha((unsigned char)*p) || *p == '_'))
		return "expected KEY=VALUE";
	while (isalnum((unsigned char)*p) || *p == '_')
		p++;
	keylen = (size_t)(p - key);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '=')
		return "expected KEY=VALUE";
	value = malloc(strlen(p) + 1);
	if (value == NULL) {
		*oom = true;
		return "out of memory";
	}
	msg = dotenv_value(p + 1, value);
	idx = find_def(key, keylen);
	if (msg != NULL || idx < 0) {
		free(value);
		return msg;
	}
	free(vals[idx]);
	vals[idx] = value;
	return NULL;
}

/* Read path whole into a NUL-terminated buffer (caller frees). Returns 0,
 * 1 if the file does not exist, -1 on error (message in err). */
static int read_small_file(const char *path, size_t max, char **out,
			   char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;
	int rc = -1;

	if (f == NULL) {
		if (errno == ENOENT)
			return 1;
		set_err(err, errlen, "%s: cannot open: %s", path,
			strerror(errno));
		return -1;
	}
	buf = malloc(max + 1);
	if (buf == NULL) {
		set_err(err, errlen, "%s: out of memory", path);
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		set_err(err, errlen, "%s: read error", path);
		goto out;
	}
	if (n > max) {
		set_err(err, errlen, "%s: larger than %zu bytes", path, max);
		goto out;
	}
	if (memchr(buf, '\0', n) != NULL) {
		set_err(err, errlen, "%s: contains a NUL byte", path);
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

static void free_vals(char *vals[N_DEFS])
{
	size_t i;

	for (i = 0; i < N_DEFS; i++) {
		if (vals[i] != NULL)
			sodium_memzero(vals[i], strlen(vals[i]));
		free(vals[i]);
		vals[i] = NULL;
	}
}

/* Parse the .env file at path into vals (one slot per setting). A missing
 * file is fine. Returns 0 or -1 with "path:line: message" in err. */
static int dotenv_load(const char *path, char *vals[N_DEFS], char *err,
		       size_t errlen)
{
	char *text = NULL, *line, *next;
	int rc, lineno = 0;

	rc = read_small_file(path, DOTENV_MAX_BYTES, &text, err, errlen);
	if (rc != 0)
		return rc > 0 ? 0 : -1;
	for (line = text; line != NULL; line = next) {
		const char *msg;
		bool oom = false;
		size_t len;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[len - 1] = '\0';
		lineno++;
		msg = dotenv_line(line, vals, &oom);
		if (msg != NULL) {
			set_err(err, errlen, "%s:%d: %s", path, lineno, msg);
			rc = -1;
			break;
		}
	}
	sodium_memzero(text, strlen(text));
	free(text);
	return rc;
}

/* ---- load ------------------------------------------------------------- */

static int apply_setting(struct config *cfg, size_t i, const char *dotenv,
			 char *err, size_t errlen)
{
	const struct config_def *d = &config_defs[i];
	const char *text = getenv(d->name);
	int rc;

	cfg->sources[i] = CONFIG_SRC_ENV;
	if (text == NULL || text[0] == '\0') {
		text = dotenv;
		cfg->sources[i] = CONFIG_SRC_DOTENV;
	}
	if (text == NULL || text[0] == '\0') {
		text = d->def;
		cfg->sources[i] = CONFIG_SRC_DEFAULT;
	}
	if (text == NULL)
		return 0;
	rc = parse_value(d, text, cfg);
	if (rc == -2)
		set_err(err, errlen, "%s: out of memory", d->name);
	else if (rc != 0)
		value_error(d, text, err, errlen);
	return rc == 0 ? 0 : -1;
}

int config_load(struct config *cfg, const char *env_file, char *err,
		size_t errlen)
{
	char *vals[N_DEFS] = { 0 };
	size_t i;
	int rc = -1;

	memset(cfg, 0, sizeof *cfg);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (sodium_init() < 0) {
		set_err(err, errlen, "config: libsodium failed to initialise");
		goto out;
	}
	if (env_file != NULL && dotenv_load(env_file, vals, err, errlen) != 0)
		goto out;
	for (i = 0; i < N_DEFS; i++)
		if (apply_setting(cfg, i, vals[i], err, errlen) != 0)
			goto out;
	rc = 0;
out:
	free_vals(vals);
	if (rc != 0)
		config_release(cfg);
	return rc;
}

/* ---- secrets ---------------------------------------------------------- */

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	size_t len = strlen(dir), i;
	struct stat st;

	if (len == 0 || len >= sizeof path) {
		set_err(err, errlen, "DATA_DIR: path empty or too long");
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			set_err(err, errlen, "DATA_DIR: cannot create %s: %s",
				path, strerror(errno));
			return -1;
		}
		path[i] = dir[i];
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "DATA_DIR: %s is not a directory", dir);
		return -1;
	}
	return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Publish text as path atomically, first writer wins: write a private
 * temporary file (O_EXCL, 0600), then link(2) it to path, which fails with
 * EEXIST if another process got there first. Either way the temporary is
 * removed and path holds one complete value. Returns 0 (ours or theirs) or
 * -1 with a message. */
static int publish_file(const char *path, const char *text, char *err,
			size_t errlen)
{
	char tmp[PATH_MAX];
	uint32_t nonce = 0;
	int fd = -1, rc = -1, n;

	if (RAND_bytes((unsigned char *)&nonce, sizeof nonce) != 1)
		nonce = 0; /* O_EXCL still keeps the name private */
	n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%08x", path, (long)getpid(),
		     (unsigned)nonce);
	if (n < 0 || (size_t)n >= sizeof tmp) {
		set_err(err, errlen, "%s: path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		set_err(err, errlen, "%s: cannot create: %s", tmp,
			strerror(errno));
		return -1;
	}
	if (write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0) {
		set_err(err, errlen, "%s: write failed: %s", tmp,
			strerror(errno));
		goto out;
	}
	if (link(tmp, path) != 0 && errno != EEXIST) {
		set_err(err, errlen, "%s: cannot create: %s", path,
			strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

/* Read a key file's text, trimmed of surrounding whitespace. Returns 0 with
 * *out (caller frees), 1 if missing, -1 on error. */
static int read_key_file(const char *path, char **out, char *err,
			 size_t errlen)
{
	char *text = NULL;
	size_t start = 0, len;
	int rc = read_small_file(path, KEY_FILE_MAX_BYTES, &text, err, errlen);

	if (rc != 0)
		return rc;
	len = strlen(text);
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		text[--len] = '\0';
	while (isspace((unsigned char)text[start]))
		start++;
	memmove(text, text + start, len - start + 1);
	*out = text;
	return 0;
}

/* Return (in *out, caller frees) the key text stored in dir/file, creating
 * it from 32 random bytes in the given base64 variant if missing. */
static int load_or_create_key(const char *dir, const char *file, int variant,
			      char **out, char *err, size_t errlen)
{
	char path[PATH_MAX], encoded[sodium_base64_ENCODED_LEN(KEY_BYTES,
				       sodium_base64_VARIANT_ORIGINAL) + 1];
	unsigned char raw[KEY_BYTES];
	int n, rc;

	n = snprintf(path, sizeof path, "%s/%s", dir, file);
	if (n < 0 || (size_t)n >= sizeof path) {
		set_err(err, errlen, "DATA_DIR: path too long");
		return -1;
	}
	rc = read_key_file(path, out, err, errlen);
	if (rc <= 0)
		return rc;
	if (RAND_bytes(raw, sizeof raw) != 1) {
		set_err(err, errlen, "%s: no randomness available", path);
		return -1;
	}
	sodium_bin2base64(encoded, sizeof encoded - 1, raw, sizeof raw,
			  variant);
	n = (int)strlen(encoded);
	encoded[n] = '\n';
	encoded[n + 1] = '\0';
	sodium_memzero(raw, sizeof raw);
	rc = publish_file(path, encoded, err, errlen);
	sodium_memzero(encoded, sizeof encoded);
	if (rc != 0)
		return -1;
	rc = read_key_file(path, out, err, errlen);
	if (rc > 0)
		set_err(err, errlen, "%s: vanished after creation", path);
	return rc == 0 ? 0 : -1;
}

static size_t def_index(const char *name)
{
	size_t i;

	for (i = 0; i < N_DEFS; i++)
		if (strcmp(config_defs[i].name, name) == 0)
			break;
	return i;
}

static int ensure_jwt(struct config *cfg, char *err, size_t errlen)
{
	char *text = NULL;

	if (load_or_create_key(cfg->data_dir, "jwt_secret.key",
			       sodium_base64_VARIANT_URLSAFE_NO_PADDING, &text,
			       err, errlen) != 0)
		return -1;
	if (strlen(text) < KEY_BYTES) {
		set_err(err, errlen, "%s/jwt_secret.key: shorter than %d bytes",
			cfg->data_dir, KEY_BYTES);
		sodium_memzero(text, strlen(text));
		free(text);
		return -1;
	}
	cfg->jwt_secret_key = text;
	cfg->sources[def_index("JWT_SECRET_KEY")] = CONFIG_SRC_GENERATED;
	return 0;
}

static int ensure_encryption_key(struct config *cfg, char *err,
				 size_t errlen)
{
	char *text = NULL;
	int rc = -1;

	if (load_or_create_key(cfg->data_dir, "encryption.key",
			       sodium_base64_VARIANT_ORIGINAL, &text, err,
			       errlen) != 0)
		return -1;
	if (decode_key32(text, cfg->encryption_key) != 0) {
		set_err(err, errlen,
			"%s/encryption.key: expected base64 that decodes to "
			"exactly 32 bytes",
			cfg->data_dir);
		goto out;
	}
	cfg->encryption_key_set = true;
	cfg->sources[def_index("ENCRYPTION_KEY")] = CONFIG_SRC_GENERATED;
	rc = 0;
out:
	sodium_memzero(text, strlen(text));
	free(text);
	return rc;
}

static int check_production(const struct config *cfg, char *err,
			    size_t errlen)
{
	if (cfg->jwt_secret_key == NULL) {
		set_err(err, errlen,
			"JWT_SECRET_KEY is required when ENVIRONMENT=production");
		return -1;
	}
	if (strlen(cfg->jwt_secret_key) < KEY_BYTES) {
		set_err(err, errlen,
			"JWT_SECRET_KEY: must be at least %d bytes when "
			"ENVIRONMENT=production (value not shown, %zu "
			"characters)",
			KEY_BYTES, strlen(cfg->jwt_secret_key));
		return -1;
	}
	if (!cfg->encryption_key_set) {
		set_err(err, errlen,
			"ENCRYPTION_KEY is required when ENVIRONMENT=production");
		return -1;
	}
	return 0;
}

int config_ensure_secrets(struct config *cfg, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (cfg->environment == ENV_PRODUCTION)
		return check_production(cfg, err, errlen);
	if (cfg->jwt_secret_key != NULL && cfg->encryption_key_set)
		return 0;
	if (cfg->data_dir == NULL) {
		set_err(err, errlen, "DATA_DIR: not set");
		return -1;
	}
	if (make_dirs(cfg->data_dir, err, errlen) != 0)
		return -1;
	if (cfg->jwt_secret_key == NULL && ensure_jwt(cfg, err, errlen) != 0)
		return -1;
	if (!cfg->encryption_key_set &&
	    ensure_encryption_key(cfg, err, errlen) != 0)
		return -1;
	return 0;
}

/* ---- print, docs, release --------------------------------------------- */

static const char *source_name(enum config_source s)
{
	switch (s) {
	case CONFIG_SRC_DEFAULT: return "default";
	case CONFIG_SRC_DOTENV: return ".env";
	case CONFIG_SRC_ENV: return "env";
	case CONFIG_SRC_GENERATED: return "generated";
	}
	return "?";
}

/* The printable value of setting d into out; secrets masked. */
static void format_value(const struct config *cfg,
			 const struct config_def *d, char *out, size_t outlen)
{
	const char *base = (const char *)cfg;
	const char *s;

	switch (d->type) {
	case CT_INT:
		snprintf(out, outlen, "%d", *(const int *)(base + d->offset));
		break;
	case CT_SIZE:
		snprintf(out, outlen, "%zu",
			 *(const size_t *)(base + d->offset));
		break;
	case CT_BOOL:
		snprintf(out, outlen, "%s",
			 *(const bool *)(base + d->offset) ? "true" : "false");
		break;
	case CT_ENUM:
		snprintf(out, outlen, "%s",
			 d->choices[*(const int *)(base + d->offset)]);
		break;
	case CT_KEY32_BASE64:
		snprintf(out, outlen, "%s",
			 *(const bool *)(base + d->flag_offset)
				 ? "****(32 bytes)" : "");
		break;
	case CT_SECRET_STRING:
		s = *(char *const *)(base + d->offset);
		if (s == NULL)
			snprintf(out, outlen, "%s", "");
		else
			snprintf(out, outlen, "****(%zu chars)", strlen(s));
		break;
	case CT_URL:
		s = *(char *const *)(base + d->offset);
		if (s == NULL)
			snprintf(out, outlen, "%s", "");
		else
			mask_url(s, out, outlen);
		break;
	case CT_STRING:
		s = *(char *const *)(base + d->offset);
		snprintf(out, outlen, "%s", s == NULL ? "" : s);
		break;
	}
}

void config_print(const struct config *cfg, FILE *out)
{
	char value[1024];
	size_t i;

	for (i = 0; i < N_DEFS; i++) {
		format_value(cfg, &config_defs[i], value, sizeof value);
		fprintf(out, "%s=%s  # %s\n", config_defs[i].name, value,
			source_name(cfg->sources[i]));
	}
}

void config_print_docs(FILE *out)
{
	char accepts[320];
	size_t i;

	fprintf(out, "| Name | Default | Accepts | Meaning |\n");
	fprintf(out, "|------|---------|---------|---------|\n");
	for (i = 0; i < N_DEFS; i++) {
		const struct config_def *d = &config_defs[i];
		accepts_text(d, accepts, sizeof accepts);
		fprintf(out, "| `%s` | %s%s%s | %s | %s |\n", d->name,
			d->def ? "`" : "", d->def ? d->def : "(unset)",
			d->def ? "`" : "", accepts, d->help);
	}
}

void config_release(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < N_DEFS; i++) {
		const struct config_def *d = &config_defs[i];
		char **field;

		if (d->type != CT_STRING && d->type != CT_URL &&
		    d->type != CT_SECRET_STRING)
			continue;
		field = (char **)((char *)cfg + d->offset);
		if (*field != NULL && d->type == CT_SECRET_STRING)
			sodium_memzero(*field, strlen(*field));
		free(*field);
	}
	sodium_memzero(cfg, sizeof *cfg);
}
