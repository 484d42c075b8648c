/* coffer: one executable, many commands. This file only dispatches: each
 * command lives in its own module with one entry function. */
#include "cli-archive.h"

#include <stdio.h>
#include <string.h>

#include "access-main.h"
#include "cli-api.h"
#include "cli-config.h"
#include "host-main.h"
#include "instance-main.h"
#include "mgmt-main.h"

struct cli_command {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv); /* argv[0] is the command name */
};

static int cli_version_main(int argc, char **argv)
{
	printf("coffer %s\n", COFFER_VERSION);
	return 0;
}

static const struct cli_command cli_commands[] = {
	{"config", "the configuration tool (roles, services, pairing, certificates)",
	 cli_config_main},
	{"api", "call a Management API function", cli_api_main},
	{"management-server", "run the Management Server daemon", mgmt_main},
	{"instance-host", "run the Instance Host daemon", host_main},
	{"client-access-server", "run the Client Access Server daemon", access_main},
	{"instance", "run one instance (started by its Instance Host)", instance_main},
	{"version", "print the version", cli_version_main},
	{"archive", "local archive operations on an instance base directory", cli_archive_main},
};

static void cli_usage(FILE *out)
{
	fprintf(out, "usage: coffer COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++)
		fprintf(out, "  %-22s %s\n", cli_commands[i].name, cli_commands[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		cli_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		cli_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cli_version_main(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++) {
		if (strcmp(argv[1], cli_commands[i].name) == 0)
			return cli_commands[i].main(argc - 1, argv + 1);
	}
	fprintf(stderr, "coffer: unknown command '%s'\n\n", argv[1]);
	cli_usage(stderr);
	return 2;
}
