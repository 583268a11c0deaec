#include "app/app.h"

#include <unistd.h>

#include "core/timeutil.h"

int app_open(struct app *app, const struct config *cfg, char *err, size_t errlen)
{
	memset(app, 0, sizeof *app);
	app->cfg = cfg;
	app->started_at_us = time_now_us();
	struct db_options opt = {
		.pool_size = cfg->db_pool_size > 0 ? cfg->db_pool_size
						   : app_http_threads(cfg) + 4,
		.acquire_timeout_ms = 5000,
		.busy_timeout_ms = 5000,
	};
	return db_open(cfg->database_url, &opt, &app->db, err, errlen);
}

void app_close(struct app *app)
{
	db_close(app->db);
	app->db = NULL;
}

int app_http_threads(const struct config *cfg)
{
	if (cfg->http_threads > 0)
		return cfg->http_threads;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return (int)(n * 2 > 64 ? 64 : n * 2);
}
