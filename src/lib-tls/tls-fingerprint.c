#include "tls-private.h"
#include "hex.h"
#include "tstr.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

void tls_fingerprint_x509(X509 *cert, char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	/* X509_digest() hashes the DER encoding; it fails only without memory. */
	if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len * 2 != TLS_FINGERPRINT_HEX_LEN)
		abort();
	hex_encode(md, len, fingerprint_r);
}

int tls_fingerprint_normalize(const char *text, char out[TLS_FINGERPRINT_HEX_LEN + 1],
			      const char **error_r)
{
	size_t len = 0;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (!isxdigit((unsigned char)*p) || len == TLS_FINGERPRINT_HEX_LEN) {
			*error_r = tstr_printf("invalid fingerprint '%s': expected a SHA-256 "
					       "fingerprint (64 hex digits, colons allowed)",
					       text);
			return -1;
		}
		out[len++] = (char)tolower((unsigned char)*p);
	}
	if (len != TLS_FINGERPRINT_HEX_LEN) {
		*error_r = tstr_printf("invalid fingerprint '%s': expected a SHA-256 "
				       "fingerprint (64 hex digits, colons allowed)",
				       text);
		return -1;
	}
	out[len] = '\0';
	return 0;
}
