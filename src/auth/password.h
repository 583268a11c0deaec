/* password: argon2id password hashing (libsodium crypto_pwhash_str) with a
 * bound on how many hashes run at once.
 *
 * Design note: one argon2id hash at the INTERACTIVE limits costs 64 MiB and
 * tens of milliseconds of one core. A flood of logins must not be able to
 * exhaust memory, so every hash and verify takes a slot from a process-wide
 * counting semaphore (password_setup: default 2 x online cores, at least 2).
 * A caller waits at most wait_ms for a slot and otherwise gets PASSWORD_BUSY,
 * which the API answers with 503 + Retry-After.
 *
 * password_dummy_verify() costs the same as a real verify (it verifies
 * against a fixed hash with the same parameters, shipped in the source so
 * start-up computes none), so a login for an unknown email takes as long as
 * one with a wrong password.
 *
 * Thread-safe. sodium_init() runs once, on first use. Nothing here logs. */
#ifndef PYTAKE_PASSWORD_H
#define PYTAKE_PASSWORD_H
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

/* Size of the buffer for an encoded hash ("$argon2id$v=19$m=...", NUL
 * terminated). */
#define PASSWORD_HASH_LEN crypto_pwhash_STRBYTES
/* Longest password accepted, in bytes (the API asks for >= 8 characters;
 * this only bounds work on hostile input). */
#define PASSWORD_MAX_LEN 1024
/* Wait for a slot used until password_setup() says otherwise. */
#define PASSWORD_DEFAULT_WAIT_MS 2000

enum password_rc {
	PASSWORD_OK = 0,        /* hashed, or the password matches */
	PASSWORD_MISMATCH = 1,  /* verify: wrong password */
	PASSWORD_ERROR = -1,    /* bad argument, malformed hash, out of memory */
	PASSWORD_BUSY = -2,     /* no slot free within the wait: answer 503 */
};

/* Configure the concurrency bound: at most max_concurrent hashes at once
 * (0 = default: 2 x online cores, at least 2), each caller waiting at most
 * wait_ms for a slot (0 = do not wait). Call at start-up; calling again
 * later is safe (slots already held stay counted). Returns 0, or -1 when
 * libsodium cannot be initialised. */
int password_setup(unsigned max_concurrent, unsigned wait_ms)
	__attribute__((warn_unused_result));

/* The current bound on hashes running at once (what password_setup set,
 * or the default before it ran). */
unsigned password_max_concurrent(void);

/* Hash plain (NUL-terminated, at most PASSWORD_MAX_LEN bytes) with
 * argon2id, OPSLIMIT_INTERACTIVE / MEMLIMIT_INTERACTIVE and a random salt,
 * into out (outsz >= PASSWORD_HASH_LEN; NUL-terminated, starts with
 * "$argon2id$"). Returns PASSWORD_OK, PASSWORD_BUSY or PASSWORD_ERROR
 * (bad argument, out too small, out of memory; out untouched). */
int password_hash(const char *plain, char *out, size_t outsz)
	__attribute__((warn_unused_result));

/* Check plain against an encoded hash made by password_hash (or any
 * libsodium argon2id / argon2i string). Returns PASSWORD_OK,
 * PASSWORD_MISMATCH, PASSWORD_BUSY, or PASSWORD_ERROR (malformed hash,
 * out of memory). A password longer than PASSWORD_MAX_LEN is a mismatch
 * (after the same work as a real verify). */
int password_verify(const char *plain, const char *hash)
	__attribute__((warn_unused_result));

/* 1 when hash was made with other parameters than the current ones (re-hash
 * it after a successful login), 0 when it is current, -1 when it is not a
 * valid argon2 hash string. */
int password_needs_rehash(const char *hash);

/* Spend the time and memory of one password_verify against a fixed hash,
 * for a login whose email is unknown. Returns PASSWORD_MISMATCH (the only
 * "normal" answer), PASSWORD_BUSY or PASSWORD_ERROR. */
int password_dummy_verify(void);

/* Lower level: take one slot of the semaphore, waiting at most the
 * configured wait. Returns 0, or PASSWORD_BUSY. Every success must be
 * paired with password_slot_release(). Used internally and by tests. */
int password_slot_acquire(void) __attribute__((warn_unused_result));
/* Give back a slot taken by password_slot_acquire(). */
void password_slot_release(void);

#endif
