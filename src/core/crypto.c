/* crypto: see crypto.h. */
#include "core/crypto.h"

#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>

int crypto_random(void *buf, size_t n)
{
	if (n == 0)
		return 0;
	if (buf == NULL || n > INT_MAX)
		return -1;
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

/* ---- hex --------------------------------------------------------------- */

int crypto_hex_encode(const void *in, size_t n, char *out, size_t outsz)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *p = in;

	if (out == NULL || n > (SIZE_MAX - 1) / 2 || outsz < 2 * n + 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long crypto_hex_decode(const char *in, size_t len, uint8_t *out, size_t outsz)
{
	if (in == NULL || len % 2 != 0 || len / 2 > outsz || len / 2 > LONG_MAX)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_value(in[i]), lo = hex_value(in[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (long)(len / 2);
}

/* ---- base64 / base64url ------------------------------------------------ */

static const char b64_std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static long b64_encode_with(const char *alphabet, bool pad, const void *in,
	size_t n, char *out, size_t outsz)
{
	const uint8_t *p = in;
	size_t need, o = 0, i = 0;

	if (out == NULL || n > (LONG_MAX / 4) * 3 - 3)
		return -1;
	need = pad ? CRYPTO_B64_LEN(n) : CRYPTO_B64URL_LEN(n);
	if (outsz < need + 1)
		return -1;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return (long)o;
}

/* Value of c in the alphabet (std: '+' '/', url: '-' '_'), or -1. */
static int b64_value(char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Decode len unpadded characters; the caller has removed any padding. */
static long b64_decode_unpadded(const char *in, size_t len, bool url,
	uint8_t *out, size_t outsz)
{
	size_t rem = len % 4, need = len / 4 * 3 + (rem ? rem - 1 : 0), o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (rem == 1 || need > outsz || need > LONG_MAX)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(in[i], url);
		if (v < 0)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* Canonical form: the bits left over after the last byte are zero. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (long)o;
}

long crypto_b64url_encode(const void *in, size_t n, char *out, size_t outsz)
{
	return b64_encode_with(b64_url, false, in, n, out, outsz);
}

long crypto_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outsz)
{
	if (in == NULL)
		return -1;
	return b64_decode_unpadded(in, len, true, out, outsz);
}

long crypto_b64_encode(const void *in, size_t n, char *out, size_t outsz)
{
	return b64_encode_with(b64_std, true, in, n, out, outsz);
}

long crypto_b64_decode(const char *in, size_t len, uint8_t *out, size_t outsz)
{
	size_t pad = 0;

	if (in == NULL)
		return -1;
	if (len % 4 == 0 && len > 0 && in[len - 1] == '=') {
		pad = (len >= 2 && in[len - 2] == '=') ? 2 : 1;
		len -= pad;
		/* "xx==" leaves 2 chars in the last group, "xxx=" leaves 3. */
		if (len % 4 != 4 - pad)
			return -1;
	}
	return b64_decode_unpadded(in, len, false, out, outsz);
}

/* ---- digests and MACs -------------------------------------------------- */

int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
	static const uint8_t empty[1];
	unsigned int outlen = 0;

	if (data == NULL && len != 0)
		return -1;
	if (EVP_Digest(data ? data : empty, len, out, &outlen, EVP_sha256(), NULL) != 1
		|| outlen != CRYPTO_SHA256_LEN)
		return -1;
	return 0;
}

int crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX_LEN])
{
	uint8_t md[CRYPTO_SHA256_LEN];

	if (crypto_sha256(data, len, md) != 0)
		return -1;
	return crypto_hex_encode(md, sizeof md, out, CRYPTO_SHA256_HEX_LEN);
}

/* HMAC-SHA256 without per-call algorithm look-ups: a keyless template
 * context with the digest already set is made once and duplicated per call
 * (the one-shot HMAC() fetches the algorithms every time, ~3x slower). The
 * template is never modified after init, so concurrent dups are safe. */
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC_CTX *hmac_template;

static void hmac_template_init(void)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	if (mac == NULL)
		return;
	hmac_template = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac); /* the context keeps its own reference */
	if (hmac_template != NULL && EVP_MAC_CTX_set_params(hmac_template, params) != 1) {
		EVP_MAC_CTX_free(hmac_template);
		hmac_template = NULL;
	}
}

int crypto_hmac_sha256(const void *key, size_t keylen, const void *data,
	size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
	/* OpenSSL treats a NULL key as "no key given"; pass a real pointer. */
	static const uint8_t empty[1];
	EVP_MAC_CTX *ctx = NULL;
	size_t outlen = 0;
	int rc = -1;

	if ((key == NULL && keylen != 0) || (data == NULL && len != 0))
		return -1;
	if (pthread_once(&hmac_once, hmac_template_init) != 0 || hmac_template == NULL)
		return -1;
	ctx = EVP_MAC_CTX_dup(hmac_template);
	if (ctx == NULL
		|| EVP_MAC_init(ctx, key ? key : empty, keylen, NULL) != 1
		|| EVP_MAC_update(ctx, data ? data : empty, len) != 1
		|| EVP_MAC_final(ctx, out, &outlen, CRYPTO_SHA256_LEN) != 1
		|| outlen != CRYPTO_SHA256_LEN)
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

bool crypto_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void crypto_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

void crypto_secret_free(char *s)
{
	if (s == NULL)
		return;
	crypto_wipe(s, strlen(s));
	free(s);
}

int crypto_token(char *out, size_t outsz, size_t nbytes)
{
	uint8_t raw[CRYPTO_TOKEN_MAX_BYTES];
	int rc = -1;

	if (out == NULL || nbytes == 0 || nbytes > sizeof raw
		|| outsz < CRYPTO_TOKEN_STRLEN(nbytes))
		return -1;
	if (crypto_random(raw, nbytes) != 0)
		goto out;
	if (crypto_b64url_encode(raw, nbytes, out, outsz) < 0)
		goto out;
	rc = 0;
out:
	crypto_wipe(raw, sizeof raw);
	return rc;
}

/* ---- AES-256-GCM -------------------------------------------------------- */

/* Feed the version byte, then the caller's ad, as associated data. */
static int aead_add_ad(EVP_CIPHER_CTX *ctx, bool enc, const void *ad, size_t adlen)
{
	static const uint8_t version = CRYPTO_AEAD_VERSION;
	int n = 0;

	if ((enc ? EVP_EncryptUpdate(ctx, NULL, &n, &version, 1)
		 : EVP_DecryptUpdate(ctx, NULL, &n, &version, 1)) != 1)
		return -1;
	if (adlen == 0)
		return 0;
	if (enc)
		return EVP_EncryptUpdate(ctx, NULL, &n, ad, (int)adlen) == 1 ? 0 : -1;
	return EVP_DecryptUpdate(ctx, NULL, &n, ad, (int)adlen) == 1 ? 0 : -1;
}

long crypto_aead_seal(const uint8_t key[CRYPTO_AEAD_KEY_LEN], const void *ad,
	size_t adlen, const void *pt, size_t ptlen, uint8_t *out, size_t outsz)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *nonce, *ct;
	int n = 0, fin = 0;
	long rc = -1;

	if (key == NULL || out == NULL || (ad == NULL && adlen != 0)
		|| (pt == NULL && ptlen != 0) || adlen > INT_MAX
		|| ptlen > CRYPTO_AEAD_MAX_PLAIN
		|| outsz < ptlen + CRYPTO_AEAD_OVERHEAD)
		return -1;
	out[0] = CRYPTO_AEAD_VERSION;
	nonce = out + 1;
	ct = nonce + CRYPTO_AEAD_NONCE_LEN;
	if (crypto_random(nonce, CRYPTO_AEAD_NONCE_LEN) != 0)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL
		|| EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1
		|| aead_add_ad(ctx, true, ad, adlen) != 0)
		goto out;
	if (ptlen > 0 && EVP_EncryptUpdate(ctx, ct, &n, pt, (int)ptlen) != 1)
		goto out;
	if (EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1
		|| (size_t)n + (size_t)fin != ptlen)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_AEAD_TAG_LEN,
		    ct + ptlen) != 1)
		goto out;
	rc = (long)(ptlen + CRYPTO_AEAD_OVERHEAD);
out:
	EVP_CIPHER_CTX_free(ctx);
	if (rc < 0)
		crypto_wipe(out, outsz < ptlen + CRYPTO_AEAD_OVERHEAD ? outsz
			: ptlen + CRYPTO_AEAD_OVERHEAD);
	return rc;
}

long crypto_aead_open(const uint8_t key[CRYPTO_AEAD_KEY_LEN], const void *ad,
	size_t adlen, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsz)
{
	EVP_CIPHER_CTX *ctx = NULL;
	const uint8_t *nonce, *ct, *tag;
	size_t ctlen;
	int n = 0, fin = 0;
	long rc = -1;

	if (key == NULL || in == NULL || (ad == NULL && adlen != 0)
		|| adlen > INT_MAX || inlen < CRYPTO_AEAD_OVERHEAD
		|| inlen - CRYPTO_AEAD_OVERHEAD > CRYPTO_AEAD_MAX_PLAIN
		|| in[0] != CRYPTO_AEAD_VERSION)
		return -1;
	ctlen = inlen - CRYPTO_AEAD_OVERHEAD;
	if (outsz < ctlen || (out == NULL && ctlen != 0))
		return -1;
	nonce = in + 1;
	ct = nonce + CRYPTO_AEAD_NONCE_LEN;
	tag = ct + ctlen;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL
		|| EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1
		|| aead_add_ad(ctx, false, ad, adlen) != 0)
		goto out;
	if (ctlen > 0 && EVP_DecryptUpdate(ctx, out, &n, ct, (int)ctlen) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_AEAD_TAG_LEN,
		    (void *)tag) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, out ? out + n : NULL, &fin) != 1
		|| (size_t)n + (size_t)fin != ctlen)
		goto out;
	rc = (long)ctlen;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (rc < 0 && out != NULL)
		crypto_wipe(out, ctlen);
	return rc;
}

int crypto_aead_seal_text(const uint8_t key[CRYPTO_AEAD_KEY_LEN], const char *ad,
	const void *plain, size_t len, char **out)
{
	uint8_t *sealed = NULL;
	char *text = NULL;
	size_t sealed_cap, text_cap;
	long sealed_len;
	int rc = -1;

	if (ad == NULL || out == NULL || len > CRYPTO_AEAD_MAX_PLAIN)
		return -1;
	sealed_cap = len + CRYPTO_AEAD_OVERHEAD;
	text_cap = CRYPTO_B64_LEN(sealed_cap) + 1;
	sealed = malloc(sealed_cap);
	text = malloc(text_cap);
	if (sealed == NULL || text == NULL)
		goto out;
	sealed_len = crypto_aead_seal(key, ad, strlen(ad), plain, len, sealed, sealed_cap);
	if (sealed_len < 0)
		goto out;
	if (crypto_b64_encode(sealed, (size_t)sealed_len, text, text_cap) < 0)
		goto out;
	*out = text;
	text = NULL;
	rc = 0;
out:
	free(sealed);
	free(text);
	return rc;
}

int crypto_aead_open_text(const uint8_t key[CRYPTO_AEAD_KEY_LEN], const char *ad,
	const char *sealed, char **out, size_t *outlen)
{
	uint8_t *raw = NULL;
	char *plain = NULL;
	size_t slen, raw_cap;
	long raw_len, plain_len = -1;
	int rc = -1;

	if (ad == NULL || sealed == NULL || out == NULL)
		return -1;
	slen = strlen(sealed);
	if (slen > CRYPTO_B64_LEN(CRYPTO_AEAD_MAX_PLAIN + CRYPTO_AEAD_OVERHEAD))
		return -1;
	raw_cap = CRYPTO_B64_DECODED_MAX(slen);
	raw = malloc(raw_cap);
	if (raw == NULL)
		goto out;
	raw_len = crypto_b64_decode(sealed, slen, raw, raw_cap);
	if (raw_len < (long)CRYPTO_AEAD_OVERHEAD)
		goto out;
	plain = malloc((size_t)raw_len - CRYPTO_AEAD_OVERHEAD + 1);
	if (plain == NULL)
		goto out;
	plain_len = crypto_aead_open(key, ad, strlen(ad), raw, (size_t)raw_len,
		(uint8_t *)plain, (size_t)raw_len - CRYPTO_AEAD_OVERHEAD);
	if (plain_len < 0)
		goto out;
	plain[plain_len] = '\0';
	*out = plain;
	if (outlen != NULL)
		*outlen = (size_t)plain_len;
	plain = NULL;
	rc = 0;
out:
	free(raw);
	free(plain); /* only on failure, already wiped by crypto_aead_open */
	return rc;
}
