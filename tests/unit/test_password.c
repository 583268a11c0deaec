/* Unit tests for auth/password. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/password.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int setup_default(void **state)
{
	(void)state;
	return password_setup(0, PASSWORD_DEFAULT_WAIT_MS);
}

static void test_hash_and_verify(void **state)
{
	char h1[PASSWORD_HASH_LEN], h2[PASSWORD_HASH_LEN];

	(void)state;
	assert_int_equal(password_hash("correct horse battery", h1, sizeof h1), PASSWORD_OK);
	assert_int_equal(strncmp(h1, "$argon2id$", 10), 0);
	assert_non_null(strstr(h1, "m=65536"));
	assert_null(strstr(h1, "correct horse"));
	assert_int_equal(password_verify("correct horse battery", h1), PASSWORD_OK);
	assert_int_equal(password_verify("correct horse batterY", h1), PASSWORD_MISMATCH);
	assert_int_equal(password_verify("", h1), PASSWORD_MISMATCH);
	/* A fresh salt each time. */
	assert_int_equal(password_hash("correct horse battery", h2, sizeof h2), PASSWORD_OK);
	assert_string_not_equal(h1, h2);
	assert_int_equal(password_needs_rehash(h1), 0);
	/* Output buffer too small. */
	assert_int_equal(password_hash("x", h2, PASSWORD_HASH_LEN - 1), PASSWORD_ERROR);
}

static void test_bad_input(void **state)
{
	char h[PASSWORD_HASH_LEN], big[PASSWORD_MAX_LEN + 2];
	char cheap[PASSWORD_HASH_LEN];

	(void)state;
	memset(big, 'p', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(password_hash(big, h, sizeof h), PASSWORD_ERROR);
	assert_int_equal(password_hash(NULL, h, sizeof h), PASSWORD_ERROR);
	/* Malformed stored hashes are errors, not mismatches. */
	assert_int_equal(password_verify("pw", ""), PASSWORD_ERROR);
	assert_int_equal(password_verify("pw", "$argon2id$garbage"), PASSWORD_ERROR);
	assert_int_equal(password_verify("pw", "$2b$12$abcdefghijklmnopqrstuv"), PASSWORD_ERROR);
	assert_int_equal(password_verify(NULL, "$argon2id$"), PASSWORD_ERROR);
	assert_int_equal(password_needs_rehash("nonsense"), -1);
	assert_int_equal(password_needs_rehash(NULL), -1);

	/* A cheap hash (other parameters) verifies and needs a re-hash. */
	assert_int_equal(crypto_pwhash_str_alg(cheap, "pw", 2,
		crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN,
		crypto_pwhash_ALG_ARGON2ID13), 0);
	assert_int_equal(password_verify("pw", cheap), PASSWORD_OK);
	assert_int_equal(password_verify("pW", cheap), PASSWORD_MISMATCH);
	assert_int_equal(password_needs_rehash(cheap), 1);
	/* Too long: a mismatch, never a match. */
	assert_int_equal(password_verify(big, cheap), PASSWORD_MISMATCH);
	/* argon2i hashes verify and ask to be re-hashed as argon2id. */
	assert_int_equal(crypto_pwhash_str_alg(cheap, "pw", 2,
		crypto_pwhash_argon2i_OPSLIMIT_MIN, crypto_pwhash_argon2i_MEMLIMIT_MIN,
		crypto_pwhash_ALG_ARGON2I13), 0);
	assert_int_equal(password_verify("pw", cheap), PASSWORD_OK);
	assert_int_equal(password_needs_rehash(cheap), 1);
}

/* Another thread holds the only slot until told to let go. */
struct holder {
	sem_t held, go;
	unsigned release_after_ms; /* 0: wait for go */
	int acquired;
};

static void *hold_slot(void *arg)
{
	struct holder *h = arg;

	h->acquired = password_slot_acquire();
	sem_post(&h->held);
	if (h->release_after_ms)
		usleep(h->release_after_ms * 1000u);
	else
		sem_wait(&h->go);
	if (h->acquired == 0)
		password_slot_release();
	return NULL;
}

static void test_busy_when_slots_exhausted(void **state)
{
	char h[PASSWORD_HASH_LEN];
	struct holder hd = { .release_after_ms = 0 };
	pthread_t th;
	double t0, waited;

	(void)state;
	assert_int_equal(password_hash("pw-for-busy-test", h, sizeof h), PASSWORD_OK);
	assert_int_equal(password_setup(1, 150), 0);
	assert_int_equal(sem_init(&hd.held, 0, 0), 0);
	assert_int_equal(sem_init(&hd.go, 0, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, hold_slot, &hd), 0);
	assert_int_equal(sem_wait(&hd.held), 0);
	assert_int_equal(hd.acquired, 0);

	t0 = now_ms();
	assert_int_equal(password_verify("pw-for-busy-test", h), PASSWORD_BUSY);
	waited = now_ms() - t0;
	assert_true(waited >= 140.0);  /* it did wait ... */
	assert_true(waited < 2000.0);  /* ... but not much longer */
	assert_int_equal(password_hash("x", h, sizeof h), PASSWORD_BUSY);
	assert_int_equal(password_dummy_verify(), PASSWORD_BUSY);

	sem_post(&hd.go);
	assert_int_equal(pthread_join(th, NULL), 0);
	/* The slot is back. */
	assert_int_equal(password_verify("pw-for-busy-test", h), PASSWORD_OK);

	/* No waiting at all with wait_ms 0. */
	assert_int_equal(password_setup(1, 0), 0);
	hd.acquired = -1;
	assert_int_equal(pthread_create(&th, NULL, hold_slot, &hd), 0);
	assert_int_equal(sem_wait(&hd.held), 0);
	t0 = now_ms();
	assert_int_equal(password_slot_acquire(), PASSWORD_BUSY);
	assert_true(now_ms() - t0 < 50.0);
	sem_post(&hd.go);
	assert_int_equal(pthread_join(th, NULL), 0);

	sem_destroy(&hd.held);
	sem_destroy(&hd.go);
	assert_int_equal(password_setup(0, PASSWORD_DEFAULT_WAIT_MS), 0);
}

static void test_waits_for_a_slot(void **state)
{
	struct holder hd = { .release_after_ms = 100 };
	pthread_t th;
	double t0;

	(void)state;
	assert_int_equal(password_setup(1, 3000), 0);
	assert_int_equal(sem_init(&hd.held, 0, 0), 0);
	assert_int_equal(pthread_create(&th, NULL, hold_slot, &hd), 0);
	assert_int_equal(sem_wait(&hd.held), 0);
	t0 = now_ms();
	assert_int_equal(password_slot_acquire(), 0);
	assert_true(now_ms() - t0 >= 50.0);
	password_slot_release();
	assert_int_equal(pthread_join(th, NULL), 0);
	sem_destroy(&hd.held);
	assert_int_equal(password_setup(0, PASSWORD_DEFAULT_WAIT_MS), 0);
}

static void test_dummy_verify_costs_like_verify(void **state)
{
	char h[PASSWORD_HASH_LEN];
	double real = 1e18, dummy = 1e18, t0;

	(void)state;
	assert_int_equal(password_hash("some password", h, sizeof h), PASSWORD_OK);
	/* Best of 3 of each, to be robust against a noisy machine. */
	for (int i = 0; i < 3; i++) {
		t0 = now_ms();
		assert_int_equal(password_verify("wrong password", h), PASSWORD_MISMATCH);
		if (now_ms() - t0 < real)
			real = now_ms() - t0;
		t0 = now_ms();
		assert_int_equal(password_dummy_verify(), PASSWORD_MISMATCH);
		if (now_ms() - t0 < dummy)
			dummy = now_ms() - t0;
	}
	print_message("verify %.1f ms, dummy verify %.1f ms\n", real, dummy);
	assert_true(dummy > real / 3.0);
	assert_true(dummy < real * 3.0);
}

/* Peak resident memory of this process (VmHWM), in kB; -1 if unknown. */
static long vm_hwm_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

/* password_setup readies the dummy hash without hashing (the fixed one):
 * one argon2id hash would take 64 MiB at once, which used to set the
 * server's start-up peak (VmHWM 76 MB). Runs first, before any hash. */
static void test_setup_computes_no_hash(void **state)
{
	(void)state;
	long before = vm_hwm_kb();
	if (before < 0)
		skip();
	assert_int_equal(password_setup(0, PASSWORD_DEFAULT_WAIT_MS), 0);
	long grown = vm_hwm_kb() - before;
	print_message("VmHWM grew %ld kB in password_setup\n", grown);
	assert_true(grown < 16 * 1024);
	/* and the dummy verify still works, at the cost of a verify (below) */
	assert_int_equal(password_dummy_verify(), PASSWORD_MISMATCH);
}

int main(void)
{
	const struct CMUnitTest first[] = {
		cmocka_unit_test(test_setup_computes_no_hash),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_and_verify),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_busy_when_slots_exhausted),
		cmocka_unit_test(test_waits_for_a_slot),
		cmocka_unit_test(test_dummy_verify_costs_like_verify),
	};
	int failed = cmocka_run_group_tests_name("password_setup", first, NULL, NULL);
	failed += cmocka_run_group_tests_name("password", tests, setup_default, NULL);
	return failed != 0;
}
