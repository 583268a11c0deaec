/* pytake backup FILE [--force] / pytake restore FILE [--force].
 *
 * Design note
 * -----------
 * SQLite: both directions use the online backup API (sqlite3_backup_*), so a
 * running server may keep writing: the copy is one consistent snapshot (one
 * read transaction for the whole step(-1)). A backup is written to a
 * temporary file beside FILE, switched to journal_mode=DELETE (one
 * self-contained file), then published with link() (fails if FILE appeared
 * meanwhile) or, with --force, rename(). Restore checks the file first (a
 * SQLite database, quick_check ok, schema_migrations present, version not
 * ahead of this binary) and refuses a non-empty target unless --force;
 * then it copies the file over the target's pages. "Non-empty" means rows
 * in any of content_tables: organizations (every tenant row hangs off one)
 * and the installation-wide tables that do not (rate cards, unrouted
 * webhook events), so a fresh database holding only an imported rate card
 * is not silently replaced either.
 *
 * PostgreSQL: pg_dump --format=custom / pg_restore --clean --if-exists
 * --single-transaction (nothing changes when it fails), run with
 * fork/execvp (never a shell) with the configured URL as an argument; the
 * URL is never printed or logged. The backup's migration version is read
 * back from the archive's schema_migrations data (pg_restore --data-only
 * --table=schema_migrations --file=-).
 *
 * Both print one summary line on stdout and exit 0, or one error line on
 * stderr and exit 1 (2 for bad arguments). */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "db/migrate.h"

#define BUSY_TIMEOUT_MS 5000
#define BACKUP_BUSY_RETRIES 200 /* x 50 ms */
#define TOOL_OUTPUT_LINE_MAX 4096

struct backup_args {
	const char *file;
	bool force;
};

static int parse_args(int argc, char **argv, struct backup_args *a)
{
	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0) {
			a->force = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			cli_fail("%s: unknown option \"%s\"", argv[0], argv[i]);
			return -1;
		} else if (a->file == NULL) {
			a->file = argv[i];
		} else {
			cli_fail("%s: only one FILE may be given", argv[0]);
			return -1;
		}
	}
	if (a->file == NULL || a->file[0] == '\0') {
		cli_fail("usage: pytake %s FILE [--force]", argv[0]);
		return -1;
	}
	return 0;
}

static int head_version(void)
{
	return migrations_embedded_count > 0
		       ? migrations_embedded[migrations_embedded_count - 1].version
		       : 0;
}

/* The SQLite path of a sqlite: URL, NULL for PostgreSQL URLs. */
static const char *sqlite_path(const char *url)
{
	if (strncmp(url, "sqlite://", 9) == 0)
		return url + 9;
	if (strncmp(url, "sqlite:", 7) == 0)
		return url + 7;
	return NULL;
}

static bool is_pg_url(const char *url)
{
	return strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	(void)nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ file steps */

static int temp_name(const char *file, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "%s.tmp-%ld", file, (long)getpid());

	if (n < 0 || (size_t)n >= outsz) {
		cli_fail("backup file name too long");
		return -1;
	}
	return 0;
}

static int refuse_existing(const char *file, bool force)
{
	struct stat st;

	if (!force && stat(file, &st) == 0) {
		cli_fail("%s already exists; refusing to overwrite it (use --force)", file);
		return -1;
	}
	return 0;
}

/* Move tmp to file: link() (atomic "create only") or, with force, rename. */
static int publish(const char *tmp, const char *file, bool force, int64_t *size)
{
	struct stat st;

	if (stat(tmp, &st) != 0) {
		cli_fail("cannot stat %s: %s", tmp, strerror(errno));
		return -1;
	}
	*size = (int64_t)st.st_size;
	if (force) {
		if (rename(tmp, file) != 0) {
			cli_fail("cannot move the backup to %s: %s", file, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (link(tmp, file) != 0) {
		cli_fail("cannot create %s: %s%s", file, strerror(errno),
			 errno == EEXIST ? " (use --force to overwrite)" : "");
		return -1;
	}
	(void)unlink(tmp);
	return 0;
}

/* Create the parent directory of path (one level), as the db layer does. */
static void make_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL || slash == path)
		return;
	n = (size_t)(slash - path);
	if (n >= sizeof dir)
		return;
	memcpy(dir, path, n);
	dir[n] = '\0';
	(void)mkdir(dir, 0700);
}

/* --------------------------------------------------------------- SQLite */

static int sqlite_open(const char *path, int flags, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, flags, NULL);

	if (rc != SQLITE_OK) {
		cli_fail("cannot open SQLite database %s: %s", path,
			 db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	(void)sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	*out = db;
	return 0;
}

/* One integer from sql (first column of the first row); *ok false on error. */
static int64_t sqlite_int(sqlite3 *db, const char *sql, int *rc_out)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			v = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	*rc_out = rc;
	return v;
}

static bool sqlite_has_table(sqlite3 *db, const char *table, int *rc)
{
	char sql[160];

	(void)snprintf(sql, sizeof sql,
		       "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'",
		       table);
	return sqlite_int(db, sql, rc) > 0;
}

/* Highest applied migration of db; -1 when it has no schema_migrations. */
static int sqlite_migration(sqlite3 *db, int *rc)
{
	if (!sqlite_has_table(db, "schema_migrations", rc) || *rc != SQLITE_OK)
		return -1;
	return (int)sqlite_int(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", rc);
}

/* Copy every page of src's main database over dst's, retrying while busy. */
static int sqlite_copy(sqlite3 *dst, sqlite3 *src, const char *what)
{
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	int rc, tries = 0;

	if (b == NULL) {
		cli_fail("%s: %s", what, sqlite3_errmsg(dst));
		return -1;
	}
	do {
		rc = sqlite3_backup_step(b, -1);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sleep_ms(50);
	} while ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED || rc == SQLITE_OK) &&
		 ++tries < BACKUP_BUSY_RETRIES);
	(void)sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		cli_fail("%s: %s", what, rc == SQLITE_BUSY || rc == SQLITE_LOCKED
						  ? "the database stayed locked"
						  : sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

static int sqlite_backup(const char *path, const struct backup_args *a)
{
	sqlite3 *src = NULL, *dst = NULL;
	char tmp[PATH_MAX];
	int64_t size = 0;
	int version = 0, erc = SQLITE_OK, rc = 1;
	bool tmp_made = false;

	if (refuse_existing(a->file, a->force) != 0 || temp_name(a->file, tmp, sizeof tmp) != 0)
		return 1;
	if (sqlite_open(path, SQLITE_OPEN_READONLY, &src) != 0)
		goto out;
	(void)unlink(tmp);
	if (sqlite_open(tmp, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &dst) != 0)
		goto out;
	tmp_made = true;
	if (sqlite_copy(dst, src, "backup failed") != 0)
		goto out;
	if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
		cli_fail("backup failed: %s", sqlite3_errmsg(dst));
		goto out;
	}
	version = sqlite_migration(dst, &erc);
	if (erc != SQLITE_OK) {
		cli_fail("backup failed: cannot read schema_migrations: %s", sqlite3_errstr(erc));
		goto out;
	}
	if (sqlite3_close(dst) != SQLITE_OK) {
		cli_fail("backup failed: cannot close %s", tmp);
		goto out;
	}
	dst = NULL;
	if (publish(tmp, a->file, a->force, &size) != 0)
		goto out;
	tmp_made = false;
	printf("backup written: %s (%lld bytes, migration %d)\n", a->file, (long long)size,
	       version < 0 ? 0 : version);
	rc = 0;
out:
	sqlite3_close(dst);
	sqlite3_close(src);
	if (tmp_made)
		(void)unlink(tmp);
	return rc;
}

/* Check the backup file: a SQLite database, intact, with schema_migrations
 * not ahead of this binary. Returns its version or -1 (after printing). */
static int sqlite_check_backup(sqlite3 *b, const char *file)
{
	sqlite3_stmt *st = NULL;
	int rc, version;
	bool ok;

	rc = sqlite3_prepare_v2(b, "PRAGMA quick_check", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	ok = rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
	     strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	if (!ok) {
		cli_fail("%s is not a usable SQLite database (%s)", file,
			 rc == SQLITE_ROW ? "integrity check failed" : sqlite3_errstr(rc));
		return -1;
	}
	version = sqlite_migration(b, &rc);
	if (rc != SQLITE_OK || version < 0) {
		cli_fail("%s has no schema_migrations table: not a PyTake backup", file);
		return -1;
	}
	if (version > head_version()) {
		cli_fail("%s is at migration %d, this binary knows up to %d: restore it with a "
			 "newer pytake", file, version, head_version());
		return -1;
	}
	return version;
}

/* Tables whose rows make a restore target "not empty" (design note). The
 * names are fixed literals: they are put into SQL text. */
static const char *const content_tables[] = { "organizations", "rate_cards", "webhook_events" };
#define CONTENT_TABLES (sizeof content_tables / sizeof content_tables[0])

/* Refuse a target holding rows in content_tables (rows[i] for
 * content_tables[i]) unless force. 0 = go on. */
static int check_target_empty(const int64_t rows[CONTENT_TABLES], bool force)
{
	char what[256] = "";
	size_t used = 0;

	for (size_t i = 0; i < CONTENT_TABLES; i++) {
		if (rows[i] <= 0 || used >= sizeof what)
			continue;
		int n = snprintf(what + used, sizeof what - used, "%s%s: %lld row%s",
				 used ? ", " : "", content_tables[i], (long long)rows[i],
				 rows[i] == 1 ? "" : "s");
		if (n > 0)
			used += (size_t)n;
	}
	if (used > 0 && !force) {
		cli_fail("the target database is not empty (%s); restore replaces everything "
			 "in it: use --force to do that", what);
		return -1;
	}
	return 0;
}

static int sqlite_restore(const char *path, const struct backup_args *a)
{
	sqlite3 *src = NULL, *dst = NULL;
	int version, erc = SQLITE_OK, rc = 1;
	int64_t rows[CONTENT_TABLES] = { 0 };

	if (access(a->file, R_OK) != 0) {
		cli_fail("cannot read %s: %s", a->file, strerror(errno));
		return 1;
	}
	if (sqlite_open(a->file, SQLITE_OPEN_READONLY, &src) != 0)
		goto out;
	version = sqlite_check_backup(src, a->file);
	if (version < 0)
		goto out;
	make_parent_dir(path);
	if (sqlite_open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &dst) != 0)
		goto out;
	for (size_t i = 0; i < CONTENT_TABLES && erc == SQLITE_OK; i++) {
		char sql[96];

		if (!sqlite_has_table(dst, content_tables[i], &erc) || erc != SQLITE_OK)
			continue;
		(void)snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", content_tables[i]);
		rows[i] = sqlite_int(dst, sql, &erc);
	}
	if (erc != SQLITE_OK) {
		cli_fail("cannot inspect the target database: %s", sqlite3_errstr(erc));
		goto out;
	}
	if (check_target_empty(rows, a->force) != 0)
		goto out;
	if (sqlite_copy(dst, src, "restore failed") != 0)
		goto out;
	printf("restored: %s (migration %d) into sqlite database %s\n", a->file, version, path);
	rc = 0;
out:
	sqlite3_close(dst);
	sqlite3_close(src);
	return rc;
}

/* ----------------------------------------------------------- PostgreSQL */

/* Whether prog is an executable file in a PATH directory. */
static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path != '\0') {
		size_t n = strcspn(path, ":");
		int w = snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n > 0 ? path : ".", prog);

		if (w > 0 && (size_t)w < sizeof buf && access(buf, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

static int need_tool(const char *prog)
{
	if (on_path(prog))
		return 0;
	cli_fail("%s not found on PATH: install the package postgresql-client (Debian: "
		 "apt-get install postgresql-client)", prog);
	return -1;
}

/* Run argv (no shell) with stdin from /dev/null and stdout to out_fd (-1:
 * inherited). Returns the exit status, 128+signal, or -1 when it could not
 * run. */
static int run_tool(char *const argv[], int out_fd)
{
	pid_t pid = fork();
	int status = 0;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		if (devnull >= 0)
			(void)dup2(devnull, STDIN_FILENO);
		if (out_fd >= 0)
			(void)dup2(out_fd, STDOUT_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

/* Migration version (current) and the row counts of content_tables (NULL:
 * not wanted) of the configured database, through the db layer. */
static int pg_inspect(struct config *cfg, int *version, int64_t *rows)
{
	struct app app;
	struct migrate_status st;
	struct db_conn *c = NULL;
	struct db_res *r = NULL;
	char err[512];
	int rc = -1;

	if (app_open(&app, cfg, err, sizeof err) != 0) {
		cli_fail("cannot open database: %s", err);
		return -1;
	}
	if (migrate_status(app.db, migrations_embedded, migrations_embedded_count, &st, err,
			   sizeof err) != 0) {
		cli_fail("cannot read the migration state: %s", err);
		goto out;
	}
	*version = st.current;
	c = db_acquire(app.db);
	if (c == NULL) {
		cli_fail("cannot get a database connection");
		goto out;
	}
	for (size_t i = 0; rows != NULL && i < CONTENT_TABLES; i++) {
		char sql[96];

		rows[i] = 0;
		(void)snprintf(sql, sizeof sql, "SELECT to_regclass('%s') IS NOT NULL",
			       content_tables[i]);
		if (db_exec(c, sql, NULL, 0, &r, NULL) != DB_OK)
			goto db_failed;
		bool exists = db_rows(r) > 0 && db_get_bool(r, 0, 0);
		db_res_free(r);
		r = NULL;
		if (!exists)
			continue;
		(void)snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", content_tables[i]);
		if (db_exec(c, sql, NULL, 0, &r, NULL) != DB_OK)
			goto db_failed;
		rows[i] = db_rows(r) > 0 ? db_get_int(r, 0, 0) : 0;
		db_res_free(r);
		r = NULL;
	}
	rc = 0;
	goto out;
db_failed:
	cli_fail("cannot inspect the database: %s", db_errmsg(c));
out:
	db_res_free(r);
	if (c != NULL)
		db_release(app.db, c);
	app_close(&app);
	return rc;
}

static int pg_backup(struct config *cfg, const struct backup_args *a)
{
	char tmp[PATH_MAX];
	int version = 0, status, rc = 1;
	int64_t size = 0;

	if (refuse_existing(a->file, a->force) != 0 || temp_name(a->file, tmp, sizeof tmp) != 0 ||
	    need_tool("pg_dump") != 0 || pg_inspect(cfg, &version, NULL) != 0)
		return 1;
	{
		char *argv[] = { "pg_dump", "--format=custom", "--no-owner", "--file", tmp,
				 cfg->database_url, NULL };

		(void)unlink(tmp);
		status = run_tool(argv, -1);
	}
	if (status != 0) {
		cli_fail("pg_dump failed (exit %d); no backup written", status);
		goto out;
	}
	if (publish(tmp, a->file, a->force, &size) != 0)
		goto out;
	printf("backup written: %s (%lld bytes, migration %d)\n", a->file, (long long)size,
	       version);
	rc = 0;
out:
	(void)unlink(tmp);
	return rc;
}

/* Highest version in the archive's schema_migrations data; -1 when the file
 * is not a readable archive, -2 when it has no schema_migrations rows. */
static int pg_archive_version(const char *file)
{
	char *argv[] = { "pg_restore", "--data-only", "--table=schema_migrations", "--file=-",
			 (char *)file, NULL };
	FILE *out = tmpfile();
	char line[TOOL_OUTPUT_LINE_MAX];
	bool in_copy = false;
	int version = -2;

	if (out == NULL)
		return -1;
	if (run_tool(argv, fileno(out)) != 0) {
		(void)fclose(out);
		return -1;
	}
	rewind(out);
	while (fgets(line, sizeof line, out) != NULL) {
		if (!in_copy) {
			in_copy = strncmp(line, "COPY ", 5) == 0 &&
				  strstr(line, "schema_migrations") != NULL;
			continue;
		}
		if (strncmp(line, "\\.", 2) == 0)
			break;
		{
			char *end = NULL;
			long v = strtol(line, &end, 10);

			if (end != line && *end == '\t' && v > version && v < INT_MAX)
				version = (int)v;
		}
	}
	(void)fclose(out);
	return version;
}

static int pg_restore_run(struct config *cfg, const struct backup_args *a)
{
	int version, current = 0, status;
	int64_t rows[CONTENT_TABLES] = { 0 };

	if (access(a->file, R_OK) != 0) {
		cli_fail("cannot read %s: %s", a->file, strerror(errno));
		return 1;
	}
	if (need_tool("pg_restore") != 0)
		return 1;
	version = pg_archive_version(a->file);
	if (version == -1) {
		cli_fail("%s is not a pg_dump custom-format archive (pg_restore cannot read it)",
			 a->file);
		return 1;
	}
	if (version == -2) {
		cli_fail("%s has no schema_migrations data: not a PyTake backup", a->file);
		return 1;
	}
	if (version > head_version()) {
		cli_fail("%s is at migration %d, this binary knows up to %d: restore it with a "
			 "newer pytake", a->file, version, head_version());
		return 1;
	}
	if (pg_inspect(cfg, &current, rows) != 0 || check_target_empty(rows, a->force) != 0)
		return 1;
	{
		char *argv[] = { "pg_restore", "--no-owner", "--clean", "--if-exists",
				 "--single-transaction", "--dbname", cfg->database_url,
				 (char *)a->file, NULL };

		status = run_tool(argv, -1);
	}
	if (status != 0) {
		cli_fail("pg_restore failed (exit %d); the database was left as it was", status);
		return 1;
	}
	printf("restored: %s (migration %d) into the postgresql database\n", a->file, version);
	return 0;
}

/* ------------------------------------------------------------- commands */

static int run(int argc, char **argv, bool restore)
{
	struct backup_args a;
	struct config cfg;
	const char *path;
	int rc = 1;

	if (parse_args(argc, argv, &a) != 0)
		return 2;
	if (cli_load_config(&cfg, false) != 0)
		return 1;
	path = sqlite_path(cfg.database_url);
	if (path != NULL && (strcmp(path, ":memory:") == 0 || *path == '\0'))
		cli_fail("DATABASE_URL is an in-memory SQLite database: nothing to %s",
			 restore ? "restore into" : "back up");
	else if (path != NULL)
		rc = restore ? sqlite_restore(path, &a) : sqlite_backup(path, &a);
	else if (is_pg_url(cfg.database_url))
		rc = restore ? pg_restore_run(&cfg, &a) : pg_backup(&cfg, &a);
	else
		cli_fail("DATABASE_URL: expected sqlite:PATH or postgresql://...");
	config_release(&cfg);
	return rc;
}

int cmd_backup(int argc, char **argv)
{
	return run(argc, argv, false);
}

int cmd_restore(int argc, char **argv)
{
	return run(argc, argv, true);
}
