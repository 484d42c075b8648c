#ifndef COFFER_AUTH_SECRET_H
#define COFFER_AUTH_SECRET_H
/* auth-secret: secrets Coffer must be able to read back (MFA seeds, SMTP
 * passwords, source credentials), sealed under a key kept in the config
 * directory, so that moving the config directory moves them too.
 *
 * Contract: the key file holds exactly CRYPTO_KEY_LEN raw bytes.
 * auth_secret_key_load_or_create() creates it with mode 0600 and a durable
 * write if it does not exist (if several processes race, all end up with the
 * one key that made it to disk); an unreadable file or one of the wrong size
 * is an error naming the file and is never overwritten.
 * auth_secret_seal() returns "v1:" + base64(nonce | ciphertext | tag) with
 * XChaCha20-Poly1305 and `context` (e.g. "smtp-password", "mfa:alice") as
 * associated data, so a sealed value only opens for the field it was sealed
 * for; mem_free(). auth_secret_open() returns 0 and the plaintext (mem_free();
 * wipe it with crypto_wipe() first if it matters) or -1 with *error_r for a
 * bad format, a wrong key, a wrong context or any tampering. Error texts
 * never contain the secret. */
#include "crypto.h"

#define AUTH_SECRET_PREFIX "v1:"

int auth_secret_key_load_or_create(const char *path, unsigned char key_r[CRYPTO_KEY_LEN],
				   const char **error_r);
char *auth_secret_seal(const unsigned char key[CRYPTO_KEY_LEN], const char *plaintext,
		       const char *context);
int auth_secret_open(const unsigned char key[CRYPTO_KEY_LEN], const char *sealed,
		     const char *context, char **plaintext_r, const char **error_r);

#endif
