/* jwt: access tokens as JSON Web Tokens, HS256 only, on OpenSSL HMAC.
 *
 * jwt_encode writes the header exactly {"alg":"HS256","typ":"JWT"} and the
 * claims sub, org, role, iat, exp, jti, iss.
 *
 * jwt_decode trusts nothing before the signature checks out: it splits the
 * token, verifies HMAC-SHA256 over "header.payload" with a constant-time
 * compare, and only then parses the JSON (jansson, duplicate keys
 * rejected). It pins the algorithm (header "alg" must be exactly "HS256";
 * "none", "HS512", "RS256", "hs256" and a missing alg are rejected), rejects
 * a "crit" header, checks iss, the types and shapes of all claims, nbf if
 * present, and exp itself. Revocation (jti) is the caller's business.
 *
 * Low layer: returns codes, never logs. Thread-safe. */
#ifndef PYTAKE_JWT_H
#define PYTAKE_JWT_H
#include <stddef.h>
#include <stdint.h>

/* Longest token jwt_decode looks at; longer ones are JWT_INVALID. */
#define JWT_MAX_LEN 4096

struct jwt_claims {
	char sub[37];  /* user id, canonical lower-case UUID */
	char org[37];  /* organization id, canonical lower-case UUID */
	char role[24]; /* non-empty */
	int64_t iat, exp;
	char jti[64];  /* non-empty token id, for revocation */
	char iss[32];  /* issuer, "pytake" */
};

enum jwt_status {
	JWT_OK = 0,
	JWT_EXPIRED, /* signature and claims valid, but exp <= now */
	JWT_INVALID, /* anything else: malformed, forged, wrong alg or iss ... */
};

/* Sign claims with key (keylen bytes, > 0; use >= 32 random bytes) into a
 * compact JWT. On success *out is a malloc'd NUL-terminated token (caller
 * frees with free()) and 0 is returned; -1 when a claim is unusable (sub or
 * org not a UUID, empty role / jti / iss, a string field not NUL-terminated
 * within its array, exp < iat) or on allocation / OpenSSL failure. */
int jwt_encode(const struct jwt_claims *claims, const void *key, size_t keylen,
	char **out) __attribute__((warn_unused_result));

/* Verify token (NUL-terminated) with key and check its claims: iss must
 * equal expected_iss, now (seconds since the epoch) decides exp and nbf.
 * On JWT_OK and JWT_EXPIRED *out holds the claims (sub and org lower-case);
 * on JWT_INVALID *out is zeroed. */
enum jwt_status jwt_decode(const char *token, const void *key, size_t keylen,
	const char *expected_iss, int64_t now, struct jwt_claims *out)
	__attribute__((warn_unused_result));

#endif
