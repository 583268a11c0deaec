/* migrate: the migration runner (see migrate.h for the rules).
 *
 * status reads schema_migrations (if it exists; nothing is created) and
 * compares it with the set. upgrade first creates schema_migrations under
 * the lock, refuses an ahead/changed database, then applies every pending
 * migration up to the target in its own write transaction: take the lock
 * (PostgreSQL pg_advisory_xact_lock; SQLite's BEGIN IMMEDIATE already holds
 * the write lock), re-read whether the version is applied (another process
 * may have done it while we waited), run the rewritten SQL and insert the
 * schema_migrations row. So concurrent upgraders apply each migration once.
 *
 * Checksums are SHA-256 hex of the migration text as written (before the
 * SQLite rewrite), so one file has one checksum on both engines. */
#include <ctype.h>
#include <inttypes.h>
#include <openssl/evp.h>

#include "core/timeutil.h"
#include "db/migrate.h"

#define MIGRATE_LOCK_KEY INT64_C(0x70797461006d6967) /* "pyta\0mig" */
#define SHA256_HEX_LEN 65

static const char schema_migrations_ddl[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations (\n"
	"  version INTEGER PRIMARY KEY,\n"
	"  name TEXT NOT NULL,\n"
	"  checksum TEXT NOT NULL,\n"
	"  applied_at BIGINT NOT NULL\n"
	") STRICT;\n";

/* ---- checksum ---- */

static int sha256_hex(const char *text, char out[SHA256_HEX_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";

	if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

/* ---- SQL rewrite ---- */

struct rewrite_word {
	const char *from;
	const char *to;
};

static const struct rewrite_word sqlite_words[] = {
	{ "UUID", "TEXT" },        { "TIMESTAMPTZ", "TEXT" }, { "JSONB", "TEXT" },
	{ "BIGINT", "INTEGER" },   { "BOOLEAN", "INTEGER" },  { "BYTEA", "BLOB" },
};

static bool is_word_char(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_';
}

/* Length of the word at p when it equals w (case-insensitive), else 0. */
static size_t word_at(const char *p, const char *w)
{
	size_t n = strlen(w);

	if (strncasecmp(p, w, n) != 0 || is_word_char(p[n]))
		return 0;
	return n;
}

/* "NUMERIC(18,6)" with optional blanks: length matched, else 0. */
static size_t numeric_18_6_at(const char *p)
{
	const char *q = p;
	static const char *const parts[] = { "(", "18", ",", "6", ")" };

	if (word_at(q, "NUMERIC") == 0)
		return 0;
	q += 7;
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		while (*q == ' ' || *q == '\t')
			q++;
		if (strncmp(q, parts[i], strlen(parts[i])) != 0)
			return 0;
		q += strlen(parts[i]);
	}
	return (size_t)(q - p);
}

/* Is the word at p (STRICT) right after a ')' (blanks between)? */
static bool follows_paren(const char *start, const char *p)
{
	while (p > start && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n' ||
			     p[-1] == '\r'))
		p--;
	return p > start && p[-1] == ')';
}

/* Copy a quoted string or comment starting at p verbatim; returns its
 * length (0 if p starts none). */
static size_t skip_quoted(const char *p)
{
	const char *q = p;

	if (*p == '\'' || *p == '"') {
		char quote = *p;
		for (q = p + 1; *q != '\0'; q++) {
			if (*q == quote) {
				if (q[1] == quote) { /* doubled quote */
					q++;
					continue;
				}
				return (size_t)(q + 1 - p);
			}
		}
		return (size_t)(q - p);
	}
	if (p[0] == '-' && p[1] == '-') {
		q = strchr(p, '\n');
		return q != NULL ? (size_t)(q - p) : strlen(p);
	}
	if (p[0] == '/' && p[1] == '*') {
		q = strstr(p + 2, "*/");
		return q != NULL ? (size_t)(q + 2 - p) : strlen(p);
	}
	return 0;
}

/* Rewrite words of one engine-filtered text into out (big enough). */
static void rewrite_words(const char *in, enum db_engine engine, char *out)
{
	const char *p = in;
	char *o = out;

	while (*p != '\0') {
		size_t n = skip_quoted(p);
		if (n > 0) {
			memcpy(o, p, n);
			o += n;
			p += n;
			continue;
		}
		if (is_word_char(*p) && (p == in || !is_word_char(p[-1]))) {
			const char *to = NULL;
			if (engine == DB_ENGINE_SQLITE) {
				for (size_t i = 0; i < sizeof sqlite_words / sizeof sqlite_words[0]; i++)
					if ((n = word_at(p, sqlite_words[i].from)) > 0) {
						to = sqlite_words[i].to;
						break;
					}
				if (to == NULL && (n = numeric_18_6_at(p)) > 0)
					to = "INTEGER";
			} else if ((n = word_at(p, "STRICT")) > 0 && follows_paren(in, p)) {
				/* drop " STRICT" after the closing parenthesis */
				while (o > out && (o[-1] == ' ' || o[-1] == '\t'))
					o--;
				to = "";
			}
			if (to != NULL) {
				size_t tl = strlen(to);
				memcpy(o, to, tl);
				o += tl;
				p += n;
				continue;
			}
			while (is_word_char(*p))
				*o++ = *p++;
			continue;
		}
		*o++ = *p++;
	}
	*o = '\0';
}

/* The marker on a line ("-- pg-only"...), trimmed, or NULL. */
static bool line_is(const char *line, size_t len, const char *marker)
{
	size_t ml = strlen(marker);

	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' ||
			   line[len - 1] == '\r'))
		len--;
	return len == ml && strncmp(line, marker, ml) == 0;
}

/* Keep the lines meant for engine; drop the marker lines. */
static void filter_sections(const char *in, enum db_engine engine, char *out)
{
	enum { ALL, PG_ONLY, SQLITE_ONLY } section = ALL;
	const char *p = in;
	char *o = out;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		size_t take = nl != NULL ? len + 1 : len;
		bool keep = false;

		if (line_is(p, len, "-- pg-only"))
			section = PG_ONLY;
		else if (line_is(p, len, "-- sqlite-only"))
			section = SQLITE_ONLY;
		else if (line_is(p, len, "-- end") && section != ALL)
			section = ALL;
		else
			keep = section == ALL ||
			       (section == PG_ONLY && engine == DB_ENGINE_PG) ||
			       (section == SQLITE_ONLY && engine == DB_ENGINE_SQLITE);
		if (keep) {
			memcpy(o, p, take);
			o += take;
		}
		p += take;
	}
	*o = '\0';
}

char *migrate_sql_for(const char *sql, enum db_engine engine)
{
	size_t len = strlen(sql);
	/* Growth is at most BIGINT -> INTEGER: 7/6. */
	size_t cap = len + len / 6 + 16;
	char *filtered = malloc(len + 1);
	char *out = malloc(cap);

	if (filtered == NULL || out == NULL) {
		free(filtered);
		free(out);
		return NULL;
	}
	filter_sections(sql, engine, filtered);
	rewrite_words(filtered, engine, out);
	free(filtered);
	return out;
}

/* ---- reading the state ---- */

struct applied {
	int version;
	char name[128];
	char checksum[SHA256_HEX_LEN];
	int64_t applied_at;
};

struct applied_list {
	struct applied *v;
	int n;
};

static int table_exists(struct db_conn *c, bool *exists)
{
	const char *sql = db_engine(db_conn_db(c)) == DB_ENGINE_PG
				  ? "SELECT to_regclass('schema_migrations') IS NOT NULL"
				  : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' "
				    "AND name = 'schema_migrations'";
	struct db_res *r = NULL;
	int rc = db_exec(c, sql, NULL, 0, &r, NULL);

	if (rc == DB_OK)
		*exists = db_rows(r) == 1 &&
			  (db_get_bool(r, 0, 0) || db_get_int(r, 0, 0) > 0);
	db_res_free(r);
	return rc;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* Every applied row, ordered by version; empty list when no table. */
static int read_applied(struct db_conn *c, struct applied_list *out)
{
	struct db_res *r = NULL;
	bool exists = false;
	int rc = table_exists(c, &exists);

	out->v = NULL;
	out->n = 0;
	if (rc != DB_OK || !exists)
		return rc;
	rc = db_exec(c, "SELECT version, name, checksum, applied_at FROM "
			"schema_migrations ORDER BY version", NULL, 0, &r, NULL);
	if (rc != DB_OK)
		goto out;
	out->v = calloc((size_t)db_rows(r) + 1, sizeof *out->v);
	if (out->v == NULL) {
		rc = DB_ERR;
		goto out;
	}
	for (int i = 0; i < db_rows(r); i++) {
		struct applied *a = &out->v[i];
		a->version = (int)db_get_int(r, i, 0);
		copy_str(a->name, sizeof a->name, db_get_text(r, i, 1));
		copy_str(a->checksum, sizeof a->checksum, db_get_text(r, i, 2));
		a->applied_at = db_get_int(r, i, 3);
	}
	out->n = db_rows(r);
out:
	db_res_free(r);
	return rc;
}

static const struct migration *find_in_set(const struct migration *set, size_t n,
					   int version)
{
	for (size_t i = 0; i < n; i++)
		if (set[i].version == version)
			return &set[i];
	return NULL;
}

static const struct applied *find_applied(const struct applied_list *l, int version)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i].version == version)
			return &l->v[i];
	return NULL;
}

/* Fill st from the applied list and the set. */
static int compute_status(const struct applied_list *l, const struct migration *set,
			  size_t n, struct migrate_status *st)
{
	char sum[SHA256_HEX_LEN];
	int pending = 0;

	memset(st, 0, sizeof *st);
	st->head = n > 0 ? set[n - 1].version : 0;
	st->current = l->n > 0 ? l->v[l->n - 1].version : 0;
	for (int i = 0; i < l->n; i++) {
		if (find_in_set(set, n, l->v[i].version) == NULL) {
			st->state = MIGRATE_AHEAD;
			snprintf(st->message, sizeof st->message,
				 "database is at %d, this binary knows up to %d",
				 st->current, st->head);
			return 0;
		}
	}
	for (int i = 0; i < l->n; i++) {
		const struct migration *m = find_in_set(set, n, l->v[i].version);
		if (sha256_hex(m->sql, sum) != 0)
			return -1;
		if (strcmp(sum, l->v[i].checksum) != 0) {
			st->state = MIGRATE_CHANGED;
			st->changed_version = m->version;
			snprintf(st->message, sizeof st->message,
				 "migration %d (%s) was changed after it was applied "
				 "(checksum differs)", m->version, m->name);
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++)
		pending += find_applied(l, set[i].version) == NULL;
	if (pending > 0) {
		st->state = MIGRATE_BEHIND;
		snprintf(st->message, sizeof st->message,
			 "database is at %d, this binary knows up to %d: %d pending",
			 st->current, st->head, pending);
	} else {
		st->state = MIGRATE_AT_HEAD;
		snprintf(st->message, sizeof st->message, "database is at head (%d)",
			 st->current);
	}
	return 0;
}

static int status_on(struct db_conn *c, const struct migration *set, size_t n,
		     struct migrate_status *st, char *err, size_t errlen)
{
	struct applied_list l;
	int rc = read_applied(c, &l);

	if (rc != DB_OK) {
		snprintf(err, errlen, "reading schema_migrations: %s", db_errmsg(c));
		return -1;
	}
	rc = compute_status(&l, set, n, st);
	free(l.v);
	if (rc != 0)
		snprintf(err, errlen, "cannot compute a SHA-256 checksum");
	return rc;
}

int migrate_status(struct db *db, const struct migration *set, size_t n,
		   struct migrate_status *st, char *err, size_t errlen)
{
	struct db_conn *c = db_acquire(db);
	int rc;

	if (c == NULL) {
		snprintf(err, errlen, "database unavailable (no connection)");
		return -1;
	}
	rc = status_on(c, set, n, st, err, errlen);
	db_release(db, c);
	return rc;
}

/* ---- upgrade ---- */

struct apply_ctx {
	const struct migration *m;
	int head;
	bool skipped;
	char *err;
	size_t errlen;
};

static int create_table_tx(struct db_conn *c, void *ctx)
{
	struct apply_ctx *a = ctx;
	char *ddl = migrate_sql_for(schema_migrations_ddl, db_engine(db_conn_db(c)));
	int rc = DB_ERR;

	if (ddl == NULL)
		return DB_ERR;
	rc = db_lock_xact(c, MIGRATE_LOCK_KEY);
	if (rc == DB_OK)
		rc = db_exec_script(c, ddl);
	if (rc != DB_OK && rc != DB_ERR_RETRY)
		snprintf(a->err, a->errlen, "creating schema_migrations: %s", db_errmsg(c));
	free(ddl);
	return rc;
}

/* Under the lock: applied meanwhile by someone else? (then skip it) */
static int recheck_locked(struct db_conn *c, struct apply_ctx *a, char sum[SHA256_HEX_LEN])
{
	struct db_param p = DBP_INT(a->m->version);
	struct db_res *r = NULL;
	int rc = db_exec(c, "SELECT checksum FROM schema_migrations WHERE version = $1",
			 &p, 1, &r, NULL);

	if (rc != DB_OK)
		goto out;
	if (db_rows(r) == 1) {
		a->skipped = true;
		if (strcmp(db_get_text(r, 0, 0), sum) != 0) {
			snprintf(a->err, a->errlen, "migration %d (%s) was changed after it "
				 "was applied (checksum differs)", a->m->version, a->m->name);
			rc = 1;
		}
	}
out:
	db_res_free(r);
	return rc;
}

static int apply_tx(struct db_conn *c, void *ctx)
{
	struct apply_ctx *a = ctx;
	char sum[SHA256_HEX_LEN];
	char *sql = NULL;
	int rc;

	a->skipped = false;
	if (sha256_hex(a->m->sql, sum) != 0)
		return DB_ERR;
	rc = db_lock_xact(c, MIGRATE_LOCK_KEY);
	if (rc == DB_OK)
		rc = recheck_locked(c, a, sum);
	if (rc != DB_OK || a->skipped)
		goto out;
	sql = migrate_sql_for(a->m->sql, db_engine(db_conn_db(c)));
	if (sql == NULL) {
		rc = DB_ERR;
		goto out;
	}
	rc = db_exec_script(c, sql);
	if (rc == DB_OK) {
		const struct db_param p[] = { DBP_INT(a->m->version), DBP_TEXT(a->m->name),
					      DBP_TEXTN(sum, strlen(sum)),
					      DBP_INT(time_now_us()) };
		rc = db_exec(c, "INSERT INTO schema_migrations (version, name, checksum, "
				"applied_at) VALUES ($1, $2, $3, $4)", p, 4, NULL, NULL);
	}
	if (rc != DB_OK && rc != DB_ERR_RETRY)
		snprintf(a->err, a->errlen, "migration %d (%s) failed: %s", a->m->version,
			 a->m->name, db_errmsg(c));
out:
	free(sql);
	return rc;
}

static int check_can_upgrade(struct db *db, const struct migration *set, size_t n,
			     int *target, char *err, size_t errlen)
{
	struct migrate_status st;

	if (migrate_status(db, set, n, &st, err, errlen) != 0)
		return -1;
	if (st.state == MIGRATE_AHEAD || st.state == MIGRATE_CHANGED) {
		snprintf(err, errlen, "%s", st.message);
		return -1;
	}
	if (*target == 0)
		*target = st.head;
	if (find_in_set(set, n, *target) == NULL && *target != 0) {
		snprintf(err, errlen, "unknown target version %d (this binary knows up "
			 "to %d)", *target, st.head);
		return -1;
	}
	if (*target < st.current) {
		snprintf(err, errlen, "database is at %d, cannot go down to %d "
			 "(migrations only go up)", st.current, *target);
		return -1;
	}
	return 0;
}

int migrate_upgrade(struct db *db, const struct migration *set, size_t n,
		    int target, char *err, size_t errlen)
{
	struct apply_ctx a = { .err = err, .errlen = errlen };
	int rc;

	err[0] = '\0';
	rc = db_tx(db, true, create_table_tx, &a);
	if (rc != DB_OK) {
		if (err[0] == '\0')
			snprintf(err, errlen, "creating schema_migrations: error %d", rc);
		return -1;
	}
	if (check_can_upgrade(db, set, n, &target, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < n && set[i].version <= target; i++) {
		a.m = &set[i];
		rc = db_tx(db, true, apply_tx, &a);
		if (rc != DB_OK) {
			if (err[0] == '\0')
				snprintf(err, errlen, "migration %d (%s): %s", set[i].version,
					 set[i].name, rc == DB_ERR_RETRY ? "database busy, gave up"
					 : rc == DB_ERR_UNAVAILABLE ? "database unavailable"
					 : "failed");
			return -1;
		}
	}
	return 0;
}

/* ---- history ---- */

static void print_line(FILE *out, int version, const char *name, const char *sum,
		       const struct applied *a)
{
	char when[TIME_RFC3339_LEN];

	if (a != NULL)
		fprintf(out, "%d %s %s %s\n", version, name, sum,
			time_format_rfc3339(a->applied_at, when, sizeof when));
	else
		fprintf(out, "%d %s %s pending\n", version, name, sum);
}

int migrate_history(struct db *db, const struct migration *set, size_t n, FILE *out,
		    char *err, size_t errlen)
{
	struct db_conn *c = db_acquire(db);
	struct applied_list l = { 0 };
	char sum[SHA256_HEX_LEN];
	int rc = -1;

	if (c == NULL) {
		snprintf(err, errlen, "database unavailable (no connection)");
		return -1;
	}
	if (read_applied(c, &l) != DB_OK) {
		snprintf(err, errlen, "reading schema_migrations: %s", db_errmsg(c));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (sha256_hex(set[i].sql, sum) != 0) {
			snprintf(err, errlen, "cannot compute a SHA-256 checksum");
			goto out;
		}
		print_line(out, set[i].version, set[i].name, sum,
			   find_applied(&l, set[i].version));
	}
	/* Versions the database has and this binary does not. */
	for (int i = 0; i < l.n; i++)
		if (find_in_set(set, n, l.v[i].version) == NULL)
			print_line(out, l.v[i].version, l.v[i].name, l.v[i].checksum, &l.v[i]);
	rc = 0;
out:
	free(l.v);
	db_release(db, c);
	return rc;
}
