/* sqlrepeat: statement texts with a repeated placeholder group, built once.
 *
 * Batched statements ("... WHERE id IN ($6, ..., $69)", multi-row
 * "VALUES (...), (...)") need one text per batch size. Callers use
 * power-of-two sizes only (64, 32, ..., 1 for the tail of a batch), so a
 * statement has at most eight texts; each is built on first use and kept
 * for the life of the process (also what lets PostgreSQL reuse its
 * prepared plan).
 *
 *     static struct sql_repeat mark = SQL_REPEAT_INIT(
 *             "UPDATE t SET done = $1 WHERE id IN (", ")", 1, 2);
 *     const char *sql = sql_repeat_text(&mark, 8);  // ... IN ($2,...,$9)
 *
 * A group is `cols` placeholders numbered on from `first`: "$k" when
 * cols == 1, "($k,$k+1,...)" otherwise; groups are comma-separated between
 * head and tail. Thread-safe. */
#ifndef PYTAKE_DB_SQLREPEAT_H
#define PYTAKE_DB_SQLREPEAT_H
#include <pthread.h>
#include <stddef.h>

#define SQL_REPEAT_MAX_LOG2 7 /* sizes 1, 2, 4, ..., 128 */

struct sql_repeat {
	const char *head;
	const char *tail;
	size_t cols;
	size_t first;
	pthread_mutex_t mu;
	char *texts[SQL_REPEAT_MAX_LOG2 + 1];
};

#define SQL_REPEAT_INIT(h, t, c, f)                                              \
	{                                                                         \
		.head = (h), .tail = (t), .cols = (c), .first = (f),              \
		.mu = PTHREAD_MUTEX_INITIALIZER                                   \
	}

/* The text for n groups; NULL when n is not a power of two in
 * 1..2^SQL_REPEAT_MAX_LOG2, cols is 0, or memory ran out. */
const char *sql_repeat_text(struct sql_repeat *r, size_t n);

#endif
