/* offload: see offload.h. */
#include "api/offload.h"

#include <stdlib.h>

#include "app/app.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/workpool.h"

struct offload_job {
	struct http_request *req;
	struct http_deferred *d;
	http_handler h;
	int64_t queued_at_us; /* CLOCK_MONOTONIC */
};

static void answer_busy(struct http_response *res)
{
	http_add_header(res, "Retry-After", "1");
	http_error(res, 503, "service_unavailable",
		   "too many password checks at once; try again shortly", NULL);
}

static void run_job(void *arg)
{
	struct offload_job *job = arg;
	struct http_deferred *d = job->d;
	struct http_response *res = http_deferred_response(d);

	log_set_request_id(job->req->request_id);
	if (time_mono_us() - job->queued_at_us > (int64_t)API_OFFLOAD_MAX_WAIT_MS * 1000)
		answer_busy(res);
	else
		job->h(job->req, res);
	log_set_request_id(NULL);
	free(job);
	http_complete(d);
}

void api_offload(struct http_request *req, struct http_response *res, http_handler h)
{
	struct workpool *pool = req->app != NULL ? req->app->slow_pool : NULL;
	if (pool == NULL) {
		h(req, res);
		return;
	}
	struct offload_job *job = malloc(sizeof *job);
	if (job == NULL) {
		answer_busy(res);
		return;
	}
	job->d = http_defer(req);
	if (job->d == NULL) {
		free(job);
		h(req, res);
		return;
	}
	job->req = req;
	job->h = h;
	job->queued_at_us = time_mono_us();
	if (workpool_submit(pool, run_job, job))
		return;
	/* Deferred but not queued: answer now through the deferred response. */
	struct http_deferred *d = job->d;
	free(job);
	answer_busy(http_deferred_response(d));
	http_complete(d);
}
