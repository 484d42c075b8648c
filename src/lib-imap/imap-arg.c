#include "imap-arg.h"

#include <string.h>
#include <strings.h>

const char *imap_arg_type_name(enum imap_arg_type type)
{
	switch (type) {
	case IMAP_ARG_ATOM:
		return "atom";
	case IMAP_ARG_STRING:
		return "quoted string";
	case IMAP_ARG_LITERAL:
		return "literal";
	case IMAP_ARG_LIST:
		return "list";
	case IMAP_ARG_NIL:
		return "NIL";
	}
	return "unknown";
}

bool imap_arg_get_atom(const struct imap_arg *arg, const char **str_r)
{
	if (arg == NULL || (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL))
		return false;
	*str_r = arg->str;
	return true;
}

bool imap_arg_get_string(const struct imap_arg *arg, const char **str_r)
{
	if (arg == NULL || (arg->type != IMAP_ARG_STRING && arg->type != IMAP_ARG_LITERAL))
		return false;
	/* A NUL inside would silently cut the text short for C-string users. */
	if (memchr(arg->str, '\0', arg->len) != NULL)
		return false;
	*str_r = arg->str;
	return true;
}

bool imap_arg_get_astring(const struct imap_arg *arg, const char **str_r)
{
	return imap_arg_get_atom(arg, str_r) || imap_arg_get_string(arg, str_r);
}

bool imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r)
{
	if (arg != NULL && arg->type == IMAP_ARG_NIL) {
		*str_r = NULL;
		return true;
	}
	return imap_arg_get_string(arg, str_r);
}

bool imap_arg_get_list(const struct imap_arg *arg, const struct imap_arg **list_r,
		       unsigned int *count_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_LIST)
		return false;
	*list_r = arg->list;
	*count_r = arg->list_count;
	return true;
}

bool imap_arg_atom_equals(const struct imap_arg *arg, const char *atom)
{
	const char *str;
	return imap_arg_get_atom(arg, &str) && strcasecmp(str, atom) == 0;
}
