/* Unit tests for core/arena. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/arena.h"

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static void test_alloc_sizes_aligned_and_zeroed(void **state)
{
	static const size_t sizes[] = { 0, 1, 7, 15, 16, 17, 100, 1000, 1023,
					4096, 5000, 70000, 1 << 20, 3 << 20 };
	struct arena a = ARENA_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		unsigned char *p = arena_alloc(&a, sizes[i]);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		assert_true(all_zero(p, sizes[i]));
		memset(p, 0xAB, sizes[i]); /* later allocations must stay zeroed */
	}
	assert_true(a.total >= (1u << 20) + (3u << 20));
	arena_release(&a);
	assert_null(a.head);
	assert_int_equal(a.total, 0);
}

/* Many small allocations across several chunks never overlap. */
static void test_no_overlap_across_chunks(void **state)
{
	enum { N = 3000 };
	struct arena a = ARENA_INIT;
	unsigned char *ptrs[N];

	(void)state;
	for (size_t i = 0; i < N; i++) {
		size_t n = 1 + i % 97;

		ptrs[i] = arena_alloc(&a, n);
		assert_non_null(ptrs[i]);
		memset(ptrs[i], (int)(i & 0xFF), n);
	}
	for (size_t i = 0; i < N; i++) {
		size_t n = 1 + i % 97;

		for (size_t j = 0; j < n; j++)
			assert_int_equal(ptrs[i][j], i & 0xFF);
	}
	arena_release(&a);
}

/* A large request in the middle does not waste the current chunk. */
static void test_large_then_small(void **state)
{
	struct arena a = ARENA_INIT;
	char *s1, *big, *s2;

	(void)state;
	s1 = arena_alloc(&a, 32);
	big = arena_alloc(&a, 100000);
	s2 = arena_alloc(&a, 32);
	assert_non_null(s1);
	assert_non_null(big);
	assert_non_null(s2);
	/* s2 follows s1 in the same small chunk. */
	assert_ptr_equal(s2, s1 + 32);
	arena_release(&a);
}

struct limit_case {
	size_t limit;
	size_t first, second;
	bool first_ok, second_ok;
};

static void test_limit(void **state)
{
	static const struct limit_case cases[] = {
		{ 64, 32, 32, true, true },
		{ 64, 32, 33, true, false },   /* 33 rounds to 48 */
		{ 64, 65, 1, false, true },
		{ 100, 100, 1, false, true },  /* 100 rounds to 112 */
		{ 0, 1 << 20, 1 << 20, true, true },
		{ 4096, 4096, 1, true, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct arena a = ARENA_INIT;

		a.limit = cases[i].limit;
		assert_int_equal(arena_alloc(&a, cases[i].first) != NULL, cases[i].first_ok);
		assert_int_equal(arena_alloc(&a, cases[i].second) != NULL, cases[i].second_ok);
		if (a.limit != 0)
			assert_true(a.total <= a.limit);
		arena_release(&a);
	}
}

static void test_overflow_sizes(void **state)
{
	struct arena a = ARENA_INIT;

	(void)state;
	assert_null(arena_alloc(&a, SIZE_MAX));
	assert_null(arena_alloc(&a, SIZE_MAX - 8));
	assert_null(arena_strndup(&a, "x", SIZE_MAX));
	assert_int_equal(a.total, 0);
	arena_release(&a);
}

static void test_strings(void **state)
{
	struct arena a = ARENA_INIT;
	char *s;

	(void)state;
	s = arena_strdup(&a, "hello");
	assert_string_equal(s, "hello");
	s = arena_strndup(&a, "hello world", 5);
	assert_string_equal(s, "hello");
	s = arena_strndup(&a, "", 0);
	assert_string_equal(s, "");
	assert_null(arena_strdup(&a, NULL));
	s = arena_printf(&a, "%s-%d-%05.1f", "id", 42, 3.25);
	assert_string_equal(s, "id-42-003.2");
	s = arena_printf(&a, "%s", "");
	assert_string_equal(s, "");
	arena_release(&a);
}

/* A formatted string bigger than a chunk is measured, not truncated. */
static void test_printf_long(void **state)
{
	struct arena a = ARENA_INIT;
	char *s;

	(void)state;
	s = arena_printf(&a, "%*s|", 20000, "x");
	assert_non_null(s);
	assert_int_equal(strlen(s), 20001);
	assert_int_equal(s[19999], 'x');
	assert_int_equal(s[20000], '|');
	arena_release(&a);
}

static void test_printf_respects_limit(void **state)
{
	struct arena a = ARENA_INIT;

	(void)state;
	a.limit = 64;
	assert_null(arena_printf(&a, "%*s", 100, "x"));
	assert_non_null(arena_printf(&a, "%s", "short"));
	arena_release(&a);
}

static void test_release_and_reuse(void **state)
{
	struct arena a = ARENA_INIT;

	(void)state;
	arena_release(&a); /* empty arena: no-op */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 500; i++)
			assert_non_null(arena_alloc(&a, 100));
		assert_int_equal(a.total, 500 * 112);
		arena_release(&a);
		assert_null(a.head);
		assert_int_equal(a.total, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_sizes_aligned_and_zeroed),
		cmocka_unit_test(test_no_overlap_across_chunks),
		cmocka_unit_test(test_large_then_small),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_overflow_sizes),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_printf_long),
		cmocka_unit_test(test_printf_respects_limit),
		cmocka_unit_test(test_release_and_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
