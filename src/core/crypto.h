/* crypto: small, hard-to-misuse wrappers over OpenSSL 3 for the things the
 * server needs: randomness, hex / base64 codecs, SHA-256, HMAC-SHA256,
 * constant-time comparison, random URL-safe tokens and AES-256-GCM for
 * secrets at rest.
 *
 * Design notes
 * - Nothing here logs or allocates behind the caller's back, except the
 *   *_text helpers, which return malloc'd strings the caller frees.
 * - Decoders are strict: one input has exactly one accepted spelling
 *   (no whitespace, no stray '=', no non-zero trailing bits), so a value
 *   that decodes always re-encodes to the same text.
 * - Sealed values (crypto_aead_seal) are laid out as
 *     version (1 byte, CRYPTO_AEAD_VERSION) || nonce (12) || ciphertext || tag (16)
 *   with a fresh random nonce per value. The version byte and the caller's
 *   associated data (the row id) are authenticated, so a value copied to
 *   another row, or any flipped bit, fails to open.
 *
 * Return convention: 0 (or a length, where documented) on success, -1 on
 * failure. On failure a fixed-size output may hold partial data (decoders
 * stop at the first bad character); never use it. Pointer outputs (char **)
 * are set only on success. */
#ifndef PYTAKE_CRYPTO_H
#define PYTAKE_CRYPTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_MUSTCHECK __attribute__((warn_unused_result))

#define CRYPTO_SHA256_LEN 32
#define CRYPTO_SHA256_HEX_LEN 65 /* 64 hex chars + NUL */

/* Characters (without NUL) of the unpadded base64url form of n bytes. */
#define CRYPTO_B64URL_LEN(n) ((((size_t)(n)) * 4 + 2) / 3)
/* Characters (without NUL) of the padded standard base64 form of n bytes. */
#define CRYPTO_B64_LEN(n) ((((size_t)(n)) + 2) / 3 * 4)
/* An upper bound of the bytes that len base64 characters decode to. */
#define CRYPTO_B64_DECODED_MAX(len) (((size_t)(len)) / 4 * 3 + 2)

/* Fill buf with n cryptographically secure random bytes (RAND_bytes).
 * Returns 0, or -1 when the generator fails (buf then holds garbage). */
int crypto_random(void *buf, size_t n) CRYPTO_MUSTCHECK;

/* Lower-case hex of n bytes into out (outsz >= 2n + 1), NUL-terminated.
 * Returns 0, or -1 when out is too small. */
int crypto_hex_encode(const void *in, size_t n, char *out, size_t outsz)
	CRYPTO_MUSTCHECK;
/* Decode len hex characters (either case; len even) into out.
 * Returns the number of bytes written, or -1 on a bad character, odd
 * length or outsz too small. */
long crypto_hex_decode(const char *in, size_t len, uint8_t *out, size_t outsz)
	CRYPTO_MUSTCHECK;

/* Unpadded base64url (RFC 4648 §5) of n bytes into out, NUL-terminated;
 * outsz must be >= CRYPTO_B64URL_LEN(n) + 1. Returns the number of
 * characters written (without the NUL), or -1 when out is too small. */
long crypto_b64url_encode(const void *in, size_t n, char *out, size_t outsz)
	CRYPTO_MUSTCHECK;
/* Strict decode of unpadded base64url: rejects '=', characters outside
 * [A-Za-z0-9_-], a length of 1 mod 4, and non-zero trailing bits.
 * Returns the number of bytes written to out, or -1 (also when outsz is
 * too small; CRYPTO_B64_DECODED_MAX(len) always suffices). */
long crypto_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outsz)
	CRYPTO_MUSTCHECK;

/* Padded standard base64 (RFC 4648 §4) of n bytes into out,
 * NUL-terminated; outsz >= CRYPTO_B64_LEN(n) + 1. Returns characters
 * written (without the NUL) or -1 when out is too small. */
long crypto_b64_encode(const void *in, size_t n, char *out, size_t outsz)
	CRYPTO_MUSTCHECK;
/* Strict decode of standard base64 ([A-Za-z0-9+/]). Padding may be
 * omitted, but when present it must be exactly right; whitespace,
 * misplaced '=' and non-zero trailing bits are rejected. Returns the number
 * of bytes written, or -1. */
long crypto_b64_decode(const char *in, size_t len, uint8_t *out, size_t outsz)
	CRYPTO_MUSTCHECK;

/* SHA-256 of data into out[32]. Returns 0 or -1 (OpenSSL failure). */
int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
	CRYPTO_MUSTCHECK;
/* SHA-256 of data as lower-case hex into out[65]. Returns 0 or -1. */
int crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX_LEN])
	CRYPTO_MUSTCHECK;

/* HMAC-SHA256(key, data) into out[32]. keylen may be 0. Returns 0 or -1. */
int crypto_hmac_sha256(const void *key, size_t keylen, const void *data,
	size_t len, uint8_t out[CRYPTO_SHA256_LEN]) CRYPTO_MUSTCHECK;

/* True when the n bytes at a and b are equal; the time taken depends only
 * on n (CRYPTO_memcmp). Use it for every MAC, signature or token check. */
bool crypto_equal(const void *a, const void *b, size_t n);

/* Overwrite n bytes at p with zeros in a way the compiler keeps. */
void crypto_wipe(void *p, size_t n);
/* Wipe a NUL-terminated secret string, then free it. NULL is a no-op. */
void crypto_secret_free(char *s);

/* Random URL-safe token: nbytes (1..CRYPTO_TOKEN_MAX_BYTES) random bytes
 * as unpadded base64url into out, NUL-terminated. outsz must be at least
 * CRYPTO_TOKEN_STRLEN(nbytes). 32 bytes (43 characters, 256 bits) is right
 * for refresh tokens and webhook paths. Returns 0, or -1 on bad arguments
 * or when the generator fails. */
#define CRYPTO_TOKEN_MAX_BYTES 64
#define CRYPTO_TOKEN_STRLEN(nbytes) (CRYPTO_B64URL_LEN(nbytes) + 1)
int crypto_token(char *out, size_t outsz, size_t nbytes) CRYPTO_MUSTCHECK;

/* ---- AES-256-GCM for secrets at rest ---------------------------------- */

#define CRYPTO_AEAD_KEY_LEN 32
#define CRYPTO_AEAD_VERSION 0x01
#define CRYPTO_AEAD_NONCE_LEN 12
#define CRYPTO_AEAD_TAG_LEN 16
#define CRYPTO_AEAD_OVERHEAD (1 + CRYPTO_AEAD_NONCE_LEN + CRYPTO_AEAD_TAG_LEN)
/* Largest plaintext accepted (secrets are small; this bounds allocations). */
#define CRYPTO_AEAD_MAX_PLAIN (1u << 20)

/* Encrypt ptlen bytes of pt under key with associated data ad (adlen may
 * be 0; ad may then be NULL) into out, which must hold
 * ptlen + CRYPTO_AEAD_OVERHEAD bytes. Returns the number of bytes written,
 * or -1 (bad arguments, out too small, randomness or OpenSSL failure). */
long crypto_aead_seal(const uint8_t key[CRYPTO_AEAD_KEY_LEN], const void *ad,
	size_t adlen, const void *pt, size_t ptlen, uint8_t *out, size_t outsz)
	CRYPTO_MUSTCHECK;
/* Decrypt a value made by crypto_aead_seal with the same key and ad into
 * out (outsz >= inlen - CRYPTO_AEAD_OVERHEAD). Returns the plaintext
 * length, or -1 when the value is malformed, was tampered with, or the key
 * or ad differ; out is wiped on failure. */
long crypto_aead_open(const uint8_t key[CRYPTO_AEAD_KEY_LEN], const void *ad,
	size_t adlen, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsz)
	CRYPTO_MUSTCHECK;

/* Storage helpers: seal len bytes of plain with ad (a NUL-terminated
 * string, normally the row id; "" allowed) and return the sealed value as
 * padded standard base64 in *out (malloc'd, caller frees with free()).
 * Returns 0 or -1; *out is set only on success. */
int crypto_aead_seal_text(const uint8_t key[CRYPTO_AEAD_KEY_LEN], const char *ad,
	const void *plain, size_t len, char **out) CRYPTO_MUSTCHECK;
/* Open a value made by crypto_aead_seal_text. On success *out is a
 * malloc'd NUL-terminated copy of the plaintext (free it with
 * crypto_secret_free) and *outlen (if not NULL) its length in bytes.
 * Returns 0, or -1 on bad base64, tampering, wrong key or wrong ad. */
int crypto_aead_open_text(const uint8_t key[CRYPTO_AEAD_KEY_LEN], const char *ad,
	const char *sealed, char **out, size_t *outlen) CRYPTO_MUSTCHECK;

#endif
