/* Fuzz target: SEARCH criteria, through the command parser as the server
 * reads them: "A SEARCH <input>\r\n", literals included. */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "imap-parser.h"
#include "imap-search.h"
#include "mem.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct imap_search_node *node, unsigned int depth)
{
	if (depth > 100)
		__builtin_trap();
	if ((node->type == IMAP_SEARCH_OR && node->children.count != 2) ||
	    (node->type == IMAP_SEARCH_NOT && node->children.count != 1) ||
	    ((node->type == IMAP_SEARCH_SEQSET || node->type == IMAP_SEARCH_UID) &&
	     node->seqset == NULL) ||
	    (node->type == IMAP_SEARCH_HEADER && (node->field == NULL || node->value == NULL)))
		__builtin_trap();
	for (unsigned int i = 0; i < node->children.count; i++)
		walk(node->children.items[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser_settings pset = {.max_line = 4096, .max_literal = 1024};
	struct imap_parser *p = imap_parser_create(&pset);
	struct str *in = str_create(size + 16);
	str_append(in, "A SEARCH ");
	str_append_n(in, data, size);
	str_append(in, "\r\n");
	size_t off = 0;
	for (;;) {
		off += imap_parser_feed(p, str_c(in) + off, str_len(in) - off);
		const struct imap_command *cmd;
		const char *tag, *error;
		bool cont;
		int ret = imap_parser_next(p, &cmd, &cont, &tag, &error);
		if (ret > 0) {
			/* A leading '1' tries an empty mailbox. */
			bool empty = size > 0 && data[0] == '1';
			struct imap_search_settings set = {.star_seq = empty ? 0 : 100,
							   .star_uid = empty ? 0 : 5000};
			struct imap_search_node *root;
			if (imap_search_parse(cmd->args, cmd->arg_count, &set, &root, &error) ==
			    0) {
				walk(root, 0);
				imap_search_destroy(&root);
			} else if (root != NULL || error == NULL) {
				__builtin_trap();
			}
		} else if (ret == 0 && !cont && off == str_len(in)) {
			break;
		}
	}
	imap_parser_destroy(&p);
	str_destroy(&in);
	return 0;
}
