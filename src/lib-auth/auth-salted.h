#ifndef COFFER_AUTH_SALTED_H
#define COFFER_AUTH_SALTED_H
/* auth-salted: a login kept as a salted SHA-256 (the journal receiver's SMTP
 * AUTH logins in journal.json, written by the Instance Host's API and by
 * `coffer config journal password`, checked by the receiver).
 *
 * Contract: the hash is SHA-256(salt | password) with a 16-byte random salt.
 * That is only as good as a slow hash for passwords with 128 random bits (as
 * the command line generates); the API asks for at least 12 characters.
 * auth_salted_entry() returns a new object {userName, passwordSalt,
 * passwordSHA256} (lowercase hex) for json_append() / json_unref(); it never
 * holds the password. auth_salted_hash() computes the hash to compare (with
 * crypto_equal()) against a decoded entry. */
#include "crypto.h"

struct json;

#define AUTH_SALTED_SALT_LEN 16

struct json *auth_salted_entry(const char *user, const char *password);
void auth_salted_hash(const unsigned char salt[AUTH_SALTED_SALT_LEN], const char *password,
		      unsigned char hash_r[CRYPTO_SHA256_LEN]);

#endif
