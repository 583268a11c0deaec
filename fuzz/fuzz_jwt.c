/* libFuzzer driver for auth/jwt (and the base64 decoders under it).
 *
 * The first byte picks a mode, the rest is the input:
 *   0  the bytes are a token: jwt_decode must not crash, and anything it
 *      accepts must be a well-formed set of claims.
 *   1  the bytes are "header JSON\npayload JSON": the driver signs them with
 *      the fuzz key, so the fuzzer reaches the JSON and claim checks behind
 *      the signature; accepted claims must survive jwt_encode -> jwt_decode.
 *   2  the bytes are base64: whatever the strict decoders accept must
 *      re-encode to the very same text (one spelling per value).
 *
 * Build and run (from the repository root):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c17 -D_GNU_SOURCE \
 *     -include src/core/banned.h -Isrc fuzz/fuzz_jwt.c src/auth/jwt.c \
 *     src/core/crypto.c -ljansson -lcrypto -o build-fuzz/fuzz_jwt
 *   mkdir -p fuzz/corpus-out/jwt
 *   build-fuzz/fuzz_jwt -max_total_time=60 -max_len=6000 \
 *     fuzz/corpus-out/jwt fuzz/corpus/jwt */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "core/crypto.h"

#define FUZZ_NOW INT64_C(1760000100)

static const char fuzz_key[] = "fuzz-key-0123456789abcdef0123456789";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_claims(const struct jwt_claims *c)
{
	if (strlen(c->sub) != 36 || strlen(c->org) != 36 || c->role[0] == '\0'
		|| c->jti[0] == '\0' || strcmp(c->iss, "pytake") != 0)
		abort();
	for (size_t i = 0; i < 36; i++)
		if ((c->sub[i] >= 'A' && c->sub[i] <= 'F') || (c->org[i] >= 'A' && c->org[i] <= 'F'))
			abort();
}

static int claims_equal(const struct jwt_claims *a, const struct jwt_claims *b)
{
	return strcmp(a->sub, b->sub) == 0 && strcmp(a->org, b->org) == 0
		&& strcmp(a->role, b->role) == 0 && strcmp(a->jti, b->jti) == 0
		&& strcmp(a->iss, b->iss) == 0 && a->iat == b->iat && a->exp == b->exp;
}

static void fuzz_token(const uint8_t *data, size_t size)
{
	struct jwt_claims c;
	char *tok = malloc(size + 1);

	if (tok == NULL)
		return;
	memcpy(tok, data, size);
	tok[size] = '\0';
	switch (jwt_decode(tok, fuzz_key, strlen(fuzz_key), "pytake", FUZZ_NOW, &c)) {
	case JWT_OK:
	case JWT_EXPIRED:
		check_claims(&c);
		break;
	case JWT_INVALID:
		if (c.sub[0] != '\0')
			abort();
		break;
	}
	free(tok);
}

/* Sign header || '.' || payload (each base64url'd) with the fuzz key. */
static char *sign_parts(const uint8_t *hdr, size_t hlen, const uint8_t *pl, size_t plen)
{
	uint8_t mac[CRYPTO_SHA256_LEN];
	size_t cap = CRYPTO_B64URL_LEN(hlen) + CRYPTO_B64URL_LEN(plen)
		+ CRYPTO_B64URL_LEN(sizeof mac) + 4;
	char *tok = malloc(cap);
	long n, m;

	if (tok == NULL)
		return NULL;
	n = crypto_b64url_encode(hdr, hlen, tok, cap);
	if (n < 0)
		goto fail;
	tok[n++] = '.';
	m = crypto_b64url_encode(pl, plen, tok + n, cap - (size_t)n);
	if (m < 0)
		goto fail;
	n += m;
	if (crypto_hmac_sha256(fuzz_key, strlen(fuzz_key), tok, (size_t)n, mac) != 0)
		goto fail;
	tok[n++] = '.';
	if (crypto_b64url_encode(mac, sizeof mac, tok + n, cap - (size_t)n) < 0)
		goto fail;
	return tok;
fail:
	free(tok);
	return NULL;
}

static void fuzz_signed(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	struct jwt_claims c, again;
	enum jwt_status st;
	char *tok, *re = NULL;

	if (nl == NULL)
		return;
	tok = sign_parts(data, (size_t)(nl - data), nl + 1, size - (size_t)(nl - data) - 1);
	if (tok == NULL)
		return;
	st = jwt_decode(tok, fuzz_key, strlen(fuzz_key), "pytake", FUZZ_NOW, &c);
	if (st == JWT_OK || st == JWT_EXPIRED) {
		check_claims(&c);
		/* Claims we accept, we can issue, and they read back the same
		 * (jwt_encode refuses exp < iat; that is the only difference). */
		if (c.exp >= c.iat) {
			if (jwt_encode(&c, fuzz_key, strlen(fuzz_key), &re) != 0)
				abort();
			if (jwt_decode(re, fuzz_key, strlen(fuzz_key), "pytake", FUZZ_NOW,
				    &again) != st
				|| !claims_equal(&c, &again))
				abort();
		}
	}
	free(re);
	free(tok);
}

static void fuzz_base64(const uint8_t *data, size_t size)
{
	uint8_t *dec = malloc(CRYPTO_B64_DECODED_MAX(size));
	char *enc = malloc(CRYPTO_B64_LEN(size) + 4);
	const char *in = (const char *)data;
	long n;

	if (dec == NULL || enc == NULL)
		goto out;
	n = crypto_b64url_decode(in, size, dec, CRYPTO_B64_DECODED_MAX(size));
	if (n >= 0) {
		long e = crypto_b64url_encode(dec, (size_t)n, enc, CRYPTO_B64_LEN(size) + 4);
		if (e != (long)size || memcmp(enc, in, size) != 0)
			abort();
	}
	n = crypto_b64_decode(in, size, dec, CRYPTO_B64_DECODED_MAX(size));
	if (n >= 0) {
		long e = crypto_b64_encode(dec, (size_t)n, enc, CRYPTO_B64_LEN(size) + 4);
		size_t in_len = size, enc_len;
		if (e < 0)
			abort();
		enc_len = (size_t)e;
		while (in_len > 0 && in[in_len - 1] == '=')
			in_len--;
		while (enc_len > 0 && enc[enc_len - 1] == '=')
			enc_len--;
		/* Same text, up to optional padding (which, if present, was exact). */
		if (in_len != enc_len || memcmp(enc, in, in_len) != 0
			|| (in_len != size && (size_t)e != size))
			abort();
	}
out:
	free(dec);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_token(data + 1, size - 1);
		break;
	case 1:
		fuzz_signed(data + 1, size - 1);
		break;
	default:
		fuzz_base64(data + 1, size - 1);
		break;
	}
	return 0;
}
