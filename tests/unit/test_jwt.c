/* Unit tests for auth/jwt. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "auth/jwt.h"
#include "core/crypto.h"

#define NOW INT64_C(1760000100)
#define SUB "0190f5d2-7c1e-7a3b-9f00-1234567890ab"
#define ORG "0190f5d2-7c1e-7a3b-9f00-aaaaaaaaaaaa"
#define HS256_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
/* Claims that are valid at NOW; cases splice in their own fields. */
#define CLAIMS_BASE "\"sub\":\"" SUB "\",\"org\":\"" ORG "\",\"role\":\"org_admin\""
#define TIMES "\"iat\":1760000000,\"exp\":1760000900"
#define GOOD_PAYLOAD "{" CLAIMS_BASE "," TIMES ",\"jti\":\"jti-0001\",\"iss\":\"pytake\"}"

static const char key[] = "unit-test-key-0123456789abcdef012345";
static const char other_key[] = "unit-test-key-0123456789abcdef012346";

/* Made by an independent implementation (Python hmac + base64) from
 * HS256_HDR, GOOD_PAYLOAD and key. */
static const char python_token[] =
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
	"eyJzdWIiOiIwMTkwZjVkMi03YzFlLTdhM2ItOWYwMC0xMjM0NTY3ODkwYWIiLCJvcmciOiIw"
	"MTkwZjVkMi03YzFlLTdhM2ItOWYwMC1hYWFhYWFhYWFhYWEiLCJyb2xlIjoib3JnX2FkbWlu"
	"IiwiaWF0IjoxNzYwMDAwMDAwLCJleHAiOjE3NjAwMDA5MDAsImp0aSI6Imp0aS0wMDAxIiwi"
	"aXNzIjoicHl0YWtlIn0.LS6G4EgQcfRokP1qcZcs9H6eFMEvnkoyijU_Z4Ev5dw";

/* Build header.payload.signature by hand, signed with k. */
static void build_token(const char *hdr, const char *payload, const char *k,
	char *out, size_t outsz)
{
	uint8_t mac[CRYPTO_SHA256_LEN];
	long n, m;

	n = crypto_b64url_encode(hdr, strlen(hdr), out, outsz);
	assert_true(n > 0);
	out[n++] = '.';
	m = crypto_b64url_encode(payload, strlen(payload), out + n, outsz - (size_t)n);
	assert_true(m > 0);
	n += m;
	assert_int_equal(crypto_hmac_sha256(k, strlen(k), out, (size_t)n, mac), 0);
	out[n++] = '.';
	assert_true(crypto_b64url_encode(mac, sizeof mac, out + n, outsz - (size_t)n) > 0);
}

struct signed_case {
	const char *name;
	const char *hdr;
	const char *payload;
	enum jwt_status want;
};

static const struct signed_case signed_cases[] = {
	{ "valid", HS256_HDR, GOOD_PAYLOAD, JWT_OK },
	{ "header keys in other order", "{\"typ\":\"JWT\",\"alg\":\"HS256\"}", GOOD_PAYLOAD, JWT_OK },
	{ "header without typ", "{\"alg\":\"HS256\"}", GOOD_PAYLOAD, JWT_OK },
	{ "header with kid", "{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, JWT_OK },
	{ "extra claims ignored", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\",\"x\":[1,{}]}", JWT_OK },
	{ "upper-case uuids", HS256_HDR, "{\"sub\":\"0190F5D2-7C1E-7A3B-9F00-1234567890AB\",\"org\":\"" ORG "\",\"role\":\"r\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_OK },
	{ "nbf in the past", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"nbf\":1760000000,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_OK },
	{ "nbf now", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"nbf\":1760000100,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_OK },
	/* expiry */
	{ "expired", HS256_HDR, "{" CLAIMS_BASE ",\"iat\":1760000000,\"exp\":1760000099,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_EXPIRED },
	{ "exp == now is expired", HS256_HDR, "{" CLAIMS_BASE ",\"iat\":1760000000,\"exp\":1760000100,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_EXPIRED },
	{ "expired and wrong iss", HS256_HDR, "{" CLAIMS_BASE ",\"iat\":1,\"exp\":2,\"jti\":\"j\",\"iss\":\"evil\"}", JWT_INVALID },
	/* algorithm pinning */
	{ "alg none", "{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, JWT_INVALID },
	{ "alg HS512", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, JWT_INVALID },
	{ "alg RS256", "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, JWT_INVALID },
	{ "alg hs256", "{\"alg\":\"hs256\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, JWT_INVALID },
	{ "alg HS256 with NUL tail", "{\"alg\":\"HS256\\u0000\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, JWT_INVALID },
	{ "alg missing", "{\"typ\":\"JWT\"}", GOOD_PAYLOAD, JWT_INVALID },
	{ "alg not a string", "{\"alg\":256,\"typ\":\"JWT\"}", GOOD_PAYLOAD, JWT_INVALID },
	{ "alg twice", "{\"alg\":\"HS256\",\"alg\":\"none\"}", GOOD_PAYLOAD, JWT_INVALID },
	{ "crit header", "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", GOOD_PAYLOAD, JWT_INVALID },
	{ "typ not JWT", "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", GOOD_PAYLOAD, JWT_INVALID },
	{ "header is an array", "[\"HS256\"]", GOOD_PAYLOAD, JWT_INVALID },
	{ "header not JSON", "{alg:HS256}", GOOD_PAYLOAD, JWT_INVALID },
	/* issuer */
	{ "wrong iss", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"jti\":\"j\",\"iss\":\"other\"}", JWT_INVALID },
	{ "iss with trailing space", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"jti\":\"j\",\"iss\":\"pytake \"}", JWT_INVALID },
	{ "iss prefix", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"jti\":\"j\",\"iss\":\"pytak\"}", JWT_INVALID },
	{ "iss missing", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"jti\":\"j\"}", JWT_INVALID },
	{ "iss null", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"jti\":\"j\",\"iss\":null}", JWT_INVALID },
	/* missing claims */
	{ "sub missing", HS256_HDR, "{\"org\":\"" ORG "\",\"role\":\"r\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "org missing", HS256_HDR, "{\"sub\":\"" SUB "\",\"role\":\"r\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "role missing", HS256_HDR, "{\"sub\":\"" SUB "\",\"org\":\"" ORG "\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "exp missing", HS256_HDR, "{" CLAIMS_BASE ",\"iat\":1760000000,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "iat missing", HS256_HDR, "{" CLAIMS_BASE ",\"exp\":1760000900,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "jti missing", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "empty object", HS256_HDR, "{}", JWT_INVALID },
	/* ill-typed or ill-shaped claims */
	{ "exp as string", HS256_HDR, "{" CLAIMS_BASE ",\"iat\":1760000000,\"exp\":\"1760000900\",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "exp as real", HS256_HDR, "{" CLAIMS_BASE ",\"iat\":1760000000,\"exp\":1760000900.0,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "exp too big", HS256_HDR, "{" CLAIMS_BASE ",\"iat\":1760000000,\"exp\":99999999999999999999,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "iat as bool", HS256_HDR, "{" CLAIMS_BASE ",\"iat\":true,\"exp\":1760000900,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "sub as number", HS256_HDR, "{\"sub\":42,\"org\":\"" ORG "\",\"role\":\"r\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "sub not a uuid", HS256_HDR, "{\"sub\":\"admin\",\"org\":\"" ORG "\",\"role\":\"r\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "sub uuid without dashes", HS256_HDR, "{\"sub\":\"0190f5d27c1e7a3b9f001234567890abcdef\",\"org\":\"" ORG "\",\"role\":\"r\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "org not a uuid", HS256_HDR, "{\"sub\":\"" SUB "\",\"org\":\"0190f5d2-7c1e-7a3b-9f00-aaaaaaaaaaag\",\"role\":\"r\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "org with braces", HS256_HDR, "{\"sub\":\"" SUB "\",\"org\":\"{" ORG "}\",\"role\":\"r\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "role empty", HS256_HDR, "{\"sub\":\"" SUB "\",\"org\":\"" ORG "\",\"role\":\"\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "role too long", HS256_HDR, "{\"sub\":\"" SUB "\",\"org\":\"" ORG "\",\"role\":\"abcdefghijklmnopqrstuvwx\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "role longest", HS256_HDR, "{\"sub\":\"" SUB "\",\"org\":\"" ORG "\",\"role\":\"abcdefghijklmnopqrstuvw\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_OK },
	{ "role with NUL", HS256_HDR, "{\"sub\":\"" SUB "\",\"org\":\"" ORG "\",\"role\":\"a\\u0000b\"," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "jti too long", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"jti\":\"0123456789012345678901234567890123456789012345678901234567890123\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "jti as number", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"jti\":7,\"iss\":\"pytake\"}", JWT_INVALID },
	{ "nbf in the future", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"nbf\":1760000101,\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "nbf as string", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"nbf\":\"0\",\"jti\":\"j\",\"iss\":\"pytake\"}", JWT_INVALID },
	{ "duplicate claim", HS256_HDR, "{" CLAIMS_BASE "," TIMES ",\"jti\":\"j\",\"iss\":\"pytake\",\"role\":\"super_admin\"}", JWT_INVALID },
	{ "payload is an array", HS256_HDR, "[1,2]", JWT_INVALID },
	{ "payload not JSON", HS256_HDR, "not json", JWT_INVALID },
	{ "payload with trailing garbage", HS256_HDR, GOOD_PAYLOAD "x", JWT_INVALID },
};

static void test_signed_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof signed_cases / sizeof signed_cases[0]; i++) {
		const struct signed_case *tc = &signed_cases[i];
		char tok[2048];
		struct jwt_claims c;
		enum jwt_status st;

		build_token(tc->hdr, tc->payload, key, tok, sizeof tok);
		st = jwt_decode(tok, key, strlen(key), "pytake", NOW, &c);
		if (st != tc->want)
			fail_msg("case \"%s\": got %d want %d", tc->name, st, tc->want);
		if (st == JWT_INVALID) {
			assert_string_equal(c.sub, ""); /* out zeroed */
		} else {
			assert_string_equal(c.sub, SUB);
			assert_string_equal(c.org, ORG);
			assert_string_equal(c.iss, "pytake");
		}
		/* The same token under another key is always invalid. */
		assert_int_equal(jwt_decode(tok, other_key, strlen(other_key), "pytake",
			NOW, &c), JWT_INVALID);
	}
}

static const struct jwt_claims good_claims = {
	.sub = SUB, .org = ORG, .role = "org_admin",
	.iat = 1760000000, .exp = 1760000900, .jti = "jti-0001", .iss = "pytake",
};

static void test_round_trip_and_interop(void **state)
{
	struct jwt_claims c;
	char *tok = NULL;

	(void)state;
	assert_int_equal(jwt_encode(&good_claims, key, strlen(key), &tok), 0);
	/* Header exactly {"alg":"HS256","typ":"JWT"}; same bytes as Python. */
	assert_string_equal(tok, python_token);
	assert_int_equal(jwt_decode(tok, key, strlen(key), "pytake", NOW, &c), JWT_OK);
	assert_memory_equal(&c, &good_claims, sizeof c);
	assert_int_equal(jwt_decode(tok, key, strlen(key), "pytake", good_claims.exp, &c),
		JWT_EXPIRED);
	assert_string_equal(c.jti, "jti-0001"); /* claims still filled */
	assert_int_equal(jwt_decode(tok, key, strlen(key), "other", NOW, &c), JWT_INVALID);
	assert_int_equal(jwt_decode(tok, other_key, strlen(other_key), "pytake", NOW, &c),
		JWT_INVALID);
	free(tok);
}

static void test_encode_rejects(void **state)
{
	struct jwt_claims c;
	char *tok = NULL;

	(void)state;
	c = good_claims;
	memcpy(c.sub, "not-a-uuid", 11);
	assert_int_equal(jwt_encode(&c, key, strlen(key), &tok), -1);
	c = good_claims;
	c.role[0] = '\0';
	assert_int_equal(jwt_encode(&c, key, strlen(key), &tok), -1);
	c = good_claims;
	c.exp = c.iat - 1;
	assert_int_equal(jwt_encode(&c, key, strlen(key), &tok), -1);
	c = good_claims;
	memset(c.jti, 'x', sizeof c.jti); /* not NUL-terminated */
	assert_int_equal(jwt_encode(&c, key, strlen(key), &tok), -1);
	c = good_claims;
	memcpy(c.role, "\xff\xfe", 3); /* not UTF-8 */
	assert_int_equal(jwt_encode(&c, key, strlen(key), &tok), -1);
	assert_int_equal(jwt_encode(&good_claims, key, 0, &tok), -1);
	assert_null(tok);
}

/* Mutations of a valid token: all must be rejected. */
static void test_tampering(void **state)
{
	struct jwt_claims c;
	char tok[1024], forged[2048], *dot1, *dot2;
	char evil[1024];
	size_t n;

	(void)state;
	build_token(HS256_HDR, GOOD_PAYLOAD, key, tok, sizeof tok);
	assert_int_equal(jwt_decode(tok, key, strlen(key), "pytake", NOW, &c), JWT_OK);
	n = strlen(tok);
	dot1 = strchr(tok, '.');
	dot2 = strrchr(tok, '.');

	/* Tampered payload, original signature. */
	build_token(HS256_HDR, "{" CLAIMS_BASE ",\"iat\":1760000000,\"exp\":1960000900,"
		"\"jti\":\"jti-0001\",\"iss\":\"pytake\"}", key, evil, sizeof evil);
	snprintf(forged, sizeof forged, "%.*s%s", (int)(strrchr(evil, '.') - evil), evil, dot2);
	assert_int_equal(jwt_decode(forged, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);

	/* Every single-character change anywhere is rejected. */
	for (size_t i = 0; i < n; i++) {
		memcpy(forged, tok, n + 1);
		forged[i] = forged[i] == 'A' ? 'B' : 'A';
		if (jwt_decode(forged, key, strlen(key), "pytake", NOW, &c) != JWT_INVALID)
			fail_msg("change at %zu accepted", i);
	}
	/* Non-canonical last signature character (same 32 bytes if decoded
	 * leniently): the low 2 bits of the 43rd character must be zero. */
	memcpy(forged, tok, n + 1);
	{
		static const char alpha[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *p = strchr(alpha, forged[n - 1]);
		assert_non_null(p);
		forged[n - 1] = alpha[(p - alpha) | 1];
	}
	assert_int_equal(jwt_decode(forged, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);
	/* Padding, whitespace and extra parts. */
	snprintf(forged, sizeof forged, "%s=", tok);
	assert_int_equal(jwt_decode(forged, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);
	snprintf(forged, sizeof forged, "%s ", tok);
	assert_int_equal(jwt_decode(forged, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);
	snprintf(forged, sizeof forged, " %s", tok);
	assert_int_equal(jwt_decode(forged, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);
	snprintf(forged, sizeof forged, "%s.", tok);
	assert_int_equal(jwt_decode(forged, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);
	snprintf(forged, sizeof forged, "Bearer %s", tok);
	assert_int_equal(jwt_decode(forged, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);
	/* Signature stripped ("alg":"none" style, but keeping our header). */
	snprintf(forged, sizeof forged, "%.*s.", (int)(dot2 - tok), tok);
	assert_int_equal(jwt_decode(forged, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);
	/* Header swapped for alg none, signature dropped. */
	{
		char hdr[64];
		assert_true(crypto_b64url_encode("{\"alg\":\"none\",\"typ\":\"JWT\"}", 26,
			hdr, sizeof hdr) > 0);
		snprintf(forged, sizeof forged, "%s%.*s.", hdr, (int)(dot2 - dot1), dot1);
		assert_int_equal(jwt_decode(forged, key, strlen(key), "pytake", NOW, &c),
			JWT_INVALID);
	}
}

static void test_garbage(void **state)
{
	static const char *const garbage[] = {
		"", ".", "..", "...", "a", "a.b", "a.b.c", "a.b.c.d", "..c", "a..c",
		"eyJhbGciOiJIUzI1NiJ9..", "eyJhbGciOiJIUzI1NiJ9.e30.",
		"\xff\xfe.\x01\x02.\x7f", "null", "{}.{}.{}",
	};
	struct jwt_claims c;
	char *huge;

	(void)state;
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
		if (jwt_decode(garbage[i], key, strlen(key), "pytake", NOW, &c) != JWT_INVALID)
			fail_msg("garbage \"%s\" accepted", garbage[i]);
	}
	/* Huge: a valid token padded out past JWT_MAX_LEN by a long claim. */
	huge = malloc(JWT_MAX_LEN * 2);
	assert_non_null(huge);
	{
		char payload[JWT_MAX_LEN];
		int n = snprintf(payload, sizeof payload, "{" CLAIMS_BASE "," TIMES
			",\"jti\":\"j\",\"iss\":\"pytake\",\"pad\":\"%0*d\"}", 3200, 0);
		assert_true(n > 0 && (size_t)n < sizeof payload);
		build_token(HS256_HDR, payload, key, huge, JWT_MAX_LEN * 2);
		assert_true(strlen(huge) > JWT_MAX_LEN);
		assert_int_equal(jwt_decode(huge, key, strlen(key), "pytake", NOW, &c),
			JWT_INVALID);
	}
	memset(huge, 'A', JWT_MAX_LEN * 2 - 1);
	huge[JWT_MAX_LEN * 2 - 1] = '\0';
	assert_int_equal(jwt_decode(huge, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);
	free(huge);
	/* Bad arguments. */
	assert_int_equal(jwt_decode(NULL, key, strlen(key), "pytake", NOW, &c), JWT_INVALID);
	assert_int_equal(jwt_decode(python_token, key, 0, "pytake", NOW, &c), JWT_INVALID);
	assert_int_equal(jwt_decode(python_token, key, strlen(key), NULL, NOW, &c), JWT_INVALID);
	assert_int_equal(jwt_decode(python_token, key, strlen(key), "pytake", NOW, NULL),
		JWT_INVALID);
	assert_int_equal(jwt_decode(python_token, key, strlen(key), "pytake", NOW, &c), JWT_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signed_table),
		cmocka_unit_test(test_round_trip_and_interop),
		cmocka_unit_test(test_encode_rejects),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests_name("jwt", tests, NULL, NULL);
}
