/* Fuzz target: the IMAP command parser. The input is fed twice, whole and in
 * pieces whose sizes come from the input itself; both ways must give the same
 * results. After AUTHENTICATE and IDLE a raw line is read, as the server does. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "imap-parser.h"
#include "mem.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void dump_args(struct str *out, const struct imap_arg *args, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		str_printfa(out, " %d:", (int)a->type);
		if (a->type == IMAP_ARG_LIST) {
			str_append_c(out, '(');
			dump_args(out, a->list, a->list_count);
			str_append_c(out, ')');
		} else {
			if (a->str[a->len] != '\0')
				__builtin_trap();
			str_printfa(out, "%zu:", a->len);
			str_append_n(out, a->str, a->len);
		}
	}
}

static char *run(const uint8_t *data, size_t size, size_t chunk)
{
	struct imap_parser_settings set = {.max_line = 200,
					   .max_literal = 100,
					   .max_literals_total = 300,
					   .max_depth = 5,
					   .max_args = 50};
	struct imap_parser *p = imap_parser_create(&set);
	struct str *out = str_create(256);
	size_t off = 0;
	bool want_line = false;
	for (;;) {
		size_t avail = size - off < chunk ? size - off : chunk;
		size_t n = imap_parser_feed(p, data + off, avail);
		if (n > avail)
			__builtin_trap();
		off += n;
		int ret;
		if (want_line) {
			const char *line, *error;
			size_t len;
			ret = imap_parser_next_line(p, &line, &len, &error);
			if (ret > 0) {
				str_append(out, "L:");
				str_append_n(out, line, len);
				str_append_c(out, '\n');
			} else if (ret < 0) {
				str_printfa(out, "LE:%s\n", error);
			}
			if (ret != 0)
				want_line = false;
			else if (off == size)
				break;
			continue;
		}
		const struct imap_command *cmd;
		const char *tag, *error;
		bool cont;
		ret = imap_parser_next(p, &cmd, &cont, &tag, &error);
		if (ret > 0) {
			str_printfa(out, "C:%s %s %s", cmd->tag, cmd->name, cmd->args_raw);
			dump_args(out, cmd->args, cmd->arg_count);
			str_append_c(out, '\n');
			if (strcmp(cmd->name, "AUTHENTICATE") == 0 ||
			    strcmp(cmd->name, "IDLE") == 0) {
				const char *line, *lerror;
				size_t len;
				if (imap_parser_next_line(p, &line, &len, &lerror) != 0)
					__builtin_trap();
				want_line = true;
			}
		} else if (ret < 0) {
			str_printfa(out, "E:%s:%s\n", tag == NULL ? "" : tag, error);
		} else if (cont) {
			str_append(out, "+\n");
		} else if (off == size) {
			break;
		} else if (n == 0) {
			__builtin_trap(); /* no progress */
		}
	}
	imap_parser_destroy(&p);
	return str_steal(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *whole = run(data, size, size + 1);
	size_t chunk = size > 0 ? (size_t)(data[0] % 7) + 1 : 1;
	char *split = run(data, size, chunk);
	if (strcmp(whole, split) != 0)
		__builtin_trap();
	mem_free(whole);
	mem_free(split);
	return 0;
}
