/* libFuzzer driver for phone normalisation (src/domain/phone.c,
 * phone_normalize): phone numbers come from API bodies (contacts, sends,
 * campaign recipients), CSV imports and webhooks.
 *
 * Checked promises: on PHONE_OK the result is 8..15 digits, does not start
 * with 0, starts with a known country calling code, and normalising it
 * again gives itself; otherwise the result is "" and the code has a
 * message.
 * Run: make fuzz (fuzz/corpus/phone/ seeds). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain/phone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	char out[PHONE_BUF_LEN];
	char again[PHONE_BUF_LEN];

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	memset(out, 'x', sizeof out);
	enum phone_rc rc = phone_normalize(in, out);
	if (rc != PHONE_OK) {
		if (out[0] != '\0' || phone_error_message(rc) == NULL)
			__builtin_trap();
		goto out;
	}
	size_t n = strnlen(out, sizeof out);
	if (n < PHONE_MIN_DIGITS || n > PHONE_MAX_DIGITS || out[0] == '0')
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if (out[i] < '0' || out[i] > '9')
			__builtin_trap();
	if (phone_calling_code(out) == 0)
		__builtin_trap();
	if (phone_normalize(out, again) != PHONE_OK || strcmp(again, out) != 0)
		__builtin_trap();
out:
	free(in);
	return 0;
}
