/* workpool: see workpool.h. One mutex guards a ring buffer of jobs; idle
 * workers wait on a condition variable. */
#include "core/workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

struct job {
	workpool_fn fn;
	void *arg;
};

struct workpool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *ring;      /* cap entries */
	unsigned cap, head, count; /* guarded by mu */
	bool stopping;             /* guarded by mu */
	int nice_incr;
	unsigned nthreads;         /* threads started */
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct workpool *p = arg;

	(void)pthread_setname_np(pthread_self(), "pt-workpool");
	if (p->nice_incr > 0) {
		/* Linux: nice is per thread; PRIO_PROCESS with a thread id. */
		id_t tid = (id_t)gettid();
		errno = 0;
		int cur = getpriority(PRIO_PROCESS, tid);
		if (errno == 0)
			(void)setpriority(PRIO_PROCESS, tid, cur + p->nice_incr);
	}
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->count == 0 && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->count == 0)
			break; /* stopping and drained */
		struct job j = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		pthread_mutex_unlock(&p->mu);
		j.fn(j.arg);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct workpool *workpool_new(unsigned threads, unsigned max_queued, int nice_incr)
{
	if (threads < 1 || threads > 256 || max_queued < 1 || max_queued > 1000000 ||
	    nice_incr < 0 || nice_incr > 19)
		return NULL;
	struct workpool *p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	p->ring = calloc(max_queued, sizeof *p->ring);
	p->threads = calloc(threads, sizeof *p->threads);
	if (p->ring == NULL || p->threads == NULL || pthread_mutex_init(&p->mu, NULL) != 0) {
		free(p->ring);
		free(p->threads);
		free(p);
		return NULL;
	}
	if (pthread_cond_init(&p->cv, NULL) != 0) {
		pthread_mutex_destroy(&p->mu);
		free(p->ring);
		free(p->threads);
		free(p);
		return NULL;
	}
	p->cap = max_queued;
	p->nice_incr = nice_incr;
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		workpool_free(p);
		return NULL;
	}
	return p;
}

bool workpool_submit(struct workpool *p, workpool_fn fn, void *arg)
{
	bool ok = false;

	if (p == NULL || fn == NULL)
		return false;
	pthread_mutex_lock(&p->mu);
	if (!p->stopping && p->count < p->cap) {
		p->ring[(p->head + p->count) % p->cap] = (struct job){ fn, arg };
		p->count++;
		ok = true;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return ok;
}

unsigned workpool_queued(struct workpool *p)
{
	unsigned n;

	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->mu);
	n = p->count;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void workpool_free(struct workpool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->ring);
	free(p->threads);
	free(p);
}
