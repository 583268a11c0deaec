/* pytake pricing import FILE | pricing seed
 *
 * import: load a rate card file (CSV with the columns of the example card,
 * or JSON {"rates": [...]} when the file starts with '{'), validated as a
 * whole like PUT /api/v1/pricing/rates: every problem is printed, one per
 * line on stderr, and nothing is stored. Rows already stored identically
 * are skipped; a different rate under a stored (market, category,
 * effective_from) is refused (the past is not rewritten).
 * seed: load the example card compiled into the binary when the database
 * has no rate card yet (what `pytake bootstrap` does). */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "domain/pricing.h"

#define PRICING_FILE_MAX (16u * 1024 * 1024)

static const char *pricing_usage =
	"usage: pytake pricing import FILE (CSV or JSON rate card) | pytake pricing seed";

/* Whole file into a malloc'd NUL-terminated buffer; NULL after printing. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0;
	if (f == NULL) {
		cli_fail("cannot open %s", path);
		return NULL;
	}
	buf = malloc(PRICING_FILE_MAX + 1);
	if (buf == NULL) {
		cli_fail("out of memory");
		goto out;
	}
	n = fread(buf, 1, PRICING_FILE_MAX + 1, f);
	if (ferror(f) || n > PRICING_FILE_MAX) {
		cli_fail(ferror(f) ? "cannot read %s" : "%s is larger than 16 MiB", path);
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	*len = n;
out:
	fclose(f);
	return buf;
}

static void print_details(const char *file, const json_t *details)
{
	size_t i;
	json_t *d;
	json_array_foreach(details, i, d)
		fprintf(stderr, "pytake: %s: %s: %s\n", file,
			json_string_value(json_object_get(d, "field")),
			json_string_value(json_object_get(d, "message")));
}

/* Parse text (CSV or JSON) into up; false after printing the problems. */
static bool parse_file(const char *file, const char *text, size_t len,
		       struct pricing_upload *up)
{
	struct json_check chk = JSON_CHECK_INIT;
	size_t skip = strspn(text, " \t\r\n");
	bool ok = false;
	int rc;
	if (text[skip] == '{') {
		char err[256];
		json_t *body = json_parse_object(text, len, err, sizeof err);
		if (body == NULL) {
			cli_fail("%s: %s", file, err);
			return false;
		}
		rc = pricing_parse_json(body, up, &chk);
		json_decref(body);
	} else {
		rc = pricing_parse_csv(text, len, up, &chk);
	}
	if (rc != 0) {
		cli_fail("out of memory");
		goto out;
	}
	if (json_array_size(chk.type_errors) == 0)
		pricing_check_upload(up, &chk);
	print_details(file, chk.type_errors);
	print_details(file, chk.rule_errors);
	ok = json_check_ok(&chk);
	if (!ok)
		cli_fail("%s: the rate card is not valid; nothing was stored", file);
out:
	json_check_release(&chk);
	return ok;
}

struct import_tx {
	const struct pricing_upload *up;
	json_t *details;
	struct pricing_store_result res;
};

static int import_fn(struct db_conn *c, void *ctx)
{
	struct import_tx *t = ctx;
	json_array_clear(t->details);
	return pricing_store(c, t->up, t->details, &t->res);
}

static int pricing_import(const char *file)
{
	struct pricing_upload up = PRICING_UPLOAD_INIT;
	struct import_tx t = { .up = &up, .details = json_array() };
	struct config cfg;
	struct app app;
	size_t len = 0;
	int rc = 1;
	char *text = read_file(file, &len);
	if (text == NULL || !parse_file(file, text, len, &up)) {
		free(text);
		pricing_upload_release(&up);
		json_decref(t.details);
		return 1;
	}
	if (cli_open_app(&cfg, &app, false) != 0)
		goto out_free;
	int dbrc = db_tx(app.db, true, import_fn, &t);
	if (dbrc == PRICING_STORE_CONFLICT || dbrc == PRICING_STORE_INVALID) {
		print_details(file, t.details);
		cli_fail("%s: %s; nothing was stored", file,
			 dbrc == PRICING_STORE_CONFLICT
				 ? "the card changes rates already stored for these dates"
				 : "the card's currency differs from the stored card's");
	} else if (dbrc != DB_OK) {
		cli_fail("cannot store the rate card (database error %d)", dbrc);
	} else {
		printf("rate card %s: %d rates stored, %d already present\n", file,
		       t.res.inserted, t.res.unchanged);
		rc = 0;
	}
	app_close(&app);
	config_release(&cfg);
out_free:
	free(text);
	pricing_upload_release(&up);
	json_decref(t.details);
	return rc;
}

static int seed_fn(struct db_conn *c, void *ctx)
{
	return pricing_seed_if_empty(c, ctx);
}

static int pricing_seed(void)
{
	struct config cfg;
	struct app app;
	int inserted = 0;
	if (cli_open_app(&cfg, &app, false) != 0)
		return 1;
	int rc = db_tx(app.db, true, seed_fn, &inserted);
	if (rc != DB_OK)
		cli_fail("cannot load the example rate card (database error %d)", rc);
	else if (inserted > 0)
		printf("loaded the example rate card: %d rates\n", inserted);
	else
		printf("the database already has a rate card; nothing loaded\n");
	app_close(&app);
	config_release(&cfg);
	return rc == DB_OK ? 0 : 1;
}

int cmd_pricing(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "import"))
		return pricing_import(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "seed"))
		return pricing_seed();
	cli_fail("%s", pricing_usage);
	return 2;
}
