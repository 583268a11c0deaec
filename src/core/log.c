/* log: structured lines, built in a stack buffer and written with one
 * write(2).
 *
 * Design: a line is assembled in a fixed LOG_LINE_MAX buffer. The tail
 * LOG_TAIL_RESERVE bytes are kept free for the closing of the line ("}\n" or
 * "\n") plus a truncation marker, so a line is always well-formed even when
 * fields do not fit: fields that do not fit are dropped and the line ends
 * with "truncated":true (JSON) or "truncated=true" (text). A single string
 * value longer than LOG_VALUE_MAX input bytes is cut and ends in "...".
 * Strings are escaped as JSON; invalid UTF-8 becomes U+FFFD. */
#include "core/log.h"

#include <errno.h>
#include <math.h>
#include <unistd.h>

#include "core/timeutil.h"

#define LOG_LINE_MAX 8192
#define LOG_TAIL_RESERVE 40
#define LOG_VALUE_MAX 2048
#define LOG_CUT_MARKER "..."

static enum log_level g_min_level = LOG_INFO;
static enum log_format g_format = LOG_FORMAT_JSON;
static int g_fd = 2;
static _Thread_local const char *t_request_id;

void log_setup(enum log_level min, enum log_format fmt)
{
	g_min_level = min;
	g_format = fmt;
}

void log_set_fd(int fd)
{
	g_fd = fd;
}

bool log_enabled(enum log_level lvl)
{
	return lvl >= g_min_level;
}

void log_set_request_id(const char *rid)
{
	t_request_id = rid;
}

/* ---- line buffer ---- */

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	size_t cap;     /* usable before the reserved tail */
	bool overflow;  /* the last append did not fit */
	bool dropped;   /* a field was left out */
};

/* Append n bytes if they fit below cap; false (and overflow) otherwise. */
static bool put(struct line *l, const char *s, size_t n)
{
	if (l->overflow || n > l->cap - l->len) {
		l->overflow = true;
		return false;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return true;
}

static bool put_str(struct line *l, const char *s)
{
	return put(l, s, strlen(s));
}

/* Length of the valid UTF-8 sequence starting at s (at most n bytes
 * available), or 0 when invalid (overlong, surrogate, > U+10FFFF, cut). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		need = 2;
		cp = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		need = 3;
		cp = s[0] & 0x0F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return 0;
	return need;
}

/* Escaped form of one ASCII byte into out (>= 7 bytes); returns length. */
static size_t escape_ascii(unsigned char c, char *out)
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '"': memcpy(out, "\\\"", 2); return 2;
	case '\\': memcpy(out, "\\\\", 2); return 2;
	case '\n': memcpy(out, "\\n", 2); return 2;
	case '\r': memcpy(out, "\\r", 2); return 2;
	case '\t': memcpy(out, "\\t", 2); return 2;
	case '\b': memcpy(out, "\\b", 2); return 2;
	case '\f': memcpy(out, "\\f", 2); return 2;
	default: break;
	}
	if (c < 0x20 || c == 0x7F) {
		memcpy(out, "\\u00", 4);
		out[4] = hex[c >> 4];
		out[5] = hex[c & 0xF];
		return 6;
	}
	out[0] = (char)c;
	return 1;
}

/* Append s escaped for a JSON string (without quotes). At most max input
 * bytes are used, and never more than the line has room for (keeping one
 * byte for a closing quote); a longer string is cut at a character boundary
 * and ends with LOG_CUT_MARKER. Returns false if the line overflowed. */
static bool put_escaped(struct line *l, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;
	const size_t slack = sizeof LOG_CUT_MARKER; /* marker + closing quote */
	char esc[8];

	if (l->overflow || l->cap - l->len < slack) {
		l->overflow = true;
		return false;
	}
	while (i < n) {
		size_t k = utf8_seq_len(p + i, n - i);
		const char *out = s + i;
		size_t out_len = k;

		if (k == 0) {
			out = "\\ufffd";
			out_len = 6;
			k = 1;
		} else if (k == 1) {
			out = esc;
			out_len = escape_ascii(p[i], esc);
		}
		if (i + k > max || out_len > l->cap - l->len - slack)
			return put_str(l, LOG_CUT_MARKER);
		put(l, out, out_len);
		i += k;
	}
	return true;
}

static bool put_quoted(struct line *l, const char *s, size_t max)
{
	return put(l, "\"", 1) && put_escaped(l, s, max) && put(l, "\"", 1);
}

/* Text values are bare when they hold only safe printable characters. */
static bool needs_quotes(const char *s)
{
	if (*s == '\0')
		return true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7F)
			return true;
	return false;
}

static bool put_number(struct line *l, const struct log_field *f)
{
	char num[64];
	int n;

	if (f->type == LF_INT)
		n = snprintf(num, sizeof num, "%lld", f->i);
	else if (!isfinite(f->d))
		n = snprintf(num, sizeof num, "null");
	else
		n = snprintf(num, sizeof num, "%.3f", f->d);
	if (n < 0 || (size_t)n >= sizeof num)
		return false;
	return put(l, num, (size_t)n);
}

static bool put_value(struct line *l, const struct log_field *f, bool text)
{
	switch (f->type) {
	case LF_STR:
		if (f->s == NULL)
			return put_str(l, "null");
		if (text && !needs_quotes(f->s))
			return put_escaped(l, f->s, LOG_VALUE_MAX);
		return put_quoted(l, f->s, LOG_VALUE_MAX);
	case LF_BOOL:
		return put_str(l, f->i ? "true" : "false");
	case LF_INT:
	case LF_DOUBLE:
		return put_number(l, f);
	}
	return put_str(l, "null");
}

/* One field, or nothing at all if it does not fit (the line is rolled back
 * so it stays well-formed). */
static void put_field(struct line *l, const struct log_field *f, bool text)
{
	size_t mark = l->len;
	bool ok;

	if (f->key == NULL)
		return;
	if (text)
		ok = put(l, " ", 1) && put_escaped(l, f->key, LOG_VALUE_MAX) &&
		     put(l, "=", 1);
	else
		ok = put(l, ",", 1) && put_quoted(l, f->key, LOG_VALUE_MAX) &&
		     put(l, ":", 1);
	if (ok)
		ok = put_value(l, f, text);
	if (!ok) {
		l->len = mark;
		l->overflow = false;
		l->dropped = true;
	}
}

static const char *level_name(enum log_level lvl, bool upper)
{
	switch (lvl) {
	case LOG_DEBUG: return upper ? "DEBUG" : "debug";
	case LOG_INFO: return upper ? "INFO" : "info";
	case LOG_WARN: return upper ? "WARN" : "warn";
	case LOG_ERROR: return upper ? "ERROR" : "error";
	}
	return upper ? "INFO" : "info";
}

static void build_json(struct line *l, enum log_level lvl, const char *ts,
		       const char *msg, const struct log_field *fields, int n)
{
	put_str(l, "{\"ts\":\"");
	put_str(l, ts);
	put_str(l, "\",\"level\":\"");
	put_str(l, level_name(lvl, false));
	put_str(l, "\",\"msg\":");
	if (!put_quoted(l, msg, LOG_VALUE_MAX))
		return;
	if (t_request_id != NULL)
		put_field(l, &LF_S("request_id", t_request_id), false);
	for (int i = 0; i < n; i++)
		put_field(l, &fields[i], false);
}

static void build_text(struct line *l, enum log_level lvl, const char *ts,
		       const char *msg, const struct log_field *fields, int n)
{
	put_str(l, ts);
	put_str(l, " ");
	put_str(l, level_name(lvl, true));
	put_str(l, " ");
	if (!put_escaped(l, msg, LOG_VALUE_MAX))
		return;
	if (t_request_id != NULL)
		put_field(l, &LF_S("request_id", t_request_id), true);
	for (int i = 0; i < n; i++)
		put_field(l, &fields[i], true);
}

/* Close the line into the reserved tail. */
static void finish(struct line *l, bool text)
{
	const char *tail;

	if (text)
		tail = l->dropped ? " truncated=true\n" : "\n";
	else
		tail = l->dropped ? ",\"truncated\":true}\n" : "}\n";
	l->cap = sizeof l->buf;
	l->overflow = false;
	put_str(l, tail);
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += w;
		len -= (size_t)w;
	}
}

void log_fields(enum log_level lvl, const char *msg,
		const struct log_field *fields, int n)
{
	struct line l;
	char ts[TIME_RFC3339_LEN];
	bool text = g_format == LOG_FORMAT_TEXT;

	if (!log_enabled(lvl))
		return;
	if (msg == NULL)
		msg = "";
	if (fields == NULL || n < 0)
		n = 0;
	l.len = 0;
	l.cap = sizeof l.buf - LOG_TAIL_RESERVE;
	l.overflow = false;
	l.dropped = false;
	time_format_rfc3339_ms(time_now_us(), ts, sizeof ts);
	if (text)
		build_text(&l, lvl, ts, msg, fields, n);
	else
		build_json(&l, lvl, ts, msg, fields, n);
	finish(&l, text);
	write_all(g_fd, l.buf, l.len);
}
