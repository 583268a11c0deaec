/* Unit tests for core/crypto. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "core/crypto.h"

/* Bytes from a hex literal; aborts the test on bad input. */
static size_t unhex(const char *hex, uint8_t *out, size_t outsz)
{
	long n = crypto_hex_decode(hex, strlen(hex), out, outsz);
	assert_true(n >= 0);
	return (size_t)n;
}

/* ---- RFC 4231 HMAC-SHA256 -------------------------------------------- */

struct hmac_case {
	const char *name;
	uint8_t key_byte; /* key is key_len copies of key_byte ... */
	size_t key_len;
	const char *key_str;  /* ... unless key_str / key_hex is set */
	const char *key_hex;
	const char *data_str; /* data is data_str, or data_len x data_byte */
	uint8_t data_byte;
	size_t data_len;
	const char *mac_hex;  /* expected; may be a truncated prefix */
};

static const struct hmac_case hmac_cases[] = {
	{ "rfc4231 tc1", 0x0b, 20, NULL, NULL, "Hi There", 0, 0,
	  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
	{ "rfc4231 tc2", 0, 0, "Jefe", NULL, "what do ya want for nothing?", 0, 0,
	  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
	{ "rfc4231 tc3", 0xaa, 20, NULL, NULL, NULL, 0xdd, 50,
	  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
	{ "rfc4231 tc4", 0, 0, NULL, "0102030405060708090a0b0c0d0e0f10111213141516171819",
	  NULL, 0xcd, 50,
	  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
	{ "rfc4231 tc5 (truncated)", 0x0c, 20, NULL, NULL, "Test With Truncation", 0, 0,
	  "a3b6167473100ee06e0c796c2955552b" },
	{ "rfc4231 tc6", 0xaa, 131, NULL, NULL,
	  "Test Using Larger Than Block-Size Key - Hash Key First", 0, 0,
	  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
	{ "rfc4231 tc7", 0xaa, 131, NULL, NULL,
	  "This is a test using a larger than block-size key and a larger than "
	  "block-size data. The key needs to be hashed before being used by the "
	  "HMAC algorithm.", 0, 0,
	  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
};

static void test_hmac_rfc4231(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof hmac_cases / sizeof hmac_cases[0]; i++) {
		const struct hmac_case *tc = &hmac_cases[i];
		uint8_t key[200], data[200], mac[CRYPTO_SHA256_LEN];
		char hex[CRYPTO_SHA256_HEX_LEN];
		size_t keylen, datalen;

		if (tc->key_str) {
			keylen = strlen(tc->key_str);
			memcpy(key, tc->key_str, keylen);
		} else if (tc->key_hex) {
			keylen = unhex(tc->key_hex, key, sizeof key);
		} else {
			keylen = tc->key_len;
			memset(key, tc->key_byte, keylen);
		}
		if (tc->data_str) {
			datalen = strlen(tc->data_str);
			memcpy(data, tc->data_str, datalen);
		} else {
			datalen = tc->data_len;
			memset(data, tc->data_byte, datalen);
		}
		assert_int_equal(crypto_hmac_sha256(key, keylen, data, datalen, mac), 0);
		assert_int_equal(crypto_hex_encode(mac, sizeof mac, hex, sizeof hex), 0);
		if (strncmp(hex, tc->mac_hex, strlen(tc->mac_hex)) != 0)
			fail_msg("%s: got %s want %s", tc->name, hex, tc->mac_hex);
	}
}

static void test_hmac_empty_key_and_data(void **state)
{
	uint8_t mac[CRYPTO_SHA256_LEN];
	char hex[CRYPTO_SHA256_HEX_LEN];

	(void)state;
	/* HMAC-SHA256("", "") */
	assert_int_equal(crypto_hmac_sha256(NULL, 0, NULL, 0, mac), 0);
	assert_int_equal(crypto_hex_encode(mac, sizeof mac, hex, sizeof hex), 0);
	assert_string_equal(hex,
		"b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
	assert_int_equal(crypto_hmac_sha256(NULL, 3, "x", 1, mac), -1);
}

/* The shared HMAC template is used from many threads at once. */
static void *hmac_worker(void *arg)
{
	uint8_t mac[CRYPTO_SHA256_LEN], want[CRYPTO_SHA256_LEN];
	int *bad = arg;

	if (crypto_hex_decode(hmac_cases[1].mac_hex, 64, want, sizeof want) != 32)
		(*bad)++;
	for (int i = 0; i < 2000; i++) {
		if (crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac) != 0
			|| !crypto_equal(mac, want, sizeof mac))
			(*bad)++;
	}
	return NULL;
}

static void test_hmac_threads(void **state)
{
	pthread_t th[4];
	int bad[4] = { 0 };

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hmac_worker, &bad[i]), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(bad[i], 0);
	}
}

/* ---- SHA-256 ----------------------------------------------------------- */

static void test_sha256(void **state)
{
	char hex[CRYPTO_SHA256_HEX_LEN];
	uint8_t md[CRYPTO_SHA256_LEN];

	(void)state;
	assert_int_equal(crypto_sha256_hex("abc", 3, hex), 0);
	assert_string_equal(hex,
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(crypto_sha256_hex("", 0, hex), 0);
	assert_string_equal(hex,
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(crypto_sha256(NULL, 0, md), 0);
	assert_int_equal(md[0], 0xe3);
	assert_int_equal(crypto_sha256(NULL, 1, md), -1);
}

/* ---- hex --------------------------------------------------------------- */

static void test_hex(void **state)
{
	const uint8_t bytes[] = { 0x00, 0x01, 0xab, 0xff };
	uint8_t back[8];
	char hex[9];

	(void)state;
	assert_int_equal(crypto_hex_encode(bytes, 4, hex, sizeof hex), 0);
	assert_string_equal(hex, "0001abff");
	assert_int_equal(crypto_hex_encode(bytes, 4, hex, 8), -1); /* no room for NUL */
	assert_int_equal(crypto_hex_decode("0001ABff", 8, back, sizeof back), 4);
	assert_memory_equal(back, bytes, 4);
	assert_int_equal(crypto_hex_decode("abc", 3, back, sizeof back), -1);
	assert_int_equal(crypto_hex_decode("zz", 2, back, sizeof back), -1);
	assert_int_equal(crypto_hex_decode("0001abff", 8, back, 3), -1);
	assert_int_equal(crypto_hex_decode("", 0, back, 0), 0);
}

/* ---- base64 / base64url ------------------------------------------------ */

struct b64_vector {
	const char *plain;
	const char *url;  /* unpadded base64url */
	const char *std;  /* padded standard */
};

static const struct b64_vector b64_vectors[] = { /* RFC 4648 §10 */
	{ "", "", "" },
	{ "f", "Zg", "Zg==" },
	{ "fo", "Zm8", "Zm8=" },
	{ "foo", "Zm9v", "Zm9v" },
	{ "foob", "Zm9vYg", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
	{ "\xfb\xff", "-_8", "+/8=" },
};

static void test_b64_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof b64_vectors / sizeof b64_vectors[0]; i++) {
		const struct b64_vector *v = &b64_vectors[i];
		size_t n = strlen(v->plain);
		char enc[32];
		uint8_t dec[32];

		assert_int_equal(crypto_b64url_encode(v->plain, n, enc, sizeof enc),
			(long)strlen(v->url));
		assert_string_equal(enc, v->url);
		assert_int_equal(crypto_b64_encode(v->plain, n, enc, sizeof enc),
			(long)strlen(v->std));
		assert_string_equal(enc, v->std);
		assert_int_equal(crypto_b64url_decode(v->url, strlen(v->url), dec,
			sizeof dec), (long)n);
		assert_memory_equal(dec, v->plain, n);
		assert_int_equal(crypto_b64_decode(v->std, strlen(v->std), dec,
			sizeof dec), (long)n);
		assert_memory_equal(dec, v->plain, n);
	}
}

static void test_b64url_round_trip_all_lengths(void **state)
{
	uint8_t in[80], out[80];
	char enc[CRYPTO_B64URL_LEN(80) + 1], std[CRYPTO_B64_LEN(80) + 1];

	(void)state;
	for (size_t n = 0; n <= sizeof in; n++) {
		assert_int_equal(crypto_random(in, n), 0);
		long e = crypto_b64url_encode(in, n, enc, sizeof enc);
		assert_int_equal(e, (long)CRYPTO_B64URL_LEN(n));
		assert_null(strpbrk(enc, "+/="));
		assert_int_equal(crypto_b64url_decode(enc, (size_t)e, out, sizeof out), (long)n);
		assert_memory_equal(in, out, n);
		e = crypto_b64_encode(in, n, std, sizeof std);
		assert_int_equal(e, (long)CRYPTO_B64_LEN(n));
		assert_int_equal(crypto_b64_decode(std, (size_t)e, out, sizeof out), (long)n);
		assert_memory_equal(in, out, n);
	}
}

static const char *const b64url_rejects[] = {
	"Z",        /* length 1 mod 4 */
	"Zm9vY",    /* length 1 mod 4 */
	"Zh",       /* non-zero trailing bits ("Zg" is canonical) */
	"Zm9",      /* non-zero trailing bits ("Zm8" is canonical) */
	"Zg==",     /* padding not allowed */
	"Zm8=",
	"Zm+v",     /* standard alphabet */
	"Zm/v",
	"Zm9v\n",
	"Zm 9v",
	" Zm9v",
	"Zm9v.",
	"\xc3\xa9xx",
};

static void test_b64url_rejects(void **state)
{
	uint8_t out[32];

	(void)state;
	for (size_t i = 0; i < sizeof b64url_rejects / sizeof b64url_rejects[0]; i++) {
		const char *s = b64url_rejects[i];
		if (crypto_b64url_decode(s, strlen(s), out, sizeof out) != -1)
			fail_msg("accepted bad base64url \"%s\"", s);
	}
	/* An embedded NUL is a bad character, not an end. */
	assert_int_equal(crypto_b64url_decode("Zm\0v", 4, out, sizeof out), -1);
	/* Output too small. */
	assert_int_equal(crypto_b64url_decode("Zm9vYmFy", 8, out, 5), -1);
	assert_int_equal(crypto_b64url_encode("foobar", 6, (char *)out, 8), -1);
}

static const char *const b64_rejects[] = {
	"Zg=",      /* wrong amount of padding */
	"Zg===",
	"Z===",
	"====",
	"Zm9v=",
	"Zm8==",
	"=Zm8",
	"Zm=8",
	"Zh==",     /* non-zero trailing bits */
	"Zm9=",
	"Zm-v",     /* url alphabet */
	"Zm_v",
	"Zm9v\n",
	"Zm9 v",
	"Z",
};

static void test_b64_rejects(void **state)
{
	uint8_t out[32];

	(void)state;
	for (size_t i = 0; i < sizeof b64_rejects / sizeof b64_rejects[0]; i++) {
		const char *s = b64_rejects[i];
		if (crypto_b64_decode(s, strlen(s), out, sizeof out) != -1)
			fail_msg("accepted bad base64 \"%s\"", s);
	}
	/* Padding may be omitted. */
	assert_int_equal(crypto_b64_decode("Zg", 2, out, sizeof out), 1);
	assert_int_equal(out[0], 'f');
	assert_int_equal(crypto_b64_decode("+/8", 3, out, sizeof out), 2);
	assert_int_equal(out[0], 0xfb);
}

/* ---- equal, token ------------------------------------------------------ */

static void test_equal(void **state)
{
	(void)state;
	assert_true(crypto_equal("abcdef", "abcdef", 6));
	assert_false(crypto_equal("abcdef", "abcdeg", 6));
	assert_false(crypto_equal("xbcdef", "abcdef", 6));
	assert_true(crypto_equal("a", "b", 0));
}

static void test_token(void **state)
{
	char a[CRYPTO_TOKEN_STRLEN(32)], b[CRYPTO_TOKEN_STRLEN(32)];
	uint8_t raw[40];

	(void)state;
	assert_int_equal(crypto_token(a, sizeof a, 32), 0);
	assert_int_equal(crypto_token(b, sizeof b, 32), 0);
	assert_int_equal(strlen(a), 43);
	assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789-_"), 43);
	assert_string_not_equal(a, b);
	assert_int_equal(crypto_b64url_decode(a, 43, raw, sizeof raw), 32);
	assert_int_equal(crypto_token(a, sizeof a - 1, 32), -1);
	assert_int_equal(crypto_token(a, sizeof a, 0), -1);
	assert_int_equal(crypto_token(a, sizeof a, CRYPTO_TOKEN_MAX_BYTES + 1), -1);
}

static void test_random(void **state)
{
	uint8_t a[32] = { 0 }, b[32] = { 0 }, zero[32] = { 0 };

	(void)state;
	assert_int_equal(crypto_random(a, sizeof a), 0);
	assert_int_equal(crypto_random(b, sizeof b), 0);
	assert_memory_not_equal(a, b, sizeof a);
	assert_memory_not_equal(a, zero, sizeof a);
	assert_int_equal(crypto_random(NULL, 0), 0);
}

/* ---- AES-256-GCM ------------------------------------------------------- */

static const char secret[] = "EAAGm0PX4ZCpsBA-access-token";
static const char row_id[] = "0190f5d2-7c1e-7a3b-9f00-1234567890ab";

static void test_aead_round_trip(void **state)
{
	uint8_t key[CRYPTO_AEAD_KEY_LEN], sealed[128], plain[128];
	long n, m;

	(void)state;
	assert_int_equal(crypto_random(key, sizeof key), 0);
	n = crypto_aead_seal(key, row_id, strlen(row_id), secret, strlen(secret),
		sealed, sizeof sealed);
	assert_int_equal(n, (long)(strlen(secret) + CRYPTO_AEAD_OVERHEAD));
	assert_int_equal(sealed[0], CRYPTO_AEAD_VERSION);
	assert_null(memmem(sealed, (size_t)n, "access-token", 12));
	m = crypto_aead_open(key, row_id, strlen(row_id), sealed, (size_t)n, plain,
		sizeof plain);
	assert_int_equal(m, (long)strlen(secret));
	assert_memory_equal(plain, secret, strlen(secret));

	/* Empty plaintext and empty ad. */
	n = crypto_aead_seal(key, NULL, 0, NULL, 0, sealed, sizeof sealed);
	assert_int_equal(n, CRYPTO_AEAD_OVERHEAD);
	assert_int_equal(crypto_aead_open(key, NULL, 0, sealed, (size_t)n, plain,
		sizeof plain), 0);
	/* Output buffer too small. */
	assert_int_equal(crypto_aead_seal(key, NULL, 0, secret, strlen(secret),
		sealed, strlen(secret) + CRYPTO_AEAD_OVERHEAD - 1), -1);
}

static void test_aead_tamper_every_byte(void **state)
{
	uint8_t key[CRYPTO_AEAD_KEY_LEN], sealed[128], plain[128];
	long n;

	(void)state;
	assert_int_equal(crypto_random(key, sizeof key), 0);
	n = crypto_aead_seal(key, row_id, strlen(row_id), secret, strlen(secret),
		sealed, sizeof sealed);
	assert_true(n > 0);
	/* version, nonce, ciphertext and tag: one flipped bit anywhere fails. */
	for (long i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			sealed[i] ^= (uint8_t)(1u << bit);
			if (crypto_aead_open(key, row_id, strlen(row_id), sealed, (size_t)n,
				    plain, sizeof plain) != -1)
				fail_msg("tampered byte %ld bit %d opened", i, bit);
			sealed[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Truncated and extended values fail. */
	assert_int_equal(crypto_aead_open(key, row_id, strlen(row_id), sealed,
		(size_t)n - 1, plain, sizeof plain), -1);
	sealed[n] = 0;
	assert_int_equal(crypto_aead_open(key, row_id, strlen(row_id), sealed,
		(size_t)n + 1, plain, sizeof plain), -1);
	assert_int_equal(crypto_aead_open(key, row_id, strlen(row_id), sealed,
		CRYPTO_AEAD_OVERHEAD - 1, plain, sizeof plain), -1);
	/* Untouched still opens. */
	assert_int_equal(crypto_aead_open(key, row_id, strlen(row_id), sealed,
		(size_t)n, plain, sizeof plain), (long)strlen(secret));
}

static void test_aead_wrong_ad_and_key(void **state)
{
	uint8_t key[CRYPTO_AEAD_KEY_LEN], key2[CRYPTO_AEAD_KEY_LEN];
	uint8_t sealed[128], plain[128];
	const char other_row[] = "0190f5d2-7c1e-7a3b-9f00-1234567890ac";
	long n;

	(void)state;
	assert_int_equal(crypto_random(key, sizeof key), 0);
	memcpy(key2, key, sizeof key);
	key2[31] ^= 1;
	n = crypto_aead_seal(key, row_id, strlen(row_id), secret, strlen(secret),
		sealed, sizeof sealed);
	assert_true(n > 0);
	memset(plain, 0, sizeof plain);
	assert_int_equal(crypto_aead_open(key, other_row, strlen(other_row), sealed,
		(size_t)n, plain, sizeof plain), -1);
	/* GCM decrypts before the tag check; the failed open wiped it. */
	assert_null(memmem(plain, sizeof plain, "access", 6));
	assert_int_equal(crypto_aead_open(key, NULL, 0, sealed, (size_t)n, plain,
		sizeof plain), -1);
	assert_int_equal(crypto_aead_open(key2, row_id, strlen(row_id), sealed,
		(size_t)n, plain, sizeof plain), -1);
}

static void test_aead_fresh_nonce(void **state)
{
	uint8_t key[CRYPTO_AEAD_KEY_LEN], a[128], b[128];
	long na, nb;

	(void)state;
	assert_int_equal(crypto_random(key, sizeof key), 0);
	na = crypto_aead_seal(key, row_id, strlen(row_id), secret, strlen(secret), a, sizeof a);
	nb = crypto_aead_seal(key, row_id, strlen(row_id), secret, strlen(secret), b, sizeof b);
	assert_int_equal(na, nb);
	assert_memory_not_equal(a + 1, b + 1, CRYPTO_AEAD_NONCE_LEN);
	assert_memory_not_equal(a, b, (size_t)na);
}

static void test_aead_text(void **state)
{
	uint8_t key[CRYPTO_AEAD_KEY_LEN];
	char *s1 = NULL, *s2 = NULL, *plain = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(crypto_random(key, sizeof key), 0);
	assert_int_equal(crypto_aead_seal_text(key, row_id, secret, strlen(secret), &s1), 0);
	assert_int_equal(crypto_aead_seal_text(key, row_id, secret, strlen(secret), &s2), 0);
	assert_string_not_equal(s1, s2);
	assert_null(strstr(s1, "access"));
	assert_int_equal(crypto_aead_open_text(key, row_id, s1, &plain, &len), 0);
	assert_int_equal(len, strlen(secret));
	assert_string_equal(plain, secret);
	crypto_secret_free(plain);
	plain = NULL;

	assert_int_equal(crypto_aead_open_text(key, "other-row", s1, &plain, NULL), -1);
	assert_null(plain);
	s1[10] = s1[10] == 'A' ? 'B' : 'A';
	assert_int_equal(crypto_aead_open_text(key, row_id, s1, &plain, NULL), -1);
	assert_int_equal(crypto_aead_open_text(key, row_id, "not base64!", &plain, NULL), -1);
	assert_int_equal(crypto_aead_open_text(key, row_id, "", &plain, NULL), -1);
	assert_int_equal(crypto_aead_open_text(key, row_id, "AAAA", &plain, NULL), -1);
	assert_null(plain);
	free(s1);
	free(s2);
	crypto_secret_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_hmac_empty_key_and_data),
		cmocka_unit_test(test_hmac_threads),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64url_round_trip_all_lengths),
		cmocka_unit_test(test_b64url_rejects),
		cmocka_unit_test(test_b64_rejects),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_aead_round_trip),
		cmocka_unit_test(test_aead_tamper_every_byte),
		cmocka_unit_test(test_aead_wrong_ad_and_key),
		cmocka_unit_test(test_aead_fresh_nonce),
		cmocka_unit_test(test_aead_text),
	};
	return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
