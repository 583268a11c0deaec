/* uuid: RFC 9562 UUID version 7 (48-bit ms timestamp, random rest),
 * monotonic within a process even when many are made in one millisecond. */
#ifndef PYTAKE_UUID_H
#define PYTAKE_UUID_H
#include <stdbool.h>
#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 chars + NUL */

struct uuid { uint8_t b[16]; };

/* A new v7 UUID. Thread-safe. Returns 0, or -1 if no randomness. */
int uuid_v7(struct uuid *out) __attribute__((warn_unused_result));
/* Lower-case canonical form 8-4-4-4-12 into out[UUID_STR_LEN]. */
void uuid_format(const struct uuid *u, char out[UUID_STR_LEN]);
/* Convenience: a new v7 straight into text. */
int uuid_v7_str(char out[UUID_STR_LEN]) __attribute__((warn_unused_result));
/* Accepts canonical 36-char form, either case; false otherwise. */
bool uuid_parse(const char *s, struct uuid *out);
/* True when s is a canonical UUID string (any version). */
bool uuid_is_valid(const char *s);

#endif
