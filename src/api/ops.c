/* Operations endpoints: liveness and readiness. */
#include "api/api.h"

#include "app/app.h"
#include "db/migrate.h"

void api_health(struct http_request *req, struct http_response *res)
{
	(void)req;
	http_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

void api_ready(struct http_request *req, struct http_response *res)
{
	struct db *db = req->app->db;
	if (db_ping(db) != DB_OK) {
		http_add_header(res, "Retry-After", "5");
		http_error(res, 503, "not_ready", "database is not answering", NULL);
		return;
	}
	struct migrate_status st;
	char err[256];
	if (migrate_status(db, migrations_embedded, migrations_embedded_count, &st,
			   err, sizeof err) != 0) {
		http_add_header(res, "Retry-After", "5");
		http_error(res, 503, "not_ready", "cannot read migration state", NULL);
		return;
	}
	if (st.state != MIGRATE_AT_HEAD) {
		const char *msg = arena_printf(req->arena, "migrations: %s", st.message);
		http_add_header(res, "Retry-After", "5");
		http_error(res, 503, "not_ready", msg ? msg : "migrations not at head",
			   NULL);
		return;
	}
	http_json(res, 200,
		  json_pack("{s:s, s:s, s:i}", "status", "ready", "database",
			    db_engine_name(db), "migration", st.current));
}
