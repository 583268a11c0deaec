/* jwt: see jwt.h. */
#include "auth/jwt.h"

#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "core/crypto.h"

/* base64url of {"alg":"HS256","typ":"JWT"} */
static const char jwt_header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

#define JWT_SIG_B64_LEN CRYPTO_B64URL_LEN(CRYPTO_SHA256_LEN) /* 43 */
/* Decoded header / payload never exceed this (JWT_MAX_LEN chars of b64). */
#define JWT_PART_MAX CRYPTO_B64_DECODED_MAX(JWT_MAX_LEN)

/* Canonical 8-4-4-4-12 hex UUID, either case. */
static bool is_uuid(const char *s, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* True when the string field of n bytes is NUL-terminated inside it. */
static bool fits(const char *field, size_t n)
{
	return memchr(field, '\0', n) != NULL;
}

static bool claims_are_encodable(const struct jwt_claims *c)
{
	if (!fits(c->sub, sizeof c->sub) || !fits(c->org, sizeof c->org)
		|| !fits(c->role, sizeof c->role) || !fits(c->jti, sizeof c->jti)
		|| !fits(c->iss, sizeof c->iss))
		return false;
	return is_uuid(c->sub, strlen(c->sub)) && is_uuid(c->org, strlen(c->org))
		&& c->role[0] && c->jti[0] && c->iss[0] && c->exp >= c->iat;
}

/* The claims as compact JSON (malloc'd by jansson), or NULL. */
static char *claims_to_json(const struct jwt_claims *c)
{
	json_t *obj;
	char *text;

	obj = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "sub", c->sub,
		"org", c->org, "role", c->role, "iat", (json_int_t)c->iat,
		"exp", (json_int_t)c->exp, "jti", c->jti, "iss", c->iss);
	if (obj == NULL)
		return NULL;
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	return text;
}

int jwt_encode(const struct jwt_claims *claims, const void *key, size_t keylen,
	char **out)
{
	uint8_t mac[CRYPTO_SHA256_LEN];
	char *payload = NULL, *tok = NULL;
	size_t plen, hlen = sizeof jwt_header_b64 - 1, cap, pos;
	long n;
	int rc = -1;

	if (claims == NULL || key == NULL || keylen == 0 || out == NULL
		|| !claims_are_encodable(claims))
		return -1;
	payload = claims_to_json(claims);
	if (payload == NULL)
		goto out;
	plen = strlen(payload);
	cap = hlen + 1 + CRYPTO_B64URL_LEN(plen) + 1 + JWT_SIG_B64_LEN + 1;
	if (cap > JWT_MAX_LEN + 1)
		goto out;
	tok = malloc(cap);
	if (tok == NULL)
		goto out;
	memcpy(tok, jwt_header_b64, hlen);
	tok[hlen] = '.';
	pos = hlen + 1;
	n = crypto_b64url_encode(payload, plen, tok + pos, cap - pos);
	if (n < 0)
		goto out;
	pos += (size_t)n;
	if (crypto_hmac_sha256(key, keylen, tok, pos, mac) != 0)
		goto out;
	tok[pos++] = '.';
	if (crypto_b64url_encode(mac, sizeof mac, tok + pos, cap - pos) < 0)
		goto out;
	*out = tok;
	tok = NULL;
	rc = 0;
out:
	free(payload);
	free(tok);
	return rc;
}

/* The three parts of a compact token. */
struct jwt_parts {
	const char *header, *payload, *sig;
	size_t header_len, payload_len, sig_len;
	size_t signed_len; /* length of "header.payload" */
};

static bool split_token(const char *token, size_t len, struct jwt_parts *p)
{
	const char *d1 = memchr(token, '.', len), *d2, *end = token + len;

	if (d1 == NULL)
		return false;
	d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
	if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
		return false;
	p->header = token;
	p->header_len = (size_t)(d1 - token);
	p->payload = d1 + 1;
	p->payload_len = (size_t)(d2 - d1 - 1);
	p->sig = d2 + 1;
	p->sig_len = (size_t)(end - d2 - 1);
	p->signed_len = (size_t)(d2 - token);
	return p->header_len > 0 && p->payload_len > 0;
}

static bool signature_ok(const struct jwt_parts *p, const void *key, size_t keylen)
{
	uint8_t mac[CRYPTO_SHA256_LEN], sig[CRYPTO_SHA256_LEN + 2];
	bool ok;

	if (p->sig_len != JWT_SIG_B64_LEN
		|| crypto_b64url_decode(p->sig, p->sig_len, sig, sizeof sig)
			!= CRYPTO_SHA256_LEN
		|| crypto_hmac_sha256(key, keylen, p->header, p->signed_len, mac) != 0)
		return false;
	ok = crypto_equal(mac, sig, CRYPTO_SHA256_LEN);
	crypto_wipe(mac, sizeof mac);
	return ok;
}

/* Decode one base64url part and parse it as a JSON object, or NULL. */
static json_t *part_to_object(const char *b64, size_t len)
{
	uint8_t buf[JWT_PART_MAX];
	json_t *obj;
	long n;

	n = crypto_b64url_decode(b64, len, buf, sizeof buf);
	if (n <= 0)
		return NULL;
	obj = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	if (obj != NULL && !json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* True when key holds a string exactly equal to want. */
static bool str_equals(const json_t *obj, const char *key, const char *want)
{
	const json_t *v = json_object_get(obj, key);
	size_t n = strlen(want);

	return json_is_string(v) && json_string_length(v) == n
		&& memcmp(json_string_value(v), want, n) == 0;
}

static bool header_ok(const json_t *hdr)
{
	const json_t *typ = json_object_get(hdr, "typ");

	if (!str_equals(hdr, "alg", "HS256"))
		return false;
	if (json_object_get(hdr, "crit") != NULL)
		return false;
	return typ == NULL || str_equals(hdr, "typ", "JWT");
}

/* Copy a non-empty string claim that fits in dst[dstsz] (with NUL). */
static bool get_str(const json_t *obj, const char *key, char *dst, size_t dstsz)
{
	const json_t *v = json_object_get(obj, key);
	size_t n;

	if (!json_is_string(v))
		return false;
	n = json_string_length(v);
	if (n == 0 || n >= dstsz || memchr(json_string_value(v), '\0', n) != NULL)
		return false;
	memcpy(dst, json_string_value(v), n);
	dst[n] = '\0';
	return true;
}

static bool get_uuid(const json_t *obj, const char *key, char dst[37])
{
	if (!get_str(obj, key, dst, 37) || !is_uuid(dst, strlen(dst)))
		return false;
	for (size_t i = 0; dst[i]; i++)
		dst[i] = (char)tolower((unsigned char)dst[i]);
	return true;
}

static bool get_int(const json_t *obj, const char *key, int64_t *dst)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		return false;
	*dst = (int64_t)json_integer_value(v);
	return true;
}

/* Fill c from the payload; false on any missing or ill-typed claim, a
 * wrong issuer or a future nbf. exp is checked by the caller. */
static bool claims_from_payload(const json_t *pl, const char *expected_iss,
	int64_t now, struct jwt_claims *c)
{
	const json_t *nbf = json_object_get(pl, "nbf");

	if (!get_uuid(pl, "sub", c->sub) || !get_uuid(pl, "org", c->org)
		|| !get_str(pl, "role", c->role, sizeof c->role)
		|| !get_str(pl, "jti", c->jti, sizeof c->jti)
		|| !get_str(pl, "iss", c->iss, sizeof c->iss)
		|| !get_int(pl, "iat", &c->iat) || !get_int(pl, "exp", &c->exp))
		return false;
	if (strcmp(c->iss, expected_iss) != 0)
		return false;
	if (nbf != NULL && (!json_is_integer(nbf) || json_integer_value(nbf) > now))
		return false;
	return true;
}

enum jwt_status jwt_decode(const char *token, const void *key, size_t keylen,
	const char *expected_iss, int64_t now, struct jwt_claims *out)
{
	struct jwt_parts parts;
	struct jwt_claims c;
	json_t *hdr = NULL, *pl = NULL;
	enum jwt_status st = JWT_INVALID;
	size_t len;

	memset(&c, 0, sizeof c);
	if (out == NULL)
		return JWT_INVALID;
	memset(out, 0, sizeof *out);
	if (token == NULL || key == NULL || keylen == 0 || expected_iss == NULL)
		return JWT_INVALID;
	len = strnlen(token, JWT_MAX_LEN + 1);
	if (len > JWT_MAX_LEN || !split_token(token, len, &parts))
		return JWT_INVALID;
	/* Nothing of the token is parsed before its signature checks out. */
	if (!signature_ok(&parts, key, keylen))
		goto out;
	hdr = part_to_object(parts.header, parts.header_len);
	if (hdr == NULL || !header_ok(hdr))
		goto out;
	pl = part_to_object(parts.payload, parts.payload_len);
	if (pl == NULL || !claims_from_payload(pl, expected_iss, now, &c))
		goto out;
	st = c.exp <= now ? JWT_EXPIRED : JWT_OK;
	*out = c;
out:
	json_decref(hdr);
	json_decref(pl);
	return st;
}
