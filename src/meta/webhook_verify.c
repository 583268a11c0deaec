/* webhook_verify: see webhook_verify.h. */
#include "meta/webhook_verify.h"

#include <string.h>

#include "core/crypto.h"

#define SIG_PREFIX "sha256="
#define SIG_PREFIX_LEN (sizeof SIG_PREFIX - 1)
#define SIG_HEX_LEN 64

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum webhook_sig webhook_sig_parse(const char *header, uint8_t out[32])
{
	if (header == NULL || header[0] == '\0')
		return WEBHOOK_SIG_MISSING;
	if (strncmp(header, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
		return WEBHOOK_SIG_MALFORMED;
	const char *hex = header + SIG_PREFIX_LEN;
	if (strnlen(hex, SIG_HEX_LEN + 1) != SIG_HEX_LEN)
		return WEBHOOK_SIG_MALFORMED;
	for (size_t i = 0; i < 32; i++) {
		int hi = hex_nibble(hex[2 * i]);
		int lo = hex_nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return WEBHOOK_SIG_MALFORMED;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return WEBHOOK_SIG_OK;
}

enum webhook_sig webhook_sig_verify(const char *secret, size_t secret_len,
				    const void *body, size_t len, const char *header)
{
	uint8_t want[32], got[32];
	enum webhook_sig rc = webhook_sig_parse(header, got);

	if (rc != WEBHOOK_SIG_OK)
		return rc;
	if (secret == NULL || secret_len == 0)
		return WEBHOOK_SIG_ERROR;
	if (crypto_hmac_sha256(secret, secret_len, body != NULL ? body : "", len, want) != 0)
		return WEBHOOK_SIG_ERROR;
	rc = crypto_equal(want, got, sizeof want) ? WEBHOOK_SIG_OK : WEBHOOK_SIG_MISMATCH;
	crypto_wipe(want, sizeof want);
	return rc;
}

const char *webhook_sig_name(enum webhook_sig s)
{
	switch (s) {
	case WEBHOOK_SIG_OK: return "ok";
	case WEBHOOK_SIG_MISSING: return "missing";
	case WEBHOOK_SIG_MALFORMED: return "malformed";
	case WEBHOOK_SIG_MISMATCH: return "mismatch";
	case WEBHOOK_SIG_ERROR: return "error";
	}
	return "error";
}
