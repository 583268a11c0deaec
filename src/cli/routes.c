/* `pytake routes`: print the server's route table, one route a line:
 *   METHOD<TAB>PATTERN<TAB>MIN_ROLE<TAB>FLAGS
 * MIN_ROLE is none|viewer|agent|org_admin|super_admin; FLAGS is a comma list
 * of no_rate_limit, raw_body, or "-". Used by tests/integration/test_docs.py
 * to hold docs/openapi.json and the router to each other, and by operators
 * to see what a binary serves. Needs no configuration or database. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"

static void print_flags(unsigned flags)
{
	const char *sep = "";
	if (flags == 0) {
		fputs("-", stdout);
		return;
	}
	if (flags & ROUTE_NO_RATE_LIMIT) {
		fputs("no_rate_limit", stdout);
		sep = ",";
	}
	if (flags & ROUTE_RAW_BODY)
		printf("%sraw_body", sep);
}

int cmd_routes(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--help") != 0) {
		cli_fail("routes takes no arguments");
		return 2;
	}
	if (argc > 1) {
		printf("usage: pytake routes\n"
		       "prints METHOD, PATTERN, MIN_ROLE, FLAGS of every route, tab-separated\n");
		return 0;
	}
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct route *r = &api_routes[i];
		printf("%s\t%s\t%s\t", r->method, r->pattern, role_name(r->min_role));
		print_flags(r->flags);
		putchar('\n');
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_fail("cannot write the route table");
		return 1;
	}
	return 0;
}
