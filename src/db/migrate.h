/* migrate: numbered SQL migrations compiled into the binary.
 *
 * Files live in src/db/migrations/NNNN_name.sql and are embedded at build
 * time (migrations_embedded.c, generated). One file serves both engines: it
 * is written in PostgreSQL's dialect with portable types, and for SQLite
 * these words are rewritten (whole words, outside quotes):
 *   UUID, TIMESTAMPTZ, JSONB -> TEXT; BIGINT, BOOLEAN, NUMERIC(18,6) -> INTEGER;
 *   BYTEA -> BLOB.
 * A table that ends in ") STRICT;" keeps STRICT on SQLite and loses it on
 * PostgreSQL. Lines between "-- pg-only" and "-- end" run on PostgreSQL only;
 * between "-- sqlite-only" and "-- end" on SQLite only.
 *
 * schema_migrations(version, name, checksum, applied_at) records what ran;
 * the checksum is SHA-256 of the file's text as written.
 *
 * upgrade runs each pending migration in its own transaction together with
 * its schema_migrations row, under a lock (PostgreSQL advisory lock; SQLite
 * write lock) so two processes cannot migrate at once; the second waits and
 * then finds nothing to do. */
#ifndef PYTAKE_MIGRATE_H
#define PYTAKE_MIGRATE_H
#include <stddef.h>
#include <stdio.h>

#include "db/db.h"

struct migration {
	int version;
	const char *name;
	const char *sql;
};

/* The set compiled into this binary, ordered by version (1, 2, ...). */
extern const struct migration migrations_embedded[];
extern const size_t migrations_embedded_count;

enum migrate_state {
	MIGRATE_AT_HEAD = 0,
	MIGRATE_BEHIND,   /* pending migrations exist (includes empty db) */
	MIGRATE_AHEAD,    /* db has a version this binary does not know */
	MIGRATE_CHANGED,  /* an applied migration's checksum differs */
};

struct migrate_status {
	enum migrate_state state;
	int current;        /* highest applied version, 0 = none */
	int head;           /* highest version in the set */
	int changed_version; /* MIGRATE_CHANGED: the first changed one */
	char message[256];  /* one human line, e.g. "database is at 7, this
	                       binary knows up to 5" */
};

/* Inspect without changing anything (creates nothing). */
int migrate_status(struct db *db, const struct migration *set, size_t n,
		   struct migrate_status *st, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Apply pending migrations up to target (0 = head). Refuses (returns -1)
 * when the database is ahead or changed. */
int migrate_upgrade(struct db *db, const struct migration *set, size_t n,
		    int target, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Print "version name checksum applied_at|pending" lines. */
int migrate_history(struct db *db, const struct migration *set, size_t n,
		    FILE *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The SQL of m rewritten for engine (caller frees). */
char *migrate_sql_for(const char *sql, enum db_engine engine);

#endif
