/* phone: digits-only E.164 normalisation (see phone.h). */
#include "domain/phone.h"

#include <stdbool.h>
#include <string.h>

/* Assigned ITU-T E.164 geographic country calling codes (ITU-T E.164
 * Annex to Operational Bulletin, 2024). Non-geographic codes (800, 808,
 * 870, 878, 881-883, 888, 979) and spare ones are left out: WhatsApp
 * accounts do not live there. The set is prefix-free, so at most one
 * entry matches a number. */
static const unsigned short CALLING_CODES[] = {
	/* zone 1 (NANP) and 7 (Russia, Kazakhstan) */
	1, 7,
	/* zones 2..9, two digits */
	20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49,
	51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84,
	86, 90, 91, 92, 93, 94, 95, 98,
	/* zone 2, three digits */
	211, 212, 213, 216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228,
	229, 230, 231, 232, 233, 234, 235, 236, 237, 238, 239, 240, 241, 242,
	243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255, 256,
	257, 258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291,
	297, 298, 299,
	/* zone 3 */
	350, 351, 352, 353, 354, 355, 356, 357, 358, 359, 370, 371, 372, 373,
	374, 375, 376, 377, 378, 380, 381, 382, 383, 385, 386, 387, 389,
	/* zone 4 */
	420, 421, 423,
	/* zone 5 */
	500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 590, 591, 592, 593,
	594, 595, 596, 597, 598, 599,
	/* zone 6 */
	670, 672, 673, 674, 675, 676, 677, 678, 679, 680, 681, 682, 683, 685,
	686, 687, 688, 689, 690, 691, 692,
	/* zone 8 */
	850, 852, 853, 855, 856, 880, 886,
	/* zone 9 */
	960, 961, 962, 963, 964, 965, 966, 967, 968, 970, 971, 972, 973, 974,
	975, 976, 977, 992, 993, 994, 995, 996, 998,
};

static bool code_assigned(int code)
{
	for (size_t i = 0; i < sizeof CALLING_CODES / sizeof CALLING_CODES[0]; i++)
		if (CALLING_CODES[i] == code)
			return true;
	return false;
}

int phone_calling_code(const char *digits)
{
	if (!digits)
		return 0;
	for (int len = 3; len >= 1; len--) {
		int code = 0;
		int i = 0;
		for (; i < len && digits[i] >= '0' && digits[i] <= '9'; i++)
			code = code * 10 + (digits[i] - '0');
		if (i == len && digits[0] != '0' && code_assigned(code))
			return code;
	}
	return 0;
}

const char *phone_error_message(enum phone_rc rc)
{
	switch (rc) {
	case PHONE_OK:
		return "ok";
	case PHONE_EMPTY:
		return "is required";
	case PHONE_BAD_CHAR:
		return "must hold only digits, spaces, '-', '.', '(', ')' and a leading '+'";
	case PHONE_TOO_SHORT:
		return "is too short for an international phone number (at least 8 digits)";
	case PHONE_TOO_LONG:
		return "is too long for an international phone number (at most 15 digits)";
	case PHONE_NO_COUNTRY_CODE:
		return "must start with a country calling code (e.g. +55...), not 0";
	case PHONE_UNKNOWN_COUNTRY:
		return "does not start with an assigned country calling code";
	}
	return "is not a valid phone number";
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool is_separator(char ch)
{
	return is_blank(ch) || ch == '-' || ch == '.' || ch == '/' || ch == '(' || ch == ')';
}

/* Skip an international prefix ("+" or "00") after leading blanks; sets
 * *intl when there was one. Returns the rest. */
static const char *skip_intl_prefix(const char *p, bool *intl)
{
	while (is_blank(*p))
		p++;
	*intl = false;
	if (*p == '+') {
		*intl = true;
		return p + 1;
	}
	if (p[0] == '0' && p[1] == '0') {
		*intl = true;
		return p + 2;
	}
	return p;
}

/* Collect the digits of p into out (up to PHONE_MAX_DIGITS + 1 counted,
 * so "too long" is seen). Drops "(0)" right after a country code when the
 * number was written with an international prefix. */
static enum phone_rc collect_digits(const char *p, bool intl, char *out, size_t *n_out)
{
	size_t n = 0, total = 0;
	for (; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			if (n < PHONE_MAX_DIGITS)
				out[n++] = *p;
			total++;
			continue;
		}
		if (intl && !strncmp(p, "(0)", 3) && n > 0 && n <= 3) {
			out[n] = '\0';
			if (phone_calling_code(out) != 0) {
				p += 2;
				continue;
			}
		}
		if (!is_separator(*p))
			return PHONE_BAD_CHAR;
	}
	out[n] = '\0';
	*n_out = total;
	return PHONE_OK;
}

enum phone_rc phone_normalize(const char *in, char out[PHONE_BUF_LEN])
{
	char digits[PHONE_BUF_LEN];
	size_t total = 0;
	bool intl = false;
	const char *rest;
	enum phone_rc rc;

	out[0] = '\0';
	if (!in)
		return PHONE_EMPTY;
	rest = skip_intl_prefix(in, &intl);
	rc = collect_digits(rest, intl, digits, &total);
	if (rc != PHONE_OK)
		return rc;
	if (total == 0)
		return intl ? PHONE_TOO_SHORT : PHONE_EMPTY;
	if (digits[0] == '0')
		return PHONE_NO_COUNTRY_CODE;
	if (total < PHONE_MIN_DIGITS)
		return PHONE_TOO_SHORT;
	if (total > PHONE_MAX_DIGITS)
		return PHONE_TOO_LONG;
	if (phone_calling_code(digits) == 0)
		return PHONE_UNKNOWN_COUNTRY;
	memcpy(out, digits, total + 1);
	return PHONE_OK;
}
