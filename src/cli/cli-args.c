#include "cli-args.h"
#include "mem.h"
#include "tstr.h"

#include <string.h>

static bool cli_args_is_flag(const char *const *flags, const char *name, size_t len)
{
	for (; flags != NULL && *flags != NULL; flags++) {
		if (strlen(*flags) == len && strncmp(*flags, name, len) == 0)
			return true;
	}
	return false;
}

int cli_args_parse(int argc, char **argv, const char *const *flags, const char *const *options,
		   struct cli_args *args_r, const char **error_r)
{
	memset(args_r, 0, sizeof(*args_r));
	args_r->options = mem_calloc((size_t)argc + 1, sizeof(struct cli_option));
	args_r->positional = mem_calloc((size_t)argc + 1, sizeof(char *));
	bool only_positional = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (only_positional || strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			if (strcmp(a, "--") == 0 && !only_positional) {
				only_positional = true;
				continue;
			}
			args_r->positional[args_r->positional_count++] = a;
			continue;
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		struct cli_option *opt = &args_r->options[args_r->option_count];
		bool flag = cli_args_is_flag(flags, name, len);
		if (!flag && options != NULL && !cli_args_is_flag(options, name, len)) {
			*error_r = tstr_printf("unknown option --%.*s", (int)len, name);
			cli_args_free(args_r);
			return -1;
		}
		if (flag) {
			if (eq != NULL) {
				*error_r =
					tstr_printf("option --%.*s takes no value", (int)len, name);
				cli_args_free(args_r);
				return -1;
			}
			opt->name = mem_strndup(name, len);
		} else if (eq != NULL) {
			opt->name = mem_strndup(name, len);
			opt->value = eq + 1;
		} else if (i + 1 < argc) {
			opt->name = mem_strndup(name, len);
			opt->value = argv[++i];
		} else {
			*error_r = tstr_printf("option --%s needs a value", name);
			cli_args_free(args_r);
			return -1;
		}
		args_r->option_count++;
	}
	return 0;
}

void cli_args_free(struct cli_args *args)
{
	for (size_t i = 0; i < args->option_count; i++)
		mem_free((char *)args->options[i].name);
	mem_free(args->options);
	mem_free(args->positional);
	memset(args, 0, sizeof(*args));
}

const char *cli_args_get(struct cli_args *args, const char *name)
{
	const char *value = NULL;
	for (size_t i = 0; i < args->option_count; i++) {
		if (args->options[i].value != NULL && strcmp(args->options[i].name, name) == 0) {
			args->options[i].used = true;
			value = args->options[i].value; /* the last one wins */
		}
	}
	return value;
}

bool cli_args_flag(struct cli_args *args, const char *name)
{
	bool found = false;
	for (size_t i = 0; i < args->option_count; i++) {
		if (args->options[i].value == NULL && strcmp(args->options[i].name, name) == 0) {
			args->options[i].used = true;
			found = true;
		}
	}
	return found;
}

int cli_args_check_unused(struct cli_args *args, const char **error_r)
{
	for (size_t i = 0; i < args->option_count; i++) {
		if (!args->options[i].used) {
			*error_r = tstr_printf("unknown option --%s", args->options[i].name);
			return -1;
		}
	}
	return 0;
}
