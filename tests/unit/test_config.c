/* Unit tests for core/config: defaults, environment and .env precedence,
 * every bad-value class, bounds, production refusal, development key
 * generation (once, 0600, race-safe) and secret masking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"

static const char *const all_names[] = {
	"BIND_ADDRESS", "PORT", "HTTP_THREADS", "REQUEST_TIMEOUT",
	"SLOW_REQUEST_MS", "MAX_BODY_BYTES", "MAX_HEADER_BYTES",
	"MAX_CONNECTIONS", "DATABASE_URL", "DB_POOL_SIZE", "DATA_DIR",
	"REDIS_URL", "JWT_SECRET_KEY", "ACCESS_TOKEN_EXPIRE_MINUTES",
	"REFRESH_TOKEN_EXPIRE_DAYS", "RATE_LIMIT_ENABLED",
	"RATE_LIMIT_REQUESTS_PER_MINUTE", "LOG_LEVEL", "LOG_FORMAT",
	"ENVIRONMENT", "META_APP_SECRET", "WEBHOOK_VERIFY_TOKEN",
	"GRAPH_API_BASE_URL", "ENCRYPTION_KEY", "CAMPAIGN_MAX_ATTEMPTS",
	"OPT_OUT_KEYWORDS",
};
#define N_NAMES (sizeof all_names / sizeof all_names[0])

/* base64 of bytes 0x00..0x1f, standard and URL-safe without padding. */
#define KEY_STD "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_URL "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define JWT_OK "0123456789abcdef0123456789abcdef-jwt"

static char tmpdir[PATH_MAX];

static void clear_env(void)
{
	size_t i;

	for (i = 0; i < N_NAMES; i++)
		assert_int_equal(unsetenv(all_names[i]), 0);
}

static int setup(void **state)
{
	(void)state;
	clear_env();
	snprintf(tmpdir, sizeof tmpdir, "/tmp/pytake-config-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static void rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char child[PATH_MAX];

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		d = opendir(path);
		while (d != NULL && (e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(child, sizeof child, "%s/%s", path, e->d_name);
			rm_rf(child);
		}
		if (d != NULL)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static int teardown(void **state)
{
	(void)state;
	clear_env();
	rm_rf(tmpdir);
	return 0;
}

static void tmp_path(char *out, size_t outlen, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", tmpdir, name);
	assert_true(n > 0 && (size_t)n < outlen);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* Write text as <tmpdir>/.env and return its path in out. */
static void write_dotenv(char *out, size_t outlen, const char *text)
{
	tmp_path(out, outlen, ".env");
	write_text(out, text);
}

/* config_print into a malloc'd string (through a temporary file: GCC 12
 * mistakes open_memstream's buffer for a dangling local). */
static char *print_config(const struct config *cfg)
{
	FILE *f = tmpfile();

	assert_non_null(f);
	config_print(cfg, f);
	long len = ftell(f);
	assert_true(len >= 0);
	char *buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	rewind(f);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* Assert that the printed configuration has exactly this line. */
static void assert_printed_line(const struct config *cfg, const char *line)
{
	char *text = print_config(cfg);
	char want[512];
	size_t n = (size_t)snprintf(want, sizeof want, "%s\n", line);
	const char *hit = strstr(text, want);
	size_t at = hit ? (size_t)(hit - text) : 0;

	if (hit == NULL || (at > 0 && text[at - 1] != '\n'))
		fail_msg("line \"%s\" not in:\n%s", line, text);
	assert_true(n < sizeof want);
	free(text);
}

static void load_ok(struct config *cfg, const char *env_file)
{
	char err[512] = "";

	if (config_load(cfg, env_file, err, sizeof err) != 0)
		fail_msg("config_load failed: %s", err);
}

/* ---- defaults and overrides ------------------------------------------ */

static void test_defaults(void **state)
{
	struct config cfg;
	size_t i;

	(void)state;
	load_ok(&cfg, NULL);
	assert_string_equal(cfg.bind_address, "127.0.0.1");
	assert_int_equal(cfg.port, 8000);
	assert_int_equal(cfg.http_threads, 0);
	assert_int_equal(cfg.request_timeout_s, 30);
	assert_int_equal(cfg.slow_request_ms, 500);
	assert_int_equal(cfg.max_body_bytes, 4194304);
	assert_int_equal(cfg.max_header_bytes, 16384);
	assert_int_equal(cfg.max_connections, 10000);
	assert_string_equal(cfg.database_url, "sqlite:data/pytake.db");
	assert_int_equal(cfg.db_pool_size, 0);
	assert_string_equal(cfg.data_dir, "data");
	assert_null(cfg.redis_url);
	assert_null(cfg.jwt_secret_key);
	assert_int_equal(cfg.access_token_expire_minutes, 15);
	assert_int_equal(cfg.refresh_token_expire_days, 7);
	assert_true(cfg.rate_limit_enabled);
	assert_int_equal(cfg.rate_limit_requests_per_minute, 600);
	assert_int_equal(cfg.log_level, LOG_INFO);
	assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
	assert_int_equal(cfg.environment, ENV_DEVELOPMENT);
	assert_null(cfg.meta_app_secret);
	assert_null(cfg.webhook_verify_token);
	assert_string_equal(cfg.graph_api_base_url,
			    "https://graph.facebook.com/v24.0");
	assert_false(cfg.encryption_key_set);
	assert_int_equal(cfg.campaign_max_attempts, 5);
	assert_string_equal(cfg.opt_out_keywords,
			    "STOP,SAIR,PARAR,CANCELAR,UNSUBSCRIBE");
	for (i = 0; i < CONFIG_SETTING_COUNT; i++)
		assert_int_equal(cfg.sources[i], CONFIG_SRC_DEFAULT);
	assert_printed_line(&cfg, "PORT=8000  # default");
	assert_printed_line(&cfg, "REDIS_URL=  # default");
	config_release(&cfg);
	assert_null(cfg.bind_address);
}

struct override_case {
	const char *name, *value, *printed;
};

static const struct override_case overrides[] = {
	{ "BIND_ADDRESS", "0.0.0.0", "BIND_ADDRESS=0.0.0.0  # env" },
	{ "PORT", "9000", "PORT=9000  # env" },
	{ "HTTP_THREADS", "8", "HTTP_THREADS=8  # env" },
	{ "MAX_BODY_BYTES", "2m", "MAX_BODY_BYTES=2097152  # env" },
	{ "MAX_BODY_BYTES", "1K", "MAX_BODY_BYTES=1024  # env" },
	{ "MAX_HEADER_BYTES", "32768", "MAX_HEADER_BYTES=32768  # env" },
	{ "DATABASE_URL", "postgresql://u@localhost/pytake",
	  "DATABASE_URL=postgresql://u@localhost/pytake  # env" },
	{ "DATABASE_URL", "postgres://localhost/x",
	  "DATABASE_URL=postgres://localhost/x  # env" },
	{ "REDIS_URL", "redis://localhost:6379/0",
	  "REDIS_URL=redis://localhost:6379/0  # env" },
	{ "RATE_LIMIT_ENABLED", "Off", "RATE_LIMIT_ENABLED=false  # env" },
	{ "LOG_LEVEL", "DEBUG", "LOG_LEVEL=debug  # env" },
	{ "LOG_FORMAT", "text", "LOG_FORMAT=text  # env" },
	{ "ENVIRONMENT", "production", "ENVIRONMENT=production  # env" },
	{ "GRAPH_API_BASE_URL", "http://127.0.0.1:9999/v24.0",
	  "GRAPH_API_BASE_URL=http://127.0.0.1:9999/v24.0  # env" },
	{ "CAMPAIGN_MAX_ATTEMPTS", "3", "CAMPAIGN_MAX_ATTEMPTS=3  # env" },
	{ "OPT_OUT_KEYWORDS", "STOP,BAIXA", "OPT_OUT_KEYWORDS=STOP,BAIXA  # env" },
	{ "ENCRYPTION_KEY", KEY_STD, "ENCRYPTION_KEY=****(32 bytes)  # env" },
	{ "PORT", "", "PORT=8000  # default" }, /* empty = unset */
};

static void test_env_overrides(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
		struct config cfg;
		clear_env();
		assert_int_equal(setenv(overrides[i].name, overrides[i].value, 1),
				 0);
		load_ok(&cfg, NULL);
		assert_printed_line(&cfg, overrides[i].printed);
		config_release(&cfg);
	}
}

static void test_env_overrides_fields(void **state)
{
	struct config cfg;

	(void)state;
	setenv("PORT", "9000", 1);
	setenv("LOG_LEVEL", "warn", 1);
	setenv("ENVIRONMENT", "Production", 1);
	setenv("MAX_BODY_BYTES", "1g", 1);
	load_ok(&cfg, NULL);
	assert_int_equal(cfg.port, 9000);
	assert_int_equal(cfg.log_level, LOG_WARN);
	assert_int_equal(cfg.environment, ENV_PRODUCTION);
	assert_int_equal(cfg.max_body_bytes, 1024u * 1024u * 1024u);
	config_release(&cfg);
}

struct bool_case {
	const char *text;
	bool want;
};

static void test_booleans(void **state)
{
	static const struct bool_case cases[] = {
		{ "true", true },  { "TRUE", true },  { "1", true },
		{ "yes", true },   { "Yes", true },   { "on", true },
		{ "ON", true },    { "false", false }, { "False", false },
		{ "0", false },    { "no", false },   { "NO", false },
		{ "off", false },  { "oFF", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config cfg;
		setenv("RATE_LIMIT_ENABLED", cases[i].text, 1);
		load_ok(&cfg, NULL);
		if (cfg.rate_limit_enabled != cases[i].want)
			fail_msg("RATE_LIMIT_ENABLED=%s", cases[i].text);
		config_release(&cfg);
	}
}

static void test_encryption_key_variants(void **state)
{
	static const char *const texts[] = { KEY_STD, KEY_URL };
	size_t i, j;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct config cfg;
		setenv("ENCRYPTION_KEY", texts[i], 1);
		load_ok(&cfg, NULL);
		assert_true(cfg.encryption_key_set);
		for (j = 0; j < 32; j++)
			assert_int_equal(cfg.encryption_key[j], j);
		config_release(&cfg);
	}
}

/* ---- bounds and bad values ------------------------------------------- */

struct bound_case {
	const char *name, *value;
	long long want; /* via config_print's value */
};

static void test_bounds_accepted(void **state)
{
	static const struct bound_case cases[] = {
		{ "PORT", "1", 1 },
		{ "PORT", "65535", 65535 },
		{ "HTTP_THREADS", "0", 0 },
		{ "HTTP_THREADS", "256", 256 },
		{ "REQUEST_TIMEOUT", "3600", 3600 },
		{ "SLOW_REQUEST_MS", "1", 1 },
		{ "CAMPAIGN_MAX_ATTEMPTS", "1", 1 },
		{ "CAMPAIGN_MAX_ATTEMPTS", "20", 20 },
		{ "MAX_BODY_BYTES", "1024", 1024 },
		{ "MAX_BODY_BYTES", "1073741824", 1073741824LL },
		{ "MAX_HEADER_BYTES", "1m", 1048576 },
		{ "DB_POOL_SIZE", "0", 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config cfg;
		char line[128];
		clear_env();
		setenv(cases[i].name, cases[i].value, 1);
		load_ok(&cfg, NULL);
		snprintf(line, sizeof line, "%s=%lld  # env", cases[i].name,
			 cases[i].want);
		assert_printed_line(&cfg, line);
		config_release(&cfg);
	}
}

struct bad_case {
	const char *name, *value, *err;
};

static const struct bad_case bad_values[] = {
	{ "PORT", "abc", "PORT: expected an integer from 1 to 65535, got \"abc\"" },
	{ "PORT", "0", "PORT: expected an integer from 1 to 65535, got \"0\"" },
	{ "PORT", "65536",
	  "PORT: expected an integer from 1 to 65535, got \"65536\"" },
	{ "PORT", "-1", "PORT: expected an integer from 1 to 65535, got \"-1\"" },
	{ "PORT", " 80", "PORT: expected an integer from 1 to 65535, got \" 80\"" },
	{ "PORT", "80 ", "PORT: expected an integer from 1 to 65535, got \"80 \"" },
	{ "PORT", "+80", "PORT: expected an integer from 1 to 65535, got \"+80\"" },
	{ "PORT", "8e3", "PORT: expected an integer from 1 to 65535, got \"8e3\"" },
	{ "PORT", "0x50",
	  "PORT: expected an integer from 1 to 65535, got \"0x50\"" },
	{ "PORT", "99999999999999999999999",
	  "PORT: expected an integer from 1 to 65535, got "
	  "\"99999999999999999999999\"" },
	{ "HTTP_THREADS", "257",
	  "HTTP_THREADS: expected an integer from 0 to 256, got \"257\"" },
	{ "CAMPAIGN_MAX_ATTEMPTS", "21",
	  "CAMPAIGN_MAX_ATTEMPTS: expected an integer from 1 to 20, got \"21\"" },
	{ "REQUEST_TIMEOUT", "0",
	  "REQUEST_TIMEOUT: expected an integer from 1 to 3600, got \"0\"" },
	{ "MAX_BODY_BYTES", "1023",
	  "MAX_BODY_BYTES: expected a size in bytes from 1024 to 1073741824 "
	  "(suffix k, m or g allowed), got \"1023\"" },
	{ "MAX_BODY_BYTES", "2g",
	  "MAX_BODY_BYTES: expected a size in bytes from 1024 to 1073741824 "
	  "(suffix k, m or g allowed), got \"2g\"" },
	{ "MAX_BODY_BYTES", "4mb",
	  "MAX_BODY_BYTES: expected a size in bytes from 1024 to 1073741824 "
	  "(suffix k, m or g allowed), got \"4mb\"" },
	{ "MAX_HEADER_BYTES", "99999999999999g",
	  "MAX_HEADER_BYTES: expected a size in bytes from 1024 to 1048576 "
	  "(suffix k, m or g allowed), got \"99999999999999g\"" },
	{ "RATE_LIMIT_ENABLED", "maybe",
	  "RATE_LIMIT_ENABLED: expected true/false, 1/0, yes/no or on/off, "
	  "got \"maybe\"" },
	{ "LOG_LEVEL", "verbose",
	  "LOG_LEVEL: expected one of debug, info, warn or error, got "
	  "\"verbose\"" },
	{ "LOG_FORMAT", "xml",
	  "LOG_FORMAT: expected one of json or text, got \"xml\"" },
	{ "ENVIRONMENT", "staging",
	  "ENVIRONMENT: expected one of development or production, got "
	  "\"staging\"" },
	{ "DATABASE_URL", "mysql://app:hunter2@db/x",
	  "DATABASE_URL: expected a URL starting with sqlite:, postgresql:// "
	  "or postgres://, got \"mysql://app:****@db/x\"" },
	{ "DATABASE_URL", "sqlite:",
	  "DATABASE_URL: expected a URL starting with sqlite:, postgresql:// "
	  "or postgres://, got \"sqlite:\"" },
	{ "REDIS_URL", "http://:hunter2@localhost",
	  "REDIS_URL: expected a URL starting with redis:// or rediss://, got "
	  "\"http://:****@localhost\"" },
	{ "GRAPH_API_BASE_URL", "ftp://graph.facebook.com",
	  "GRAPH_API_BASE_URL: expected a URL starting with http:// or "
	  "https://, got \"ftp://graph.facebook.com\"" },
	{ "GRAPH_API_BASE_URL", "https://bad host",
	  "GRAPH_API_BASE_URL: expected a URL starting with http:// or "
	  "https://, got \"https://bad host\"" },
	{ "ENCRYPTION_KEY", "c2hvcnRrZXk=",
	  "ENCRYPTION_KEY: expected base64 that decodes to exactly 32 bytes "
	  "(value not shown, 12 characters)" },
	{ "ENCRYPTION_KEY", "not base64 at all!!",
	  "ENCRYPTION_KEY: expected base64 that decodes to exactly 32 bytes "
	  "(value not shown, 19 characters)" },
	{ "ENCRYPTION_KEY", KEY_STD "AAAA",
	  "ENCRYPTION_KEY: expected base64 that decodes to exactly 32 bytes "
	  "(value not shown, 48 characters)" },
};

static void test_bad_values(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
		struct config cfg;
		char err[512] = "";
		clear_env();
		setenv(bad_values[i].name, bad_values[i].value, 1);
		assert_int_equal(config_load(&cfg, NULL, err, sizeof err), -1);
		assert_string_equal(err, bad_values[i].err);
		assert_null(strstr(err, "hunter2"));
		/* a failed load leaves nothing to free */
		assert_null(cfg.bind_address);
		assert_null(cfg.database_url);
	}
}

static void test_long_bad_value_is_cut(void **state)
{
	struct config cfg;
	char err[512] = "", value[300];

	(void)state;
	memset(value, 'x', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	setenv("LOG_LEVEL", value, 1);
	assert_int_equal(config_load(&cfg, NULL, err, sizeof err), -1);
	assert_non_null(strstr(err, "...\""));
	assert_true(strlen(err) < 200);
}

/* ---- .env ------------------------------------------------------------ */

static void test_dotenv_parsing(void **state)
{
	struct config cfg;
	char path[PATH_MAX];

	(void)state;
	write_dotenv(path, sizeof path,
		     "# a comment\n"
		     "\n"
		     "   \n"
		     "PORT=7000\n"
		     "export LOG_LEVEL=debug\n"
		     "  LOG_FORMAT = text   # trailing comment\n"
		     "OPT_OUT_KEYWORDS='STOP,#lit\\n \"x\"'\n"
		     "BIND_ADDRESS=\"0.0.0.0\" # comment\n"
		     "META_APP_SECRET=\"a\\\"b\\\\c\\nd\"\n"
		     "WEBHOOK_VERIFY_TOKEN=tok#en\r\n"
		     "SOMETHING_ELSE=ignored value\n"
		     "CAMPAIGN_MAX_ATTEMPTS=2\n"
		     "CAMPAIGN_MAX_ATTEMPTS=4\n"
		     "REDIS_URL=\n"
		     "DATA_DIR=#notacomment");
	load_ok(&cfg, path);
	assert_int_equal(cfg.port, 7000);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_int_equal(cfg.log_format, LOG_FORMAT_TEXT);
	assert_string_equal(cfg.opt_out_keywords, "STOP,#lit\\n \"x\"");
	assert_string_equal(cfg.bind_address, "0.0.0.0");
	assert_string_equal(cfg.meta_app_secret, "a\"b\\c\nd");
	assert_string_equal(cfg.webhook_verify_token, "tok#en");
	assert_int_equal(cfg.campaign_max_attempts, 4); /* last wins */
	assert_null(cfg.redis_url);                     /* empty = unset */
	assert_string_equal(cfg.data_dir, "#notacomment");
	assert_printed_line(&cfg, "PORT=7000  # .env");
	assert_printed_line(&cfg, "REDIS_URL=  # default");
	assert_printed_line(&cfg, "REQUEST_TIMEOUT=30  # default");
	config_release(&cfg);
}

static void test_dotenv_missing_is_fine(void **state)
{
	struct config cfg;
	char path[PATH_MAX];

	(void)state;
	tmp_path(path, sizeof path, "no-such.env");
	load_ok(&cfg, path);
	assert_int_equal(cfg.port, 8000);
	config_release(&cfg);
}

struct malformed_case {
	const char *text;
	int line;
	const char *msg;
};

static void test_dotenv_malformed(void **state)
{
	static const struct malformed_case cases[] = {
		{ "PORT=1\n# c\nPORT 8000\n", 3, "expected KEY=VALUE" },
		{ "=x\n", 1, "expected KEY=VALUE" },
		{ "\n\n1PORT=3\n", 3, "expected KEY=VALUE" },
		{ "export\n", 1, "expected KEY=VALUE" },
		{ "A=1\nB='open\n", 2, "unterminated single quote" },
		{ "B=\"open\n", 1, "unterminated double quote" },
		{ "B=\"a\\qb\"\n", 1,
		  "unknown escape in double quotes (use \\n, \\\" or \\\\)" },
		{ "A=1\n\nB='x' y\n", 3,
		  "unexpected text after the closing quote" },
		{ "UNKNOWN_KEY=\"bad\n", 1, "unterminated double quote" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config cfg;
		char path[PATH_MAX], err[512] = "", want[PATH_MAX + 128];
		write_dotenv(path, sizeof path, cases[i].text);
		assert_int_equal(config_load(&cfg, path, err, sizeof err), -1);
		snprintf(want, sizeof want, "%s:%d: %s", path, cases[i].line,
			 cases[i].msg);
		assert_string_equal(err, want);
	}
}

static void test_dotenv_bad_value_names_variable(void **state)
{
	struct config cfg;
	char path[PATH_MAX], err[512] = "";

	(void)state;
	write_dotenv(path, sizeof path, "PORT=http\n");
	assert_int_equal(config_load(&cfg, path, err, sizeof err), -1);
	assert_string_equal(err,
			    "PORT: expected an integer from 1 to 65535, got "
			    "\"http\"");
}

static void test_env_beats_dotenv(void **state)
{
	struct config cfg;
	char path[PATH_MAX];

	(void)state;
	write_dotenv(path, sizeof path,
		     "PORT=7000\nLOG_LEVEL=debug\nLOG_FORMAT=bogus\n");
	setenv("PORT", "9000", 1);
	setenv("LOG_FORMAT", "text", 1); /* env wins, bad .env value unused */
	setenv("LOG_LEVEL", "", 1);      /* empty env = unset: .env applies */
	load_ok(&cfg, path);
	assert_int_equal(cfg.port, 9000);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_int_equal(cfg.log_format, LOG_FORMAT_TEXT);
	assert_printed_line(&cfg, "PORT=9000  # env");
	assert_printed_line(&cfg, "LOG_LEVEL=debug  # .env");
	assert_printed_line(&cfg, "LOG_FORMAT=text  # env");
	config_release(&cfg);
}

/* ---- secrets ---------------------------------------------------------- */

struct prod_case {
	const char *jwt, *key, *err; /* err NULL = accepted */
};

static void test_production_requires_keys(void **state)
{
	static const struct prod_case cases[] = {
		{ NULL, NULL,
		  "JWT_SECRET_KEY is required when ENVIRONMENT=production" },
		{ NULL, KEY_STD,
		  "JWT_SECRET_KEY is required when ENVIRONMENT=production" },
		{ JWT_OK, NULL,
		  "ENCRYPTION_KEY is required when ENVIRONMENT=production" },
		{ "short-secret", KEY_STD,
		  "JWT_SECRET_KEY: must be at least 32 bytes when "
		  "ENVIRONMENT=production (value not shown, 12 characters)" },
		{ JWT_OK, KEY_STD, NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config cfg;
		char err[512] = "", dir[PATH_MAX];
		clear_env();
		tmp_path(dir, sizeof dir, "prod-data");
		setenv("ENVIRONMENT", "production", 1);
		setenv("DATA_DIR", dir, 1);
		if (cases[i].jwt)
			setenv("JWT_SECRET_KEY", cases[i].jwt, 1);
		if (cases[i].key)
			setenv("ENCRYPTION_KEY", cases[i].key, 1);
		load_ok(&cfg, NULL);
		if (cases[i].err == NULL) {
			assert_int_equal(config_ensure_secrets(&cfg, err,
							       sizeof err), 0);
		} else {
			assert_int_equal(config_ensure_secrets(&cfg, err,
							       sizeof err), -1);
			assert_string_equal(err, cases[i].err);
		}
		/* production never generates anything */
		assert_int_equal(access(dir, F_OK), -1);
		config_release(&cfg);
	}
}

static void assert_mode(const char *path, mode_t want)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, want);
}

static void load_dev_secrets(struct config *cfg)
{
	char err[512] = "";

	load_ok(cfg, NULL);
	if (config_ensure_secrets(cfg, err, sizeof err) != 0)
		fail_msg("config_ensure_secrets: %s", err);
}

static void test_development_generates_once(void **state)
{
	struct config a, b;
	char dir[PATH_MAX], jwt_path[PATH_MAX + 32], key_path[PATH_MAX + 32];
	char file_jwt[256];
	FILE *f;

	(void)state;
	tmp_path(dir, sizeof dir, "nested/data");
	snprintf(jwt_path, sizeof jwt_path, "%s/jwt_secret.key", dir);
	snprintf(key_path, sizeof key_path, "%s/encryption.key", dir);
	setenv("DATA_DIR", dir, 1);

	load_dev_secrets(&a);
	assert_non_null(a.jwt_secret_key);
	assert_int_equal(strlen(a.jwt_secret_key), 43); /* base64url(32) */
	assert_true(a.encryption_key_set);
	assert_mode(dir, 0700);
	assert_mode(jwt_path, 0600);
	assert_mode(key_path, 0600);
	assert_printed_line(&a, "JWT_SECRET_KEY=****(43 chars)  # generated");
	assert_printed_line(&a, "ENCRYPTION_KEY=****(32 bytes)  # generated");

	/* the file holds what we got */
	f = fopen(jwt_path, "r");
	assert_non_null(f);
	assert_non_null(fgets(file_jwt, sizeof file_jwt, f));
	fclose(f);
	file_jwt[strcspn(file_jwt, "\n")] = '\0';
	assert_string_equal(file_jwt, a.jwt_secret_key);

	/* a second start reads the same values */
	load_dev_secrets(&b);
	assert_string_equal(a.jwt_secret_key, b.jwt_secret_key);
	assert_memory_equal(a.encryption_key, b.encryption_key, 32);
	config_release(&a);
	config_release(&b);
}

static void test_development_uses_given_and_stored_keys(void **state)
{
	struct config cfg;
	char dir[PATH_MAX], path[PATH_MAX + 32];
	size_t j;

	(void)state;
	tmp_path(dir, sizeof dir, "data");
	setenv("DATA_DIR", dir, 1);
	/* both given: nothing is created */
	setenv("JWT_SECRET_KEY", JWT_OK, 1);
	setenv("ENCRYPTION_KEY", KEY_STD, 1);
	load_dev_secrets(&cfg);
	assert_string_equal(cfg.jwt_secret_key, JWT_OK);
	assert_int_equal(access(dir, F_OK), -1);
	config_release(&cfg);

	/* a stored encryption key is read, not replaced */
	unsetenv("ENCRYPTION_KEY");
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof path, "%s/encryption.key", dir);
	write_text(path, "  " KEY_STD "\n");
	load_dev_secrets(&cfg);
	for (j = 0; j < 32; j++)
		assert_int_equal(cfg.encryption_key[j], j);
	snprintf(path, sizeof path, "%s/jwt_secret.key", dir);
	assert_int_equal(access(path, F_OK), -1); /* JWT came from env */
	config_release(&cfg);

	/* a corrupt stored key is an error naming the file */
	snprintf(path, sizeof path, "%s/encryption.key", dir);
	write_text(path, "garbage\n");
	{
		char err[512] = "", want[PATH_MAX + 128];
		load_ok(&cfg, NULL);
		assert_int_equal(config_ensure_secrets(&cfg, err, sizeof err),
				 -1);
		snprintf(want, sizeof want,
			 "%s/encryption.key: expected base64 that decodes to "
			 "exactly 32 bytes",
			 dir);
		assert_string_equal(err, want);
		config_release(&cfg);
	}
}

static void test_development_race_one_value(void **state)
{
	enum { N = 6 };
	int fds[N][2];
	pid_t pids[N];
	char got[N][128];
	char dir[PATH_MAX];
	int i, status;

	(void)state;
	tmp_path(dir, sizeof dir, "race");
	setenv("DATA_DIR", dir, 1);
	for (i = 0; i < N; i++) {
		assert_int_equal(pipe(fds[i]), 0);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct config cfg;
			char err[256];
			close(fds[i][0]);
			if (config_load(&cfg, NULL, err, sizeof err) != 0 ||
			    config_ensure_secrets(&cfg, err, sizeof err) != 0)
				_exit(1);
			if (write(fds[i][1], cfg.jwt_secret_key,
				  strlen(cfg.jwt_secret_key)) < 0)
				_exit(2);
			_exit(0);
		}
		close(fds[i][1]);
	}
	for (i = 0; i < N; i++) {
		ssize_t n = read(fds[i][0], got[i], sizeof got[i] - 1);
		assert_true(n > 0);
		got[i][n] = '\0';
		close(fds[i][0]);
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	for (i = 1; i < N; i++)
		assert_string_equal(got[0], got[i]);
}

/* ---- masking, docs ---------------------------------------------------- */

static void test_print_masks_secrets(void **state)
{
	static const char *const secrets[] = {
		"jwt-secret-value-0123456789abcdef",
		KEY_STD,
		KEY_URL,
		"AAECAwQF", /* any fragment of the key */
		"meta-app-secret-xyz",
		"verify-token-abc",
		"dbpassw0rd",
		"redispass",
		"qpass",
	};
	struct config cfg;
	char *text;
	size_t i;

	(void)state;
	setenv("JWT_SECRET_KEY", secrets[0], 1);
	setenv("ENCRYPTION_KEY", KEY_STD, 1);
	setenv("META_APP_SECRET", secrets[4], 1);
	setenv("WEBHOOK_VERIFY_TOKEN", secrets[5], 1);
	setenv("DATABASE_URL",
	       "postgresql://user:dbpassw0rd@host:5432/db?sslmode=require&"
	       "password=qpass",
	       1);
	setenv("REDIS_URL", "redis://:redispass@localhost:6379/0", 1);
	load_ok(&cfg, NULL);
	text = print_config(&cfg);
	for (i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
		if (strstr(text, secrets[i]) != NULL)
			fail_msg("secret \"%s\" printed:\n%s", secrets[i], text);
	free(text);
	assert_printed_line(&cfg, "JWT_SECRET_KEY=****(33 chars)  # env");
	assert_printed_line(&cfg, "META_APP_SECRET=****(19 chars)  # env");
	assert_printed_line(&cfg, "WEBHOOK_VERIFY_TOKEN=****(16 chars)  # env");
	assert_printed_line(&cfg, "DATABASE_URL=postgresql://user:****@host:5432"
				  "/db?sslmode=require&password=****  # env");
	assert_printed_line(&cfg,
			    "REDIS_URL=redis://:****@localhost:6379/0  # env");
	/* struct keeps the real values */
	assert_string_equal(cfg.meta_app_secret, secrets[4]);
	config_release(&cfg);
}

static void test_print_every_setting(void **state)
{
	struct config cfg;
	char *text;
	size_t i, lines = 0;

	(void)state;
	load_ok(&cfg, NULL);
	text = print_config(&cfg);
	for (i = 0; text[i] != '\0'; i++)
		lines += text[i] == '\n';
	assert_int_equal(lines, CONFIG_SETTING_COUNT);
	for (i = 0; i < N_NAMES; i++) {
		char want[128];
		snprintf(want, sizeof want, "%s=", all_names[i]);
		assert_non_null(strstr(text, want));
	}
	free(text);
	config_release(&cfg);
}

static void test_docs(void **state)
{
	char *buf = NULL;
	size_t len = 0, i, rows = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	config_print_docs(f);
	assert_int_equal(fclose(f), 0);
	assert_true(strncmp(buf, "| Name | Default | Accepts | Meaning |\n",
			    39) == 0);
	for (i = 0; buf[i] != '\0'; i++)
		rows += buf[i] == '\n';
	assert_int_equal(rows, CONFIG_SETTING_COUNT + 2);
	assert_non_null(strstr(buf, "| `PORT` | `8000` | an integer from 1 to "
				    "65535 | HTTP port. |\n"));
	assert_non_null(strstr(buf, "| `JWT_SECRET_KEY` | (unset) | secret "
				    "text |"));
	assert_non_null(strstr(buf, "| `LOG_LEVEL` | `info` | one of debug, "
				    "info, warn or error |"));
	for (i = 0; i < N_NAMES; i++) {
		char want[128];
		snprintf(want, sizeof want, "| `%s` |", all_names[i]);
		assert_non_null(strstr(buf, want));
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_defaults),
		T(test_env_overrides),
		T(test_env_overrides_fields),
		T(test_booleans),
		T(test_encryption_key_variants),
		T(test_bounds_accepted),
		T(test_bad_values),
		T(test_long_bad_value_is_cut),
		T(test_dotenv_parsing),
		T(test_dotenv_missing_is_fine),
		T(test_dotenv_malformed),
		T(test_dotenv_bad_value_names_variable),
		T(test_env_beats_dotenv),
		T(test_production_requires_keys),
		T(test_development_generates_once),
		T(test_development_uses_given_and_stored_keys),
		T(test_development_race_one_value),
		T(test_print_masks_secrets),
		T(test_print_every_setting),
		T(test_docs),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
