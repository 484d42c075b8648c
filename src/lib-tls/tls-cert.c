#include "tls-private.h"
#include "file.h"
#include "mem.h"
#include "tstr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <strings.h>

/* RFC 5280's upper bound for a common name. */
#define TLS_CERT_CN_MAX 64
#define TLS_CERT_MAX_DAYS (100 * 366)
/* PKCS#12 files hold one key and a short chain. */
#define TLS_CERT_P12_MAX_SIZE (1024 * 1024)

static bool tls_cert_is_ip(const char *name)
{
	unsigned char addr[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

static int tls_cert_check_common_name(const char *name, const char **error_r)
{
	size_t len = strlen(name);
	bool ok = len > 0 && len <= TLS_CERT_CN_MAX;
	for (const char *p = name; ok && *p != '\0'; p++) {
		/* ':' for IPv6 addresses; no character that would need escaping. */
		ok = isalnum((unsigned char)*p) || strchr(".-_:", *p) != NULL;
	}
	if (!ok) {
		*error_r = tstr_printf("invalid certificate name '%s': expected a host name or IP "
				       "address of at most %d characters",
				       name, TLS_CERT_CN_MAX);
		return -1;
	}
	return 0;
}

static bool tls_cert_add_general_name(GENERAL_NAMES *names, int type, const char *value)
{
	GENERAL_NAME *gn = NULL;
	if (type == GEN_IPADD) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(value);
		if (ip == NULL)
			return false;
		gn = GENERAL_NAME_new();
		if (gn == NULL) {
			ASN1_OCTET_STRING_free(ip);
			return false;
		}
		GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
	} else {
		ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
		if (dns == NULL || ASN1_STRING_set(dns, value, -1) != 1 ||
		    (gn = GENERAL_NAME_new()) == NULL) {
			ASN1_IA5STRING_free(dns);
			return false;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
	}
	if (sk_GENERAL_NAME_push(names, gn) == 0) {
		GENERAL_NAME_free(gn);
		return false;
	}
	return true;
}

/* Built from GENERAL_NAMEs rather than a config string, so that no name can
 * smuggle extra entries into the extension. */
static bool tls_cert_add_subject_alt_name(X509 *cert, const char *common_name,
					  const char *const *alt_names)
{
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	bool ok = names != NULL && tls_cert_add_general_name(names, GEN_DNS, common_name) &&
		  (!tls_cert_is_ip(common_name) ||
		   tls_cert_add_general_name(names, GEN_IPADD, common_name));
	for (const char *const *n = alt_names; ok && n != NULL && *n != NULL; n++) {
		bool seen = strcasecmp(*n, common_name) == 0;
		for (const char *const *m = alt_names; !seen && m != n; m++)
			seen = strcasecmp(*m, *n) == 0;
		if (!seen)
			ok = tls_cert_add_general_name(
				names, tls_cert_is_ip(*n) ? GEN_IPADD : GEN_DNS, *n);
	}
	ok = ok && X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
	GENERAL_NAMES_free(names);
	return ok;
}

static bool tls_cert_add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return false;
	bool ok = X509_add_ext(cert, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* A random positive 128-bit serial number (RFC 5280 allows up to 20 octets). */
static bool tls_cert_set_random_serial(X509 *cert)
{
	unsigned char bytes[16];
	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return false;
	bytes[0] &= 0x7f;
	bytes[0] |= 0x40; /* keep the full length, never zero */
	BIGNUM *bn = BN_bin2bn(bytes, sizeof(bytes), NULL);
	bool ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok;
}

static X509 *tls_cert_build(const char *common_name, const char *const *alt_names,
			    unsigned int days, EVP_PKEY *key)
{
	X509 *cert = X509_new();
	if (cert == NULL)
		return NULL;
	X509_NAME *name = X509_get_subject_name(cert);
	/* Accept a little clock skew between the roles' hosts. */
	bool ok = X509_set_version(cert, X509_VERSION_3) == 1 && tls_cert_set_random_serial(cert) &&
		  X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL &&
		  X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, NULL) != NULL &&
		  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					     (const unsigned char *)common_name, -1, -1, 0) == 1 &&
		  X509_set_issuer_name(cert, name) == 1 && X509_set_pubkey(cert, key) == 1 &&
		  tls_cert_add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") &&
		  tls_cert_add_ext(cert, NID_key_usage, "critical,digitalSignature") &&
		  /* One certificate serves as server and as client certificate. */
		  tls_cert_add_ext(cert, NID_ext_key_usage, "serverAuth,clientAuth") &&
		  tls_cert_add_ext(cert, NID_subject_key_identifier, "hash") &&
		  tls_cert_add_subject_alt_name(cert, common_name, alt_names) &&
		  X509_sign(cert, key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

int tls_cert_generate(const char *common_name, unsigned int days, const char *cert_path,
		      const char *key_path, const char **error_r)
{
	return tls_cert_generate_names(common_name, NULL, days, cert_path, key_path, error_r);
}

int tls_cert_generate_names(const char *common_name, const char *const *alt_names,
			    unsigned int days, const char *cert_path, const char *key_path,
			    const char **error_r)
{
	if (tls_cert_check_common_name(common_name, error_r) < 0)
		return -1;
	for (const char *const *n = alt_names; n != NULL && *n != NULL; n++) {
		if (tls_cert_check_common_name(*n, error_r) < 0)
			return -1;
	}
	if (days == 0 || days > TLS_CERT_MAX_DAYS) {
		*error_r = tstr_printf("invalid certificate validity of %u days: expected 1 to %d",
				       days, TLS_CERT_MAX_DAYS);
		return -1;
	}
	EVP_PKEY *key = EVP_EC_gen("P-256");
	if (key == NULL) {
		*error_r = tstr_printf("generating an EC P-256 key failed%s", tls_error_suffix());
		return -1;
	}
	X509 *cert = tls_cert_build(common_name, alt_names, days, key);
	if (cert == NULL) {
		*error_r = tstr_printf("building the certificate for '%s' failed%s", common_name,
				       tls_error_suffix());
		EVP_PKEY_free(key);
		return -1;
	}
	STACK_OF(X509) *certs = sk_X509_new_null();
	if (certs == NULL || sk_X509_push(certs, cert) == 0)
		abort();
	int ret = tls_load_save_pair(certs, key, cert_path, key_path, error_r);
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	return ret;
}

static void tls_cert_name_line(X509_NAME *name, char *out, size_t size)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		abort();
	/* RFC 2253 is one line without padding ("CN=x,O=y"); keep UTF-8 as is. */
	(void)X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	char *data;
	long len = BIO_get_mem_data(bio, &data);
	size_t n = (size_t)len < size - 1 ? (size_t)len : size - 1;
	memcpy(out, data, n);
	out[n] = '\0';
	BIO_free(bio);
}

static time_t tls_cert_time(const ASN1_TIME *t)
{
	struct tm tm;
	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

int tls_cert_read_info(const char *cert_path, struct tls_cert_info *info_r, const char **error_r)
{
	STACK_OF(X509) * certs;
	if (tls_load_certs(cert_path, &certs, error_r) < 0)
		return -1;
	X509 *cert = sk_X509_value(certs, 0);
	memset(info_r, 0, sizeof(*info_r));
	tls_fingerprint_x509(cert, info_r->fingerprint);
	tls_cert_name_line(X509_get_subject_name(cert), info_r->subject, sizeof(info_r->subject));
	tls_cert_name_line(X509_get_issuer_name(cert), info_r->issuer, sizeof(info_r->issuer));
	info_r->not_before = tls_cert_time(X509_get0_notBefore(cert));
	info_r->not_after = tls_cert_time(X509_get0_notAfter(cert));
	info_r->self_signed = X509_self_signed(cert, 1) == 1;
	ERR_clear_error();
	sk_X509_pop_free(certs, X509_free);
	return 0;
}

int tls_cert_fingerprint(const char *cert_path, char fingerprint_r[TLS_FINGERPRINT_HEX_LEN + 1],
			 const char **error_r)
{
	STACK_OF(X509) * certs;
	if (tls_load_certs(cert_path, &certs, error_r) < 0)
		return -1;
	tls_fingerprint_x509(sk_X509_value(certs, 0), fingerprint_r);
	sk_X509_pop_free(certs, X509_free);
	return 0;
}

int tls_cert_check_pair(const char *cert_path, const char *key_path, const char **error_r)
{
	STACK_OF(X509) * certs;
	EVP_PKEY *key;
	if (tls_load_pair(cert_path, key_path, &certs, &key, error_r) < 0)
		return -1;
	EVP_PKEY_free(key);
	sk_X509_pop_free(certs, X509_free);
	return 0;
}

int tls_cert_import_pem(const char *cert_path, const char *key_path, const char *dest_cert,
			const char *dest_key, const char **error_r)
{
	STACK_OF(X509) * certs;
	EVP_PKEY *key;
	if (tls_load_pair(cert_path, key_path, &certs, &key, error_r) < 0)
		return -1;
	int ret = tls_load_save_pair(certs, key, dest_cert, dest_key, error_r);
	EVP_PKEY_free(key);
	sk_X509_pop_free(certs, X509_free);
	return ret;
}

static PKCS12 *tls_cert_read_pkcs12(const char *path, const char **error_r)
{
	char *data;
	size_t len;
	if (file_read_all(path, TLS_CERT_P12_MAX_SIZE, &data, &len, error_r) < 0)
		return NULL;
	const unsigned char *p = (const unsigned char *)data;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
	OPENSSL_cleanse(data, len);
	mem_free(data);
	if (p12 == NULL)
		*error_r = tstr_printf("%s: not a PKCS#12 file%s", path, tls_error_suffix());
	return p12;
}

/* The password that opens the PKCS#12 MAC, or -1 when none does. Tools
 * disagree on whether "no password" is "" or absent, so both are tried. */
static int tls_cert_pkcs12_password(PKCS12 *p12, const char *password, const char **pass_r)
{
	*pass_r = password;
	if (PKCS12_mac_present(p12) != 1)
		return 0;
	if (password != NULL && password[0] != '\0')
		return PKCS12_verify_mac(p12, password, -1) == 1 ? 0 : -1;
	*pass_r = "";
	if (PKCS12_verify_mac(p12, "", 0) == 1)
		return 0;
	*pass_r = NULL;
	return PKCS12_verify_mac(p12, NULL, 0) == 1 ? 0 : -1;
}

int tls_cert_import_pkcs12(const char *p12_path, const char *password, const char *dest_cert,
			   const char *dest_key, const char **error_r)
{
	PKCS12 *p12 = tls_cert_read_pkcs12(p12_path, error_r);
	if (p12 == NULL)
		return -1;
	if (tls_cert_pkcs12_password(p12, password, &password) < 0) {
		ERR_clear_error();
		PKCS12_free(p12);
		*error_r = tstr_printf("%s: wrong PKCS#12 password", p12_path);
		return -1;
	}
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *chain = NULL;
	int ret = -1;
	if (PKCS12_parse(p12, password, &key, &cert, &chain) != 1) {
		*error_r = tstr_printf("%s: cannot read the PKCS#12 contents (wrong password?)%s",
				       p12_path, tls_error_suffix());
		goto out;
	}
	if (key == NULL || cert == NULL) {
		*error_r = tstr_printf("%s: the PKCS#12 file must contain a certificate and its "
				       "private key",
				       p12_path);
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		*error_r = tstr_printf("%s: the key does not match the certificate", p12_path);
		goto out;
	}
	if (chain == NULL && (chain = sk_X509_new_null()) == NULL)
		abort();
	if (sk_X509_unshift(chain, cert) == 0)
		abort();
	cert = NULL; /* owned by chain now */
	ret = tls_load_save_pair(chain, key, dest_cert, dest_key, error_r);
out:
	sk_X509_pop_free(chain, X509_free);
	X509_free(cert);
	EVP_PKEY_free(key);
	PKCS12_free(p12);
	return ret;
}

int tls_cert_export_pkcs12(const char *cert_path, const char *key_path, const char *password,
			   const char *p12_path, const char **error_r)
{
	STACK_OF(X509) * certs;
	EVP_PKEY *key;
	if (tls_load_pair(cert_path, key_path, &certs, &key, error_r) < 0)
		return -1;
	X509 *cert = sk_X509_shift(certs);
	/* nid 0 and iter 0 pick OpenSSL 3's defaults: AES-256-CBC with PBKDF2
	 * for key and certificates, and a SHA-256 MAC. */
	PKCS12 *p12 = PKCS12_create(password, "coffer", key, cert, certs, 0, 0, 0, 0, 0);
	int ret = -1;
	unsigned char *der = NULL;
	int der_len;
	if (p12 == NULL || (der_len = i2d_PKCS12(p12, &der)) <= 0) {
		*error_r = tstr_printf("cannot create the PKCS#12 file %s%s", p12_path,
				       tls_error_suffix());
	} else {
		ret = file_write_atomic(p12_path, der, (size_t)der_len, 0600, error_r);
	}
	OPENSSL_free(der);
	PKCS12_free(p12);
	X509_free(cert);
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	return ret;
}
