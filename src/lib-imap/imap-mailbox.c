#include "imap-mailbox.h"
#include "imap-quote.h"
#include "imap-utf7.h"
#include "tstr.h"

#include <strings.h>

int imap_mailbox_from_arg(const struct imap_arg *arg, struct str *dest, const char **error_r)
{
	const char *name;
	if (!imap_arg_get_astring(arg, &name)) {
		*error_r = arg == NULL ? "missing mailbox name"
				       : tstr_printf("mailbox name expected, got a %s",
						     imap_arg_type_name(arg->type));
		return -1;
	}
	if (strcasecmp(name, "INBOX") == 0) {
		str_append(dest, "INBOX");
		return 0;
	}
	return imap_utf7_decode(name, dest, error_r);
}

int imap_mailbox_write(struct str *dest, const char *utf8_name, const char **error_r)
{
	struct str *encoded = str_create(64);
	int ret = imap_utf7_encode(utf8_name, encoded, error_r);
	if (ret == 0)
		imap_quote_append_astring(dest, str_c(encoded));
	str_destroy(&encoded);
	return ret;
}
