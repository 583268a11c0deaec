/* pytake migrate current | upgrade [head|N] | history | check */
#include "cli/cli.h"

#include "core/str.h"
#include "db/migrate.h"

#define SET migrations_embedded, migrations_embedded_count

static int migrate_current(struct app *app)
{
	struct migrate_status st;
	char err[512];
	if (migrate_status(app->db, SET, &st, err, sizeof err) != 0) {
		cli_fail("%s", err);
		return 1;
	}
	/* st.message already says where the database and the binary are */
	printf("%s: %s\n", db_engine_name(app->db), st.message);
	return 0;
}

static int migrate_check(struct app *app)
{
	struct migrate_status st;
	char err[512];
	if (migrate_status(app->db, SET, &st, err, sizeof err) != 0) {
		cli_fail("%s", err);
		return 1;
	}
	if (st.state != MIGRATE_AT_HEAD) {
		cli_fail("%s", st.message);
		return 1;
	}
	printf("ok: database is at %d, the binary's head\n", st.current);
	return 0;
}

static int migrate_to(struct app *app, const char *arg)
{
	int64_t target = 0;
	if (arg && strcmp(arg, "head") != 0 &&
	    (!str_to_int64(arg, &target) || target < 1 || target > 1000000)) {
		cli_fail("migrate upgrade: expected \"head\" or a version number, got \"%s\"",
			 arg);
		return 2;
	}
	char err[512];
	if (migrate_upgrade(app->db, SET, (int)target, err, sizeof err) != 0) {
		cli_fail("%s", err);
		return 1;
	}
	return migrate_current(app);
}

int cmd_migrate(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	if (!sub || (strcmp(sub, "current") && strcmp(sub, "upgrade") &&
		     strcmp(sub, "history") && strcmp(sub, "check"))) {
		cli_fail("usage: pytake migrate current | upgrade [head|N] | history | check");
		return 2;
	}
	struct config cfg;
	struct app app;
	if (cli_open_app(&cfg, &app, false) != 0)
		return 1;
	int rc;
	char err[512];
	if (!strcmp(sub, "current"))
		rc = migrate_current(&app);
	else if (!strcmp(sub, "check"))
		rc = migrate_check(&app);
	else if (!strcmp(sub, "upgrade"))
		rc = migrate_to(&app, argc > 2 ? argv[2] : NULL);
	else if (migrate_history(app.db, SET, stdout, err, sizeof err) != 0) {
		cli_fail("%s", err);
		rc = 1;
	} else
		rc = 0;
	app_close(&app);
	config_release(&cfg);
	return rc;
}
