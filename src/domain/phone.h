/* phone: phone numbers as WhatsApp knows them: digits-only E.164 ("wa_id").
 *
 * Design note
 * - Normalisation is syntactic and table-driven: separators (space, tab,
 *   '-', '.', '/', '(', ')') are dropped; an international prefix '+' or
 *   "00" at the start is dropped; "(0)" right after the country code (the
 *   UK/German "+44 (0)20 ..." habit) is dropped; anything else that is not
 *   a digit (letters, '*', '#', a '+' in the middle) rejects the input.
 * - What is left must be 8..15 digits (E.164 allows at most 15), must not
 *   start with 0 (a national number without country code), and must start
 *   with an assigned ITU-T geographic country calling code (longest-prefix
 *   match over the table in phone.c; E.164 codes are prefix-free).
 * - No national rewriting: "+52 1 55 ..." keeps its "1", Brazil's ninth
 *   digit is kept as written. Meta's wa_id is what it is; we do not guess.
 */
#ifndef PYTAKE_PHONE_H
#define PYTAKE_PHONE_H
#include <stddef.h>

#define PHONE_MIN_DIGITS 8
#define PHONE_MAX_DIGITS 15
#define PHONE_BUF_LEN (PHONE_MAX_DIGITS + 1) /* digits + NUL */

enum phone_rc {
	PHONE_OK = 0,
	PHONE_EMPTY,            /* nothing but blanks */
	PHONE_BAD_CHAR,         /* a letter or symbol that has no place in a number */
	PHONE_TOO_SHORT,        /* fewer than PHONE_MIN_DIGITS digits */
	PHONE_TOO_LONG,         /* more than PHONE_MAX_DIGITS digits */
	PHONE_NO_COUNTRY_CODE,  /* starts with 0 after normalisation */
	PHONE_UNKNOWN_COUNTRY,  /* no assigned country calling code matches */
};

/* Normalise in (NUL-terminated; NULL counts as empty) to digits-only E.164
 * in out[PHONE_BUF_LEN]. On PHONE_OK out holds the digits; otherwise out
 * is set to "" and the code says why (phone_error_message). */
enum phone_rc phone_normalize(const char *in, char out[PHONE_BUF_LEN]);

/* Human text for a code, for API details ("must be ..."). Static string. */
const char *phone_error_message(enum phone_rc rc);

/* The ITU-T country calling code that digits (digits-only E.164) starts
 * with, e.g. 55 for "5511987654321", 1 for "14155552671", 234 for
 * "2348031234567"; 0 when none matches (or digits is NULL). */
int phone_calling_code(const char *digits);

#endif
