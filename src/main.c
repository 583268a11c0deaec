/* pytake: argv -> subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("pytake %s\n", PYTAKE_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv);

static const struct command commands[] = {
	{ "serve", cmd_serve, "run the HTTP server" },
	{ "migrate", cmd_migrate, "current | upgrade [head|N] | history | check" },
	{ "org", cmd_org, "create --name NAME --slug SLUG" },
	{ "user", cmd_user,
	  "create --email E --password P --org SLUG --role R [--full-name F]" },
	{ "bootstrap", cmd_bootstrap,
	  "on an empty database: create org 'demo' and its admin, print the login" },
	{ "config", cmd_config, "print the effective configuration (secrets masked)" },
	{ "backup", cmd_backup, "FILE [--force]: copy the database to FILE" },
	{ "restore", cmd_restore,
	  "FILE [--force]: replace the database with FILE (--force: even if not empty)" },
	{ "webhooks", cmd_webhooks,
	  "tail [--org SLUG] [--unrouted] [--from-start]: follow webhook events as JSON lines" },
	{ "pricing", cmd_pricing,
	  "import FILE: load a rate card (CSV or JSON) | seed: the example card" },
	{ "routes", cmd_routes, "print the HTTP route table (method, path, least role, flags)" },
	{ "version", cmd_version, "print the version" },
	{ "help", cmd_help, "this text" },
};

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("usage: pytake <command> [arguments]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].help);
	printf("\nConfiguration comes from the environment and ./.env; "
	       "see `pytake config`.\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		cmd_help(0, NULL);
		return 2;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--version"))
		name = "version";
	if (!strcmp(name, "--help") || !strcmp(name, "-h"))
		name = "help";
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(commands[i].name, name))
			return commands[i].run(argc - 1, argv + 1);
	cli_fail("unknown command \"%s\" (try `pytake help`)", argv[1]);
	return 2;
}
