#include "tls-private.h"
#include "file.h"
#include "mem.h"
#include "tstr.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>

/* Certificates, chains and keys are small; anything larger is not one. */
#define TLS_LOAD_MAX_SIZE (1024 * 1024)

/* Never prompt on the terminal for a passphrase: an encrypted key is an error
 * here, daemons have no terminal. */
static int tls_load_no_password(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

static BIO *tls_load_file(const char *path, char **data_r, size_t *len_r, const char **error_r)
{
	if (file_read_all(path, TLS_LOAD_MAX_SIZE, data_r, len_r, error_r) < 0)
		return NULL;
	BIO *bio = BIO_new_mem_buf(*data_r, (int)*len_r);
	if (bio == NULL)
		abort();
	return bio;
}

int tls_load_certs(const char *path, STACK_OF(X509) * *certs_r, const char **error_r)
{
	char *data;
	size_t len;
	BIO *bio = tls_load_file(path, &data, &len, error_r);
	if (bio == NULL)
		return -1;
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *cert;
	while ((cert = PEM_read_bio_X509(bio, NULL, tls_load_no_password, NULL)) != NULL)
		sk_X509_push(certs, cert);
	/* The loop ends with "no start line"; that is not an error once
	 * something was read. */
	const char *openssl_error = tls_error_openssl();
	BIO_free(bio);
	mem_free(data);
	if (sk_X509_num(certs) == 0) {
		sk_X509_pop_free(certs, X509_free);
		*error_r = tstr_printf("%s: no PEM certificate found (%s)", path, openssl_error);
		return -1;
	}
	*certs_r = certs;
	return 0;
}

int tls_load_key(const char *path, EVP_PKEY **key_r, const char **error_r)
{
	char *data;
	size_t len;
	BIO *bio = tls_load_file(path, &data, &len, error_r);
	if (bio == NULL)
		return -1;
	EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, tls_load_no_password, NULL);
	BIO_free(bio);
	/* The key bytes are secret: do not leave them in freed memory. */
	OPENSSL_cleanse(data, len);
	mem_free(data);
	if (key == NULL) {
		*error_r = tstr_printf("%s: no usable PEM private key found (an encrypted key "
				       "is not supported)%s",
				       path, tls_error_suffix());
		return -1;
	}
	*key_r = key;
	return 0;
}

/* The key must belong to the first certificate: PEM files carry the server
 * certificate first, then its chain. Accepting a key that matches a later one
 * would make a CA certificate the server's own. */
static int tls_load_check_first(STACK_OF(X509) * certs, EVP_PKEY *key)
{
	int ret =
		sk_X509_num(certs) > 0 && X509_check_private_key(sk_X509_value(certs, 0), key) == 1
			? 0
			: -1;
	ERR_clear_error();
	return ret;
}

int tls_load_pair(const char *cert_path, const char *key_path, STACK_OF(X509) * *certs_r,
		  EVP_PKEY **key_r, const char **error_r)
{
	STACK_OF(X509) * certs;
	EVP_PKEY *key;
	if (key_path == NULL)
		key_path = cert_path;
	if (tls_load_certs(cert_path, &certs, error_r) < 0)
		return -1;
	if (tls_load_key(key_path, &key, error_r) < 0) {
		sk_X509_pop_free(certs, X509_free);
		return -1;
	}
	if (tls_load_check_first(certs, key) < 0) {
		*error_r = tstr_printf("the key in %s does not match the certificate in %s (the "
				       "server certificate must come first, followed by its chain)",
				       key_path, cert_path);
		EVP_PKEY_free(key);
		sk_X509_pop_free(certs, X509_free);
		return -1;
	}
	*certs_r = certs;
	*key_r = key;
	return 0;
}

static int tls_load_save_bio(BIO *bio, const char *path, mode_t mode, const char **error_r)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);
	return file_write_atomic(path, data, (size_t)len, mode, error_r);
}

int tls_load_save_pair(STACK_OF(X509) * certs, EVP_PKEY *key, const char *cert_path,
		       const char *key_path, const char **error_r)
{
	BIO *key_bio = BIO_new(BIO_s_secmem()), *cert_bio = BIO_new(BIO_s_mem());
	if (key_bio == NULL || cert_bio == NULL)
		abort();
	int ret = -1;
	if (PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
		*error_r = tstr_printf("cannot encode the private key for %s%s", key_path,
				       tls_error_suffix());
		goto out;
	}
	for (int i = 0; i < sk_X509_num(certs); i++) {
		if (PEM_write_bio_X509(cert_bio, sk_X509_value(certs, i)) != 1) {
			*error_r = tstr_printf("cannot encode the certificate for %s%s", cert_path,
					       tls_error_suffix());
			goto out;
		}
	}
	/* The key first: a certificate without its key is useless, while a new
	 * key next to the old certificate is detected by tls_cert_check_pair(). */
	if (tls_load_save_bio(key_bio, key_path, 0600, error_r) < 0 ||
	    tls_load_save_bio(cert_bio, cert_path, 0644, error_r) < 0)
		goto out;
	ret = 0;
out:
	BIO_free(key_bio);
	BIO_free(cert_bio);
	return ret;
}
