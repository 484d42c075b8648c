#include "auth-secret.h"
#include "base64.h"
#include "file.h"
#include "mem.h"
#include "tstr.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static int auth_secret_key_load(const char *path, unsigned char key_r[CRYPTO_KEY_LEN],
				const char **error_r)
{
	char *data;
	size_t len;
	/* One byte more than a key, so a longer file is "wrong size". */
	if (file_read_all(path, CRYPTO_KEY_LEN + 1, &data, &len, error_r) < 0) {
		*error_r = tstr_printf("secret key file %s cannot be read: %s", path, *error_r);
		return -1;
	}
	int ret = 0;
	if (len != CRYPTO_KEY_LEN) {
		*error_r = tstr_printf("secret key file %s has %zu bytes, expected %d "
				       "(not replaced: secrets sealed under it would be lost)",
				       path, len, CRYPTO_KEY_LEN);
		ret = -1;
	} else {
		memcpy(key_r, data, CRYPTO_KEY_LEN);
	}
	crypto_wipe(data, len);
	mem_free(data);
	return ret;
}

/* Writes a new key durably under a temporary name, then link()s it into
 * place: unlike rename(), link() never replaces a key another process created
 * in the meantime. Returns 1 if created, 0 if the file appeared meanwhile. */
static int auth_secret_key_create(const char *path, const char **error_r)
{
	unsigned char key[CRYPTO_KEY_LEN];
	crypto_key_generate(key);
	char *tmp = mem_printf("%s.new.%ld", path, (long)getpid());
	int ret = file_write_atomic(tmp, key, sizeof(key), 0600, error_r);
	crypto_wipe(key, sizeof(key));
	if (ret < 0) {
		*error_r = tstr_printf("creating secret key file %s failed: %s", path, *error_r);
		mem_free(tmp);
		return -1;
	}
	if (link(tmp, path) == 0) {
		ret = 1;
	} else if (errno == EEXIST) {
		ret = 0;
	} else {
		*error_r = tstr_printf("creating secret key file %s failed: link(%s) failed: %s",
				       path, tmp, strerror(errno));
		ret = -1;
	}
	if (unlink(tmp) < 0 && ret >= 0) {
		*error_r = tstr_printf("unlink(%s) failed: %s", tmp, strerror(errno));
		ret = -1;
	}
	mem_free(tmp);
	return ret;
}

int auth_secret_key_load_or_create(const char *path, unsigned char key_r[CRYPTO_KEY_LEN],
				   const char **error_r)
{
	int exists = file_exists(path, error_r);
	if (exists < 0)
		return -1;
	if (exists == 0) {
		if (auth_secret_key_create(path, error_r) < 0)
			return -1;
		/* The directory entry made by link() must survive a crash too. */
		char *dir = mem_strdup(path);
		char *slash = strrchr(dir, '/');
		if (slash == NULL)
			strcpy(dir, ".");
		else if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		int ret = file_fsync_dir(dir, error_r);
		mem_free(dir);
		if (ret < 0)
			return -1;
	}
	/* Read back what is on disk: it is the key every process will use. */
	return auth_secret_key_load(path, key_r, error_r);
}

char *auth_secret_seal(const unsigned char key[CRYPTO_KEY_LEN], const char *plaintext,
		       const char *context)
{
	size_t plain_len = strlen(plaintext);
	size_t sealed_len = plain_len + CRYPTO_AEAD_OVERHEAD;
	unsigned char *sealed = mem_alloc(sealed_len);
	crypto_aead_encrypt(key, plaintext, plain_len, context, strlen(context), sealed);
	char *b64 = base64_encode(sealed, sealed_len);
	char *text = mem_printf(AUTH_SECRET_PREFIX "%s", b64);
	mem_free(b64);
	mem_free(sealed);
	return text;
}

int auth_secret_open(const unsigned char key[CRYPTO_KEY_LEN], const char *sealed,
		     const char *context, char **plaintext_r, const char **error_r)
{
	size_t prefix_len = strlen(AUTH_SECRET_PREFIX);
	if (strncmp(sealed, AUTH_SECRET_PREFIX, prefix_len) != 0) {
		*error_r = "sealed secret does not start with \"" AUTH_SECRET_PREFIX "\"";
		return -1;
	}
	const char *b64 = sealed + prefix_len;
	size_t raw_len;
	unsigned char *raw = base64_decode(b64, strlen(b64), &raw_len);
	if (raw == NULL) {
		*error_r = "sealed secret is not valid base64 after \"" AUTH_SECRET_PREFIX "\"";
		return -1;
	}
	if (raw_len < CRYPTO_AEAD_OVERHEAD) {
		*error_r = tstr_printf("sealed secret is too short (%zu bytes, at least %d)",
				       raw_len, CRYPTO_AEAD_OVERHEAD);
		mem_free(raw);
		return -1;
	}
	size_t plain_len = raw_len - CRYPTO_AEAD_OVERHEAD;
	char *plain = mem_alloc(plain_len + 1);
	int ret = 0;
	if (crypto_aead_decrypt(key, raw, raw_len, context, strlen(context),
				(unsigned char *)plain) < 0) {
		*error_r = tstr_printf("sealed secret for \"%s\" cannot be opened: wrong key, "
				       "sealed for another field, or modified",
				       context);
		ret = -1;
	} else if (memchr(plain, '\0', plain_len) != NULL) {
		*error_r = tstr_printf("sealed secret for \"%s\" contains a NUL byte", context);
		ret = -1;
	}
	mem_free(raw);
	if (ret < 0) {
		crypto_wipe(plain, plain_len);
		mem_free(plain);
		return -1;
	}
	plain[plain_len] = '\0';
	*plaintext_r = plain;
	return 0;
}
