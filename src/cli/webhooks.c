/* pytake webhooks tail [--org SLUG] [--unrouted] [--from-start]
 *   [--interval-ms N] [--count N]
 *
 * Follows webhook_events like `tail -f`: prints each new event as one JSON
 * line (the shape of GET /api/v1/webhooks/events items) in id order,
 * polling every interval (default 500 ms). It starts after the newest
 * event unless --from-start. --org limits to one organization's routed
 * events, --unrouted to events no organization claimed. --count N exits
 * after N events (scripts, tests). Runs until SIGINT/SIGTERM. */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "domain/orgs.h"
#include "meta/webhook_store.h"

#define TAIL_BATCH 200
#define TAIL_DEFAULT_INTERVAL_MS 500

static volatile sig_atomic_t tail_stop;

static void on_stop(int sig)
{
	(void)sig;
	tail_stop = 1;
}

struct tail_opts {
	const char *org_slug;
	bool unrouted, from_start;
	long interval_ms;
	long count; /* 0 = forever */
};

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end = NULL;
	errno = 0;
	long v = s != NULL ? strtol(s, &end, 10) : 0;
	if (s == NULL || end == s || *end != '\0' || errno != 0 || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int parse_tail_args(int argc, char **argv, struct tail_opts *o)
{
	*o = (struct tail_opts){ .interval_ms = TAIL_DEFAULT_INTERVAL_MS };
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--org") == 0 && v != NULL) {
			o->org_slug = v;
			i++;
		} else if (strcmp(a, "--unrouted") == 0) {
			o->unrouted = true;
		} else if (strcmp(a, "--from-start") == 0) {
			o->from_start = true;
		} else if (strcmp(a, "--interval-ms") == 0 &&
			   parse_long(v, 10, 60000, &o->interval_ms)) {
			i++;
		} else if (strcmp(a, "--count") == 0 && parse_long(v, 1, 1000000000L, &o->count)) {
			i++;
		} else {
			cli_fail("webhooks tail: unexpected argument \"%s\" (usage: pytake webhooks "
				 "tail [--org SLUG] [--unrouted] [--from-start] [--interval-ms N] "
				 "[--count N])", a);
			return -1;
		}
	}
	if (o->org_slug != NULL && o->unrouted) {
		cli_fail("webhooks tail: --org and --unrouted exclude each other");
		return -1;
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (!tail_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Print evs as JSON lines; returns how many were printed. */
static long print_events(const struct webhook_event *evs, size_t n, int64_t *last_id)
{
	long printed = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *o = api_webhook_event_json(&evs[i]);
		char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		if (line != NULL) {
			fputs(line, stdout);
			fputc('\n', stdout);
			printed++;
		}
		free(line);
		json_decref(o);
		*last_id = evs[i].id;
	}
	fflush(stdout);
	return printed;
}

/* Resolve --org and the starting id. 0 or -1 after printing the error. */
static int tail_prepare(struct app *app, const struct tail_opts *o, char org_id[37],
			int64_t *last_id)
{
	struct db_conn *c = db_acquire(app->db);
	int rc = -1;
	if (c == NULL) {
		cli_fail("webhooks tail: the database is not answering");
		return -1;
	}
	if (o->org_slug != NULL) {
		struct org org;
		int r = orgs_find_by_slug(c, o->org_slug, &org);
		if (r != 0) {
			cli_fail("webhooks tail: %s", r == 1 ? "no organization with that slug"
							    : db_errmsg(c));
			goto out;
		}
		snprintf(org_id, 37, "%s", org.id);
	}
	*last_id = 0;
	if (!o->from_start && webhook_store_max_id(c, last_id) != DB_OK) {
		cli_fail("webhooks tail: %s", db_errmsg(c));
		goto out;
	}
	rc = 0;
out:
	db_release(app->db, c);
	return rc;
}

static int tail_loop(struct app *app, const struct tail_opts *o, const struct webhook_filter *f,
		     int64_t last_id)
{
	long printed = 0;
	while (!tail_stop) {
		struct webhook_event *evs = NULL;
		size_t n = 0;
		struct db_conn *c = db_acquire(app->db);
		int rc = c != NULL ? webhook_store_since(c, f, last_id, TAIL_BATCH, &evs, &n)
				   : DB_ERR_UNAVAILABLE;
		db_release(app->db, c);
		if (rc != DB_OK) {
			/* keep following through a database restart */
			fprintf(stderr, "pytake: webhooks tail: database error, retrying\n");
			sleep_ms(o->interval_ms);
			continue;
		}
		printed += print_events(evs, n, &last_id);
		webhook_event_array_free(evs, n);
		if (o->count > 0 && printed >= o->count)
			break;
		if (n < TAIL_BATCH)
			sleep_ms(o->interval_ms);
	}
	return 0;
}

int cmd_webhooks(int argc, char **argv)
{
	struct tail_opts o;
	struct config cfg;
	struct app app;
	char org_id[37] = "";
	int64_t last_id = 0;
	int rc = 1;

	if (argc < 2 || strcmp(argv[1], "tail") != 0) {
		cli_fail("usage: pytake webhooks tail [--org SLUG] [--unrouted] [--from-start] "
			 "[--interval-ms N] [--count N]");
		return 2;
	}
	if (parse_tail_args(argc - 2, argv + 2, &o) != 0)
		return 2;
	if (cli_open_app(&cfg, &app, false) != 0)
		return 1;
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	if (tail_prepare(&app, &o, org_id, &last_id) != 0)
		goto out;
	struct webhook_filter f = { .org_id = org_id[0] != '\0' ? org_id : NULL,
				    .unrouted = o.unrouted, .processed = -1 };
	rc = tail_loop(&app, &o, &f, last_id);
out:
	app_close(&app);
	config_release(&cfg);
	return rc;
}
