#ifndef COFFER_CLI_ARGS_H
#define COFFER_CLI_ARGS_H
/* cli-args: command-line options of the form --name VALUE, --name=VALUE and
 * value-less flags, plus positional arguments.
 *
 * Contract: cli_args_parse() knows which names are flags (no value) and which
 * take a value (options; NULL: every name that is not a flag takes one). A
 * name in neither list is refused at once ("unknown option --x"), so that it
 * never swallows the next argument as its value. Options may appear anywhere. "--" ends options.
 * Getters mark an option as used; cli_args_check_unused() then reports the
 * first option no getter asked for ("unknown option --x"), so a typo never
 * passes silently. */
#include <stdbool.h>
#include <stddef.h>

struct cli_option {
	const char *name;  /* without "--" */
	const char *value; /* NULL for flags */
	bool used;
};

struct cli_args {
	struct cli_option *options;
	size_t option_count;
	const char **positional;
	size_t positional_count;
};

int cli_args_parse(int argc, char **argv, const char *const *flags, const char *const *options,
		   struct cli_args *args_r, const char **error_r);
void cli_args_free(struct cli_args *args);
const char *cli_args_get(struct cli_args *args, const char *name);
bool cli_args_flag(struct cli_args *args, const char *name);
int cli_args_check_unused(struct cli_args *args, const char **error_r);

#endif
