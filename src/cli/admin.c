/* pytake org create | user create | bootstrap */
#include "cli/cli.h"

#include <getopt.h>

#include "auth/password.h"
#include "core/crypto.h"
#include "core/str.h"
#include "domain/orgs.h"
#include "domain/pricing.h"
#include "domain/users.h"

/* --- org create ------------------------------------------------------- */

struct org_create_tx {
	const char *name, *slug;
	struct org org;
};

static int org_create_fn(struct db_conn *c, void *ctx)
{
	struct org_create_tx *t = ctx;
	return orgs_create(c, t->name, t->slug, NULL, &t->org);
}

static int org_create(int argc, char **argv)
{
	static const struct option opts[] = { { "name", required_argument, NULL, 'n' },
					       { "slug", required_argument, NULL, 's' },
					       { NULL, 0, NULL, 0 } };
	struct org_create_tx t = { 0 };
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'n')
			t.name = optarg;
		else if (ch == 's')
			t.slug = optarg;
		else
			return 2;
	}
	if (!t.name || !t.slug) {
		cli_fail("usage: pytake org create --name NAME --slug SLUG");
		return 2;
	}
	const char *why = orgs_check_name(t.name);
	if (why) {
		cli_fail("--name %s", why);
		return 2;
	}
	if ((why = orgs_check_slug(t.slug))) {
		cli_fail("--slug %s", why);
		return 2;
	}
	struct config cfg;
	struct app app;
	if (cli_open_app(&cfg, &app, false) != 0)
		return 1;
	int rc = db_tx(app.db, true, org_create_fn, &t);
	if (rc == DB_ERR_CONFLICT)
		cli_fail("an organization with slug \"%s\" already exists", t.slug);
	else if (rc != DB_OK)
		cli_fail("cannot create the organization (database error %d)", rc);
	else
		printf("%s\n", t.org.id);
	app_close(&app);
	config_release(&cfg);
	return rc == DB_OK ? 0 : 1;
}

int cmd_org(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "create"))
		return org_create(argc - 1, argv + 1);
	cli_fail("usage: pytake org create --name NAME --slug SLUG");
	return 2;
}

/* --- user create ------------------------------------------------------ */

struct user_create_tx {
	const char *org_slug, *email, *full_name;
	enum role role;
	char hash[PASSWORD_HASH_LEN];
	struct user user;
	bool org_missing;
};

static int user_create_fn(struct db_conn *c, void *ctx)
{
	struct user_create_tx *t = ctx;
	struct org org;
	int rc = orgs_find_by_slug(c, t->org_slug, &org);
	if (rc == 1) {
		t->org_missing = true;
		return 1;
	}
	if (rc != 0)
		return rc;
	return users_create(c, org.id, t->email, t->hash, t->full_name, t->role,
			    &t->user);
}

/* Hash, then insert in one transaction. Prints the error; returns 0/1. */
static int create_user(struct app *app, struct user_create_tx *t,
		       const char *password)
{
	if (password_hash(password, t->hash, sizeof t->hash) != 0) {
		cli_fail("cannot hash the password");
		return 1;
	}
	int rc = db_tx(app->db, true, user_create_fn, t);
	if (t->org_missing)
		cli_fail("no organization with slug \"%s\"", t->org_slug);
	else if (rc == DB_ERR_CONFLICT)
		cli_fail("a user with email \"%s\" already exists", t->email);
	else if (rc != DB_OK)
		cli_fail("cannot create the user (database error %d)", rc);
	return rc == DB_OK ? 0 : 1;
}

static const char *user_usage =
	"usage: pytake user create --email E --password P --org SLUG "
	"--role super_admin|org_admin|agent|viewer [--full-name NAME]";

static int user_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "email", required_argument, NULL, 'e' },
		{ "password", required_argument, NULL, 'p' },
		{ "org", required_argument, NULL, 'o' },
		{ "role", required_argument, NULL, 'r' },
		{ "full-name", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	struct user_create_tx t = { .full_name = "" };
	const char *password = NULL, *role = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'e': t.email = optarg; break;
		case 'p': password = optarg; break;
		case 'o': t.org_slug = optarg; break;
		case 'r': role = optarg; break;
		case 'f': t.full_name = optarg; break;
		default: return 2;
		}
	}
	if (!t.email || !password || !t.org_slug || !role) {
		cli_fail("%s", user_usage);
		return 2;
	}
	const char *why;
	t.role = role_parse(role);
	if (t.role == ROLE_NONE) {
		cli_fail("--role must be super_admin, org_admin, agent or viewer");
		return 2;
	}
	if ((why = users_check_email(t.email))) {
		cli_fail("--email %s", why);
		return 2;
	}
	if ((why = users_check_password(password))) {
		cli_fail("--password %s", why);
		return 2;
	}
	if ((why = users_check_full_name(t.full_name))) {
		cli_fail("--full-name %s", why);
		return 2;
	}
	struct config cfg;
	struct app app;
	if (cli_open_app(&cfg, &app, false) != 0)
		return 1;
	int rc = create_user(&app, &t, password);
	if (rc == 0)
		printf("%s\n", t.user.id);
	app_close(&app);
	config_release(&cfg);
	return rc;
}

int cmd_user(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "create"))
		return user_create(argc - 1, argv + 1);
	cli_fail("%s", user_usage);
	return 2;
}

/* --- bootstrap -------------------------------------------------------- */

struct bootstrap_tx {
	struct user_create_tx user;
	struct org org;
	bool already;
	int seeded_rates; /* example rate card rows loaded (0: had a card) */
};

static int bootstrap_fn(struct db_conn *c, void *ctx)
{
	struct bootstrap_tx *b = ctx;
	int64_t n = 0;
	int rc = pricing_seed_if_empty(c, &b->seeded_rates);
	if (rc != DB_OK)
		return rc;
	rc = orgs_count(c, &n);
	if (rc != DB_OK)
		return rc;
	if (n > 0) {
		b->already = true;
		return DB_OK;
	}
	rc = orgs_create(c, "Demo", "demo", NULL, &b->org);
	if (rc != DB_OK)
		return rc;
	return users_create(c, b->org.id, b->user.email, b->user.hash,
			    b->user.full_name, ROLE_ORG_ADMIN, &b->user.user);
}

int cmd_bootstrap(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct config cfg;
	struct app app;
	if (cli_open_app(&cfg, &app, false) != 0)
		return 1;
	struct bootstrap_tx b = { .user = { .email = "admin@demo.local",
					    .full_name = "Demo Admin",
					    .role = ROLE_ORG_ADMIN } };
	char password[32];
	int rc = 1;
	if (crypto_token(password, sizeof password, 12) != 0 ||
	    password_hash(password, b.user.hash, sizeof b.user.hash) != 0) {
		cli_fail("cannot make a password");
		goto out;
	}
	int dbrc = db_tx(app.db, true, bootstrap_fn, &b);
	if (dbrc != DB_OK) {
		cli_fail("cannot create the demo organization (database error %d)", dbrc);
		goto out;
	}
	rc = 0;
	if (b.seeded_rates > 0)
		printf("Loaded the example rate card (%d rates); replace it with Meta's "
		       "current card: pytake pricing import FILE\n", b.seeded_rates);
	if (b.already) {
		printf("The database already has organizations; nothing created.\n"
		       "Use the credentials printed when it was first set up, or\n"
		       "  build/pytake user create --email E --password P --org SLUG --role org_admin\n");
		goto out;
	}
	printf("Created organization \"demo\" and its administrator.\n"
	       "This password is shown only once:\n\n"
	       "  email:    %s\n  password: %s\n\n"
	       "Log in:\n"
	       "  curl -s -X POST http://%s:%d/api/v1/auth/login \\\n"
	       "       -H 'Content-Type: application/json' \\\n"
	       "       -d '{\"email\":\"%s\",\"password\":\"%s\"}'\n\n",
	       b.user.email, password, cfg.bind_address, cfg.port, b.user.email,
	       password);
out:
	explicit_bzero(password, sizeof password);
	app_close(&app);
	config_release(&cfg);
	return rc;
}
