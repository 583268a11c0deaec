/* Unit tests for core/uuid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "core/uuid.h"

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_v7_format_version_variant(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct uuid u;
		char s[UUID_STR_LEN];

		assert_int_equal(uuid_v7(&u), 0);
		assert_int_equal(u.b[6] >> 4, 7);        /* version */
		assert_int_equal(u.b[8] >> 6, 2);        /* variant 0b10 */
		uuid_format(&u, s);
		assert_int_equal(strlen(s), 36);
		for (int k = 0; k < 36; k++) {
			if (k == 8 || k == 13 || k == 18 || k == 23)
				assert_int_equal(s[k], '-');
			else
				assert_true(is_lower_hex(s[k]));
		}
		assert_int_equal(s[14], '7');
		assert_non_null(strchr("89ab", s[19]));
	}
}

/* The first 48 bits are the current Unix time in ms. */
static void test_v7_timestamp(void **state)
{
	struct uuid u;
	int64_t before = time_now_us() / 1000, after, ms = 0;

	(void)state;
	assert_int_equal(uuid_v7(&u), 0);
	after = time_now_us() / 1000;
	for (int i = 0; i < 6; i++)
		ms = (ms << 8) | u.b[i];
	assert_true(ms >= before);
	assert_true(ms <= after + 1);
}

static void test_v7_monotonic(void **state)
{
	enum { N = 10000 };
	char prev[UUID_STR_LEN], cur[UUID_STR_LEN];

	(void)state;
	assert_int_equal(uuid_v7_str(prev), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(uuid_v7_str(cur), 0);
		if (strcmp(prev, cur) >= 0)
			fail_msg("not increasing at %d: %s then %s", i, prev, cur);
		memcpy(prev, cur, sizeof cur);
	}
}

/* Several threads at once: every id is distinct. */
enum { THREADS = 4, PER_THREAD = 5000 };
static struct uuid g_ids[THREADS * PER_THREAD];

static void *make_ids(void *arg)
{
	struct uuid *out = arg;

	for (int i = 0; i < PER_THREAD; i++)
		if (uuid_v7(&out[i]) != 0)
			return arg;
	return NULL;
}

static int cmp_uuid(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct uuid));
}

static void test_v7_threads_unique(void **state)
{
	pthread_t t[THREADS];
	void *ret;

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, make_ids, &g_ids[i * PER_THREAD]), 0);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
	/* each thread's own sequence increases */
	for (int i = 0; i < THREADS; i++)
		for (int k = 1; k < PER_THREAD; k++)
			assert_true(cmp_uuid(&g_ids[i * PER_THREAD + k - 1],
					     &g_ids[i * PER_THREAD + k]) < 0);
	qsort(g_ids, THREADS * PER_THREAD, sizeof(struct uuid), cmp_uuid);
	for (int k = 1; k < THREADS * PER_THREAD; k++)
		assert_true(cmp_uuid(&g_ids[k - 1], &g_ids[k]) != 0);
}

/* Random bytes are drawn from a per-thread pool: a forked child must not
 * reuse the parent's remaining bytes (same rand_b in both). */
static void test_v7_fork_fresh_random(void **state)
{
	struct uuid first, mine, child;
	int fd[2];

	(void)state;
	assert_int_equal(uuid_v7(&first), 0); /* the pool is filled now */
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct uuid u;
		ssize_t w = -1;
		if (uuid_v7(&u) == 0)
			w = write(fd[1], u.b, sizeof u.b);
		_exit(w == (ssize_t)sizeof u.b ? 0 : 1);
	}
	assert_int_equal(uuid_v7(&mine), 0);
	assert_int_equal(read(fd[0], child.b, sizeof child.b), (ssize_t)sizeof child.b);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd[0]);
	close(fd[1]);
	assert_memory_not_equal(mine.b + 9, child.b + 9, 7);
}

struct parse_case {
	const char *s;
	bool ok;
};

static void test_parse(void **state)
{
	static const struct parse_case cases[] = {
		{ "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", true },
		{ "0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B", true },
		{ "00000000-0000-0000-0000-000000000000", true },
		{ "ffffffff-ffff-ffff-ffff-ffffffffffff", true },
		{ "550e8400-e29b-41d4-a716-446655440000", true }, /* v4 */
		{ "", false },
		{ "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2", false },   /* short */
		{ "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b0", false }, /* long */
		{ "0190a1b2c3d4-7e5f-8a6b-7c8d9e0f1a2b0", false },
		{ "0190a1b2-c3d47e5f-8a6b-7c8d9e0f1a2b", false },
		{ "0190a1b2-c3d4-7e5f-8a6b7c8d9e0f1a2b", false },
		{ "0190a1b2_c3d4-7e5f-8a6b-7c8d9e0f1a2b", false },
		{ "0190a1g2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", false },
		{ "{0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b}", false },
		{ "0190a1b2c3d47e5f8a6b7c8d9e0f1a2b", false },
		{ " 0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b", false },
		{ "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b ", false },
		{ "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a-b", false },
		{ "urn:uuid:0190a1b2-c3d4-7e5f-8a6b-7c8d", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct uuid u;

		memset(&u, 0x5A, sizeof u);
		if (uuid_parse(cases[i].s, &u) != cases[i].ok)
			fail_msg("uuid_parse(%s) != %d", cases[i].s, cases[i].ok);
		assert_int_equal(uuid_is_valid(cases[i].s), cases[i].ok);
		if (!cases[i].ok) {
			for (int k = 0; k < 16; k++)
				assert_int_equal(u.b[k], 0x5A); /* untouched */
		}
	}
	assert_false(uuid_parse(NULL, NULL));
	assert_false(uuid_is_valid(NULL));
}

static void test_parse_bytes_and_round_trip(void **state)
{
	static const uint8_t want[16] = { 0x01, 0x90, 0xa1, 0xb2, 0xc3, 0xd4, 0x7e, 0x5f,
					  0x8a, 0x6b, 0x7c, 0x8d, 0x9e, 0x0f, 0x1a, 0x2b };
	struct uuid u;
	char s[UUID_STR_LEN];

	(void)state;
	assert_true(uuid_parse("0190A1B2-c3d4-7E5F-8a6b-7C8D9E0F1A2B", &u));
	assert_memory_equal(u.b, want, 16);
	uuid_format(&u, s);
	assert_string_equal(s, "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
	for (int i = 0; i < 100; i++) {
		struct uuid a, b;

		assert_int_equal(uuid_v7(&a), 0);
		uuid_format(&a, s);
		assert_true(uuid_parse(s, &b));
		assert_memory_equal(a.b, b.b, 16);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v7_format_version_variant),
		cmocka_unit_test(test_v7_timestamp),
		cmocka_unit_test(test_v7_monotonic),
		cmocka_unit_test(test_v7_threads_unique),
		cmocka_unit_test(test_v7_fork_fresh_random),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bytes_and_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
