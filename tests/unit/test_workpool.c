/* Unit tests for core/workpool: jobs run (all of them, on the workers),
 * the queue bound refuses instead of growing, free drains the queue, the
 * nice increment applies to the workers only, bad arguments are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/workpool.h"

static atomic_int ran;

static void count_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
}

/* A job that blocks until the gate opens, so the queue can be filled. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_int blocked;

static void gated_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&blocked, 1);
	pthread_mutex_lock(&gate_mu);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	atomic_fetch_add(&ran, 1);
}

static void open_gate(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void test_runs_every_job(void **state)
{
	(void)state;
	atomic_store(&ran, 0);
	struct workpool *p = workpool_new(3, 1000, 0);
	assert_non_null(p);
	for (int i = 0; i < 500; i++)
		assert_true(workpool_submit(p, count_job, NULL));
	workpool_free(p); /* drains */
	assert_int_equal(atomic_load(&ran), 500);
}

static void test_queue_bound_refuses(void **state)
{
	(void)state;
	atomic_store(&ran, 0);
	atomic_store(&blocked, 0);
	gate_open = false;
	struct workpool *p = workpool_new(2, 3, 0);
	assert_non_null(p);
	/* two jobs occupy the two workers ... */
	assert_true(workpool_submit(p, gated_job, NULL));
	assert_true(workpool_submit(p, gated_job, NULL));
	while (atomic_load(&blocked) < 2)
		usleep(1000);
	/* ... three more fill the queue, the sixth is refused */
	for (int i = 0; i < 3; i++)
		assert_true(workpool_submit(p, gated_job, NULL));
	assert_int_equal(workpool_queued(p), 3);
	assert_false(workpool_submit(p, gated_job, NULL));
	open_gate();
	workpool_free(p);
	assert_int_equal(atomic_load(&ran), 5);
}

static atomic_int worker_nice;

static void nice_job(void *arg)
{
	(void)arg;
	errno = 0;
	atomic_store(&worker_nice, getpriority(PRIO_PROCESS, (id_t)gettid()));
}

static void test_workers_are_niced(void **state)
{
	(void)state;
	errno = 0;
	int mine = getpriority(PRIO_PROCESS, (id_t)gettid());
	assert_int_equal(errno, 0);
	atomic_store(&worker_nice, -100);
	struct workpool *p = workpool_new(1, 4, 5);
	assert_non_null(p);
	assert_true(workpool_submit(p, nice_job, NULL));
	workpool_free(p);
	int expect = mine + 5 > 19 ? 19 : mine + 5;
	assert_int_equal(atomic_load(&worker_nice), expect);
	/* the caller's own priority is untouched */
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)gettid()), mine);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	assert_null(workpool_new(0, 1, 0));
	assert_null(workpool_new(1, 0, 0));
	assert_null(workpool_new(257, 1, 0));
	assert_null(workpool_new(1, 1, -1));
	assert_null(workpool_new(1, 1, 20));
	assert_false(workpool_submit(NULL, count_job, NULL));
	struct workpool *p = workpool_new(1, 1, 0);
	assert_non_null(p);
	assert_false(workpool_submit(p, NULL, NULL));
	workpool_free(p);
	workpool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_every_job),
		cmocka_unit_test(test_queue_bound_refuses),
		cmocka_unit_test(test_workers_are_niced),
		cmocka_unit_test(test_bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
