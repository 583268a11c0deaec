/* template_scan: the {{variable}} scanner and the details collector shared
 * by the template modules (see template_rules.h, template_internal.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "meta/template_internal.h"
#include "meta/template_rules.h"

/* ---- details collector ---- */

void tdetails_add(struct tdetails *d, bool type_error, const char *field,
	const char *fmt, ...)
{
	char msg[TEMPLATE_MSG_MAX];
	json_t *entry;
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	if (type_error)
		d->bad_type = true;
	if (d->list == NULL && (d->list = json_array()) == NULL)
		goto oom;
	entry = json_pack("{s:s, s:s}", "field", field, "message", msg);
	if (entry == NULL || json_array_append_new(d->list, entry) != 0)
		goto oom;
	return;
oom:
	d->oom = true;
}

int tdetails_finish(struct tdetails *d, json_t **out)
{
	int rc;

	*out = NULL;
	if (d->oom) {
		rc = TEMPLATE_ERROR;
	} else if (json_array_size(d->list) == 0) {
		rc = TEMPLATE_OK;
	} else {
		rc = d->bad_type ? TEMPLATE_BAD_TYPE : TEMPLATE_INVALID;
		*out = d->list;
		d->list = NULL;
	}
	tdetails_release(d);
	return rc;
}

void tdetails_release(struct tdetails *d)
{
	json_decref(d->list);
	d->list = NULL;
	d->bad_type = false;
	d->oom = false;
}

void tfield(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(buf, TEMPLATE_FIELD_MAX, fmt, ap) < 0)
		buf[0] = '\0';
	va_end(ap);
}

size_t tutf8_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* ---- scanner ---- */

static bool is_ident_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_';
}

/* content[0..n) between "{{" and "}}": a number 1..999 without leading zero,
 * or ^[a-z][a-z0-9_]*$ of at most TEMPLATE_VAR_NAME_MAX. */
static bool parse_var(const char *content, size_t n, struct template_var *v)
{
	size_t i;

	if (n == 0)
		return false;
	if (content[0] >= '0' && content[0] <= '9') {
		unsigned num = 0;

		if (content[0] == '0' || n > 3)
			return false;
		for (i = 0; i < n; i++) {
			if (content[i] < '0' || content[i] > '9')
				return false;
			num = num * 10 + (unsigned)(content[i] - '0');
		}
		v->kind = TEMPLATE_VAR_NUMBER;
		v->number = num;
	} else {
		if (content[0] < 'a' || content[0] > 'z' || n > TEMPLATE_VAR_NAME_MAX)
			return false;
		for (i = 0; i < n; i++)
			if ((content[i] >= 'A' && content[i] <= 'Z'))
				return false;
		v->kind = TEMPLATE_VAR_NAME;
		v->number = 0;
	}
	memcpy(v->name, content, n);
	v->name[n] = '\0';
	return true;
}

/* Remember the first malformed "{{" at text[at]: up to its "}}" or 20
 * bytes, stopping at anything that is not printable ASCII. */
static void note_malformed(struct template_scan *out, const char *text, size_t at)
{
	size_t n = 0;

	if (out->malformed++ > 0)
		return;
	out->bad_start = at;
	while (n < sizeof out->bad_text - 4 && text[at + n] >= 0x20 &&
	       text[at + n] <= 0x7e) {
		out->bad_text[n] = text[at + n];
		n++;
		if (n >= 4 && text[at + n - 1] == '}' && text[at + n - 2] == '}')
			break;
	}
	out->bad_text[n] = '\0';
}

void template_scan_text(const char *text, struct template_scan *out)
{
	size_t i = 0, len;

	memset(out, 0, sizeof *out);
	if (text == NULL)
		return;
	len = strlen(text);
	while (i + 1 < len) {
		struct template_var v;
		size_t j;

		if (text[i] != '{' || text[i + 1] != '{') {
			i++;
			continue;
		}
		for (j = i + 2; j < len && is_ident_char(text[j]); j++)
			;
		if (text[j] != '}' || text[j + 1] != '}' ||
		    !parse_var(text + i + 2, j - i - 2, &v)) {
			note_malformed(out, text, i);
			i += 2;
			continue;
		}
		v.start = i;
		v.end = j + 2;
		if (out->count < TEMPLATE_VARS_MAX)
			out->vars[out->count++] = v;
		else
			out->too_many = true;
		i = j + 2;
	}
}
