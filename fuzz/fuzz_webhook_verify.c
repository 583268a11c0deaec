/* libFuzzer driver for meta/webhook_verify: the X-Hub-Signature-256 header
 * and the raw body are both attacker-controlled before the check passes.
 *
 * Input: "<header>\n<body>" (no newline: all header, empty body). Checks:
 *   - webhook_sig_verify never reads past the header or the body (ASan);
 *   - a header the parser calls OK verifies iff its digest is the body's
 *     HMAC-SHA256 under the fuzz secret (never OK for another digest);
 *   - the correctly signed header for this body always verifies, in either
 *     hex case, and flipping one hex digit never does;
 *   - without a secret nothing verifies: a well-formed header is
 *     WEBHOOK_SIG_ERROR, a bad one keeps its parse error;
 *   - every result has a name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "meta/webhook_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "fuzz-app-secret";

static void hex_of(const uint8_t mac[32], char out[72], int upper)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	const char *d = upper ? up : lo;
	memcpy(out, "sha256=", 7);
	for (size_t i = 0; i < 32; i++) {
		out[7 + 2 * i] = d[mac[i] >> 4];
		out[8 + 2 * i] = d[mac[i] & 15];
	}
	out[71] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t hlen = nl != NULL ? (size_t)(nl - data) : size;
	const uint8_t *body = nl != NULL ? nl + 1 : data + size;
	size_t blen = size - hlen - (nl != NULL ? 1 : 0);
	char *header = malloc(hlen + 1);
	uint8_t mac[32], parsed[32];
	char good[72];
	enum webhook_sig rc, prc;

	if (header == NULL)
		return 0;
	memcpy(header, data, hlen);
	header[hlen] = '\0';
	/* the body in its own exact-size buffer so over-reads are caught */
	uint8_t *b = malloc(blen > 0 ? blen : 1);
	if (b == NULL) {
		free(header);
		return 0;
	}
	memcpy(b, body, blen);
	if (crypto_hmac_sha256(secret, sizeof secret - 1, b, blen, mac) != 0)
		abort();

	rc = webhook_sig_verify(secret, sizeof secret - 1, b, blen, header);
	prc = webhook_sig_parse(header, parsed);
	if (webhook_sig_name(rc) == NULL || webhook_sig_name(prc) == NULL)
		abort();
	if (rc == WEBHOOK_SIG_OK && (prc != WEBHOOK_SIG_OK || memcmp(parsed, mac, 32) != 0))
		abort();
	if (prc == WEBHOOK_SIG_OK && memcmp(parsed, mac, 32) == 0 && rc != WEBHOOK_SIG_OK)
		abort();
	if (prc != WEBHOOK_SIG_OK && rc != prc)
		abort();
	if (webhook_sig_verify(NULL, 0, b, blen, header) !=
	    (prc == WEBHOOK_SIG_OK ? WEBHOOK_SIG_ERROR : prc))
		abort();

	for (int upper = 0; upper < 2; upper++) {
		hex_of(mac, good, upper);
		if (webhook_sig_verify(secret, sizeof secret - 1, b, blen, good) != WEBHOOK_SIG_OK)
			abort();
	}
	/* one digit changed, chosen by the input */
	size_t at = 7 + (size > 0 ? data[0] % 64 : 0);
	good[at] = good[at] == '0' ? '1' : '0';
	if (webhook_sig_verify(secret, sizeof secret - 1, b, blen, good) != WEBHOOK_SIG_MISMATCH)
		abort();

	free(b);
	free(header);
	return 0;
}
