#include "cli/cli.h"

#include <stdarg.h>

void cli_fail(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	fprintf(stderr, "pytake: %s\n", line);
}

int cli_load_config(struct config *cfg, bool secrets)
{
	char err[512];
	if (config_load(cfg, ".env", err, sizeof err) != 0) {
		cli_fail("%s", err);
		return -1;
	}
	log_setup(cfg->log_level, cfg->log_format);
	if (secrets && config_ensure_secrets(cfg, err, sizeof err) != 0) {
		cli_fail("%s", err);
		config_release(cfg);
		return -1;
	}
	return 0;
}

int cli_open_app(struct config *cfg, struct app *app, bool secrets)
{
	if (cli_load_config(cfg, secrets) != 0)
		return -1;
	char err[512];
	if (app_open(app, cfg, err, sizeof err) != 0) {
		cli_fail("cannot open database: %s", err);
		config_release(cfg);
		return -1;
	}
	return 0;
}

int cmd_config(int argc, char **argv)
{
	struct config cfg;
	if (argc > 1 && !strcmp(argv[1], "--docs")) {
		config_print_docs(stdout);
		return 0;
	}
	if (cli_load_config(&cfg, false) != 0)
		return 1;
	config_print(&cfg, stdout);
	config_release(&cfg);
	return 0;
}
