#include "http/reaper.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/timeutil.h"

#define REAPER_TICK_NS (250 * 1000 * 1000L)

struct reaper_conn {
	struct reaper_conn *prev, *next;
	int fd;
	bool receiving;
	bool reaped;
	int64_t since_us; /* start of the current receiving phase */
};

struct reaper {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool stop;
	int64_t timeout_us;
	struct reaper_conn head; /* sentinel of a circular list */
	atomic_uint_fast64_t reaped;
};

/* Shut down every connection past its deadline; called with mu held. */
static void reap(struct reaper *r, int64_t now)
{
	for (struct reaper_conn *c = r->head.next; c != &r->head; c = c->next) {
		if (!c->receiving || c->reaped || now - c->since_us <= r->timeout_us)
			continue;
		c->reaped = true;
		(void)shutdown(c->fd, SHUT_RDWR);
		atomic_fetch_add(&r->reaped, 1);
		log_event(LOG_WARN, "connection dropped: request not received in time",
			  LF_I("timeout_ms", r->timeout_us / 1000));
	}
}

static void *reaper_main(void *arg)
{
	struct reaper *r = arg;

	(void)pthread_setname_np(pthread_self(), "pt-reaper");
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += REAPER_TICK_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&r->cv, &r->mu, &ts);
		if (!r->stop)
			reap(r, time_mono_us());
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

struct reaper *reaper_start(int64_t timeout_us)
{
	struct reaper *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->timeout_us = timeout_us;
	r->head.next = r->head.prev = &r->head;
	if (pthread_mutex_init(&r->mu, NULL) != 0)
		goto fail_mu;
	if (pthread_cond_init(&r->cv, NULL) != 0)
		goto fail_cv;
	if (pthread_create(&r->thread, NULL, reaper_main, r) != 0)
		goto fail_thread;
	return r;
fail_thread:
	pthread_cond_destroy(&r->cv);
fail_cv:
	pthread_mutex_destroy(&r->mu);
fail_mu:
	free(r);
	return NULL;
}

void reaper_stop(struct reaper *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	while (r->head.next != &r->head) {
		struct reaper_conn *c = r->head.next;
		r->head.next = c->next;
		free(c);
	}
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

struct reaper_conn *reaper_add(struct reaper *r, int fd)
{
	struct reaper_conn *c;

	if (r == NULL || fd < 0 || (c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	c->fd = fd;
	c->receiving = true;
	c->since_us = time_mono_us();
	pthread_mutex_lock(&r->mu);
	c->next = r->head.next;
	c->prev = &r->head;
	r->head.next->prev = c;
	r->head.next = c;
	pthread_mutex_unlock(&r->mu);
	return c;
}

void reaper_remove(struct reaper *r, struct reaper_conn *c)
{
	if (r == NULL || c == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	pthread_mutex_unlock(&r->mu);
	free(c);
}

void reaper_receiving(struct reaper *r, struct reaper_conn *c, bool receiving)
{
	if (r == NULL || c == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	if (receiving && !c->receiving)
		c->since_us = time_mono_us();
	c->receiving = receiving;
	pthread_mutex_unlock(&r->mu);
}

uint64_t reaper_reaped(struct reaper *r)
{
	return r != NULL ? atomic_load(&r->reaped) : 0;
}
