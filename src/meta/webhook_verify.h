/* webhook_verify: Meta's webhook signature (X-Hub-Signature-256).
 *
 * Meta signs the raw request body with HMAC-SHA256 keyed by the app secret
 * and sends "sha256=<64 hex digits>". The check runs over the bytes exactly
 * as received, before any parsing, and compares in constant time. Parsing
 * is strict: the "sha256=" prefix (lowercase, as Meta sends it), then
 * exactly 64 hex digits (either case accepted), nothing before or after. */
#ifndef PYTAKE_WEBHOOK_VERIFY_H
#define PYTAKE_WEBHOOK_VERIFY_H
#include <stddef.h>
#include <stdint.h>

enum webhook_sig {
	WEBHOOK_SIG_OK = 0,
	WEBHOOK_SIG_MISSING = 1,   /* no header (NULL) or empty */
	WEBHOOK_SIG_MALFORMED = 2, /* not "sha256=" + 64 hex digits */
	WEBHOOK_SIG_MISMATCH = 3,  /* well-formed but not this body's HMAC */
	WEBHOOK_SIG_ERROR = 4,     /* no secret, or the HMAC could not be computed */
};

/* Parse header ("sha256=<hex>") into the 32-byte digest. 0 ok, else
 * WEBHOOK_SIG_MISSING / WEBHOOK_SIG_MALFORMED. */
enum webhook_sig webhook_sig_parse(const char *header, uint8_t out[32]);

/* Check header against HMAC-SHA256(secret, body[0..len)). secret NULL or
 * empty gives WEBHOOK_SIG_ERROR. */
enum webhook_sig webhook_sig_verify(const char *secret, size_t secret_len,
				    const void *body, size_t len, const char *header);

/* Short reason text for logs and metrics labels: "ok", "missing",
 * "malformed", "mismatch", "error". */
const char *webhook_sig_name(enum webhook_sig s);

#endif
