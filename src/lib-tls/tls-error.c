#include "tls-private.h"
#include "tstr.h"

#include <openssl/err.h>
#include <string.h>

const char *tls_error_openssl(void)
{
	char text[TSTR_MAX_LEN + 1] = "";
	size_t len = 0;
	unsigned long err;
	while ((err = ERR_get_error()) != 0) {
		char one[256];
		ERR_error_string_n(err, one, sizeof(one));
		size_t one_len = strlen(one);
		/* Keep the first errors: they are the cause, the rest is context. */
		if (len + one_len + 3 >= sizeof(text))
			continue;
		if (len > 0) {
			memcpy(text + len, "; ", 2);
			len += 2;
		}
		memcpy(text + len, one, one_len + 1);
		len += one_len;
	}
	return tstr_dup(text);
}

const char *tls_error_suffix(void)
{
	const char *text = tls_error_openssl();
	return text[0] == '\0' ? "" : tstr_printf(": %s", text);
}
