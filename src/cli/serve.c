/* pytake serve: check the schema, start the HTTP server, wait for SIGTERM
 * or SIGINT, then stop gracefully (stop accepting, let in-flight requests
 * finish, close the database). */
#include "cli/cli.h"

#include <pthread.h>
#include <signal.h>

#include "api/api.h"
#include "api/offload.h"
#include "api/ratelimit_hook.h"
#include "auth/ratelimit.h"
#include "auth/authn.h"
#include "auth/password.h"
#include "core/metrics.h"
#include "core/workpool.h"
#include "db/migrate.h"
#include "domain/costs.h"
#include "http/http.h"
#include "jobs/dispatcher.h"
#include "jobs/webhook_processor.h"
#include "meta/graph.h"

#define SET migrations_embedded, migrations_embedded_count

/* Refuse an ahead/changed schema; migrate a lagging one in development. */
static int ensure_schema(struct app *app)
{
	struct migrate_status st;
	char err[512];
	if (migrate_status(app->db, SET, &st, err, sizeof err) != 0) {
		cli_fail("cannot read the migration state: %s", err);
		return -1;
	}
	if (st.state == MIGRATE_AT_HEAD)
		return 0;
	if (st.state != MIGRATE_BEHIND) {
		cli_fail("%s", st.message);
		return -1;
	}
	if (app->cfg->environment != ENV_DEVELOPMENT) {
		cli_fail("%s; run `pytake migrate upgrade` first "
			 "(serve migrates by itself only when ENVIRONMENT=development)",
			 st.message);
		return -1;
	}
	log_event(LOG_INFO, "migrating database", LF_I("from", st.current),
		  LF_I("to", st.head));
	if (migrate_upgrade(app->db, SET, 0, err, sizeof err) != 0) {
		cli_fail("%s", err);
		return -1;
	}
	return 0;
}

static int start_server(struct app *app, struct api_metrics *am, struct http_server **out)
{
	const struct config *cfg = app->cfg;
	struct http_server_options opt = {
		.bind_address = cfg->bind_address,
		.port = cfg->port,
		.threads = app_http_threads(cfg),
		.max_body_bytes = cfg->max_body_bytes,
		.max_header_bytes = cfg->max_header_bytes,
		.request_timeout_s = cfg->request_timeout_s,
		.slow_request_ms = cfg->slow_request_ms,
		.max_connections = cfg->max_connections,
		.routes = api_routes,
		.nroutes = api_routes_count,
		.app = app,
		.rate_limit_client = ratelimit_hook_client,
		.authenticate = authn_authenticate,
		.rate_limit = ratelimit_hook_user,
		.on_complete = api_metrics_on_complete,
		.on_complete_ctx = am,
	};
	char err[512];
	if (http_server_start(&opt, out, err, sizeof err) != 0) {
		cli_fail("cannot start the HTTP server on %s:%d: %s", cfg->bind_address,
			 cfg->port, err);
		return -1;
	}
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	/* Block the stop signals before any thread exists so that every thread
	 * inherits the mask and only sigwait() below receives them. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct config cfg;
	struct app app;
	if (cli_open_app(&cfg, &app, true) != 0)
		return 1;
	int rc = 1;
	struct api_metrics *am = NULL;
	struct webhook_processor *processor = NULL;
	struct dispatcher *dispatcher = NULL;
	if (ensure_schema(&app) != 0)
		goto out;
	if (password_setup(0, PASSWORD_DEFAULT_WAIT_MS) != 0) {
		cli_fail("cannot initialise libsodium for password hashing");
		goto out;
	}
	/* argon2 work runs here, off the HTTP threads (api/offload.h): one
	 * worker per password slot, at a lower CPU priority than the HTTP
	 * threads so quick requests stay quick during a login flood. */
	app.slow_pool = workpool_new(password_max_concurrent(), API_OFFLOAD_QUEUE,
				     API_OFFLOAD_NICE);
	if (app.slow_pool == NULL) {
		cli_fail("cannot start the password worker threads");
		goto out;
	}
	char aerr[256];
	if (authn_new(&cfg, &app.authn, aerr, sizeof aerr) != 0) {
		cli_fail("%s", aerr);
		goto out;
	}
	if (ratelimit_hook_new(&cfg, &app.rl, aerr, sizeof aerr) != 0) {
		cli_fail("%s", aerr);
		goto out;
	}
	app.graph = graph_client_new(cfg.graph_api_base_url, 0);
	if (app.graph == NULL) {
		cli_fail("GRAPH_API_BASE_URL must be an http(s) URL");
		goto out;
	}
	app.metrics = metrics_new();
	am = api_metrics_new(app.metrics, &app);
	if (am == NULL || costs_metrics_register(app.metrics) != 0) {
		cli_fail("cannot set up the metrics registry (out of memory)");
		goto out;
	}
	app.webhooks = api_webhooks_new(&app, app.metrics);
	if (app.webhooks == NULL) {
		cli_fail("cannot start the webhook writer (out of memory or threads)");
		goto out;
	}
	if (webhook_processor_start(&app, &processor) != 0) {
		cli_fail("cannot start the webhook processor thread");
		goto out;
	}
	if (dispatcher_start(&app, &dispatcher) != 0) {
		cli_fail("cannot start the campaign dispatcher thread");
		goto out;
	}
	if (start_server(&app, am, &app.server) != 0)
		goto out;
	log_event(LOG_INFO, "server started", LF_S("address", cfg.bind_address),
		  LF_I("port", http_server_port(app.server)),
		  LF_S("database", db_engine_name(app.db)),
		  LF_I("threads", app_http_threads(&cfg)),
		  LF_S("environment",
		       cfg.environment == ENV_PRODUCTION ? "production" : "development"));
	int sig = 0;
	sigwait(&stop, &sig);
	log_event(LOG_INFO, "shutting down", LF_S("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
	http_server_quiesce(app.server);
	http_server_stop(app.server, cfg.request_timeout_s * 1000);
	app.server = NULL;
	rc = 0;
out:
	/* after the server stopped (it waited for deferred logins) */
	workpool_free(app.slow_pool);
	app.slow_pool = NULL;
	/* after the server stopped: writes what is queued, joins the writer */
	api_webhooks_free(app.webhooks);
	app.webhooks = NULL;
	/* in-flight campaign sends finish and are recorded */
	dispatcher_stop(dispatcher);
	/* after the writer flushed: finishes its batch, joins the thread */
	webhook_processor_stop(processor);
	authn_free(app.authn);
	app.authn = NULL;
	ratelimit_free(app.rl);
	app.rl = NULL;
	metrics_free(app.metrics);
	app.metrics = NULL;
	api_metrics_free(am);
	graph_client_free(app.graph);
	app.graph = NULL;
	app_close(&app);
	if (rc == 0)
		log_msg(LOG_INFO, "server stopped");
	config_release(&cfg);
	return rc;
}
