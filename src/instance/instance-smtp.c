/* instance-smtp: the instance's SMTP settings (see the header). */
#include "instance-smtp.h"
#include "archive.h"
#include "auth-secret.h"
#include "crypto.h"
#include "file.h"
#include "instance-calls.h"
#include "instance-jobs.h"
#include "instance.h"
#include "json.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <string.h>

#define INSTANCE_SMTP_FILE "smtp.sealed"
#define INSTANCE_SMTP_CONTEXT "instance-smtp"
#define INSTANCE_SMTP_MAX_FILE (64 * 1024)

static int instance_smtp_key(const char *key_file, unsigned char key_r[CRYPTO_KEY_LEN],
			     const char **error_r)
{
	unsigned char master[CRYPTO_KEY_LEN];
	if (archive_key_file_read(key_file, master, error_r) < 0)
		return -1;
	crypto_kdf_derive(master, "smtp____", 1, key_r);
	crypto_wipe(master, sizeof(master));
	return 0;
}

/* The stored settings (with the password), an empty object when none: 0,
 * or -1 with *error_r. */
static int instance_smtp_read(const char *base_dir, const char *key_file, struct json **root_r,
			      const char **error_r)
{
	char *path = mem_printf("%s/%s", base_dir, INSTANCE_SMTP_FILE);
	char *sealed = NULL, *text = NULL;
	size_t len;
	unsigned char key[CRYPTO_KEY_LEN];
	int ret = file_exists(path, error_r);
	*root_r = NULL;
	if (ret == 0) {
		*root_r = json_new_object();
	} else if (ret > 0) {
		ret = instance_smtp_key(key_file, key, error_r);
		if (ret == 0)
			ret = file_read_all(path, INSTANCE_SMTP_MAX_FILE, &sealed, &len, error_r);
		if (ret == 0)
			ret = auth_secret_open(key, sealed, INSTANCE_SMTP_CONTEXT, &text, error_r);
		if (ret == 0)
			ret = json_parse(text, strlen(text), root_r, error_r);
		crypto_wipe(key, sizeof(key));
	}
	if (text != NULL) {
		crypto_wipe(text, strlen(text));
		mem_free(text);
	}
	mem_free(sealed);
	mem_free(path);
	return ret < 0 ? -1 : 0;
}

static int instance_smtp_write(const char *base_dir, const char *key_file, const struct json *root,
			       const char **error_r)
{
	unsigned char key[CRYPTO_KEY_LEN];
	if (instance_smtp_key(key_file, key, error_r) < 0)
		return -1;
	char *text = json_serialize(root, false);
	char *sealed = auth_secret_seal(key, text, INSTANCE_SMTP_CONTEXT);
	crypto_wipe(key, sizeof(key));
	crypto_wipe(text, strlen(text));
	mem_free(text);
	char *path = mem_printf("%s/%s", base_dir, INSTANCE_SMTP_FILE);
	int ret = file_write_atomic(path, sealed, strlen(sealed), 0600, error_r);
	mem_free(path);
	mem_free(sealed);
	return ret;
}

int instance_smtp_load(const char *base_dir, const char *key_file, struct instance_smtp **smtp_r,
		       const char **error_r)
{
	struct json *root;
	if (instance_smtp_read(base_dir, key_file, &root, error_r) < 0)
		return -1;
	const char *host = json_get_string(root, "host"),
		   *from = json_get_string(root, "fromAddress");
	if (host == NULL || from == NULL) {
		json_unref(&root);
		*error_r = "the instance has no SMTP settings yet (SetSmtpSettings)";
		return -1;
	}
	struct instance_smtp *s = mem_new(struct instance_smtp);
	const char *user = json_get_string(root, "userName"),
		   *password = json_get_string(root, "password");
	long long port = 587;
	(void)json_get_int(root, "port", &port);
	s->host = mem_strdup(host);
	s->from = mem_strdup(from);
	s->user = user != NULL && user[0] != '\0' ? mem_strdup(user) : NULL;
	s->password = password != NULL ? mem_strdup(password) : NULL;
	(void)smtp_security_parse(json_get_string(root, "security"), &s->set.security);
	s->set.host = s->host;
	s->set.port = (unsigned int)port;
	s->set.user = s->user;
	s->set.password = s->password;
	s->set.verify_certificate = json_get_bool(root, "verifyCertificate", true);
	s->set.timeout_secs = 30;
	json_unref(&root);
	*smtp_r = s;
	return 0;
}

void instance_smtp_free(struct instance_smtp **_s)
{
	struct instance_smtp *s = *_s;
	if (s == NULL)
		return;
	*_s = NULL;
	if (s->password != NULL)
		crypto_wipe(s->password, strlen(s->password));
	mem_free(s->password);
	mem_free(s->host);
	mem_free(s->user);
	mem_free(s->from);
	mem_free(s);
}

unsigned char *instance_smtp_crlf(const unsigned char *data, size_t len, size_t *len_r)
{
	struct str *out = str_create(len + len / 32 + 16);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) {
			str_append_n(out, data + start, i - start);
			str_append(out, "\r\n");
			start = i + 1;
		}
	}
	str_append_n(out, data + start, len - start);
	*len_r = str_len(out);
	return (unsigned char *)str_steal(&out);
}

/* ---- the calls ---- */

static struct json *instance_smtp_view(const struct json *root)
{
	struct json *view = json_clone(root);
	json_set_bool(view, "configured", json_get_string(root, "host") != NULL);
	json_set_bool(view, "passwordSet", json_get_string(root, "password") != NULL);
	(void)json_remove(view, "password");
	return view;
}

int instance_smtp_get(struct instance_call *c)
{
	struct json *root;
	if (instance_smtp_read(c->inst->base_dir, c->inst->key_file, &root, &c->error) < 0)
		return -1;
	c->result = instance_smtp_view(root);
	json_unref(&root);
	return 0;
}

static bool instance_smtp_address_ok(const char *a)
{
	return a != NULL && a[0] != '\0' && strlen(a) <= 254 && strchr(a, '@') != NULL &&
	       strpbrk(a, " <>\r\n\t") == NULL;
}

int instance_smtp_set(struct instance_call *c)
{
	const struct json *args = c->args;
	enum smtp_security security;
	long long port = 587;
	const char *host = json_get_string(args, "host"), *sec = json_get_string(args, "security");
	const char *from = json_get_string(args, "fromAddress");
	(void)json_get_int(args, "port", &port);
	if (smtp_security_parse(sec, &security) < 0) {
		c->error = tstr_printf("security: '%s' is not none, starttls or tls", sec);
		return -1;
	}
	if (port < 1 || port > 65535) {
		c->error = tstr_printf("port: %lld is not a port number", port);
		return -1;
	}
	if (host == NULL || host[0] == '\0' || strlen(host) > 253 ||
	    strpbrk(host, " /\r\n") != NULL) {
		c->error = tstr_printf("host: '%s' is not a host name", host == NULL ? "" : host);
		return -1;
	}
	if (!instance_smtp_address_ok(from)) {
		c->error = "fromAddress: an email address (user@domain)";
		return -1;
	}
	struct json *old;
	if (instance_smtp_read(c->inst->base_dir, c->inst->key_file, &old, &c->error) < 0)
		return -1;
	struct json *root = json_new_object();
	const char *user = json_get_string(args, "userName");
	json_set_string(root, "host", host);
	json_set_int(root, "port", port);
	json_set_string(root, "security", sec == NULL ? "starttls" : sec);
	json_set_string(root, "userName", user != NULL ? user : "");
	json_set_string(root, "fromAddress", from);
	json_set_bool(root, "verifyCertificate", json_get_bool(args, "verifyCertificate", true));
	const char *password = json_get_string(args, "password");
	const char *old_password = json_get_string(old, "password");
	if (password != NULL && password[0] != '\0')
		json_set_string(root, "password", password);
	else if (password == NULL && old_password != NULL)
		json_set_string(root, "password", old_password); /* unchanged */
	json_unref(&old);
	int ret = instance_smtp_write(c->inst->base_dir, c->inst->key_file, root, &c->error);
	if (ret == 0)
		c->result = instance_smtp_view(root);
	json_unref(&root);
	return ret;
}

/* ---- TestSmtpSettings: a job (the server may be slow) ---- */

struct instance_smtp_test {
	char *base_dir, *key_file, *to, *instance_id;
};

static int instance_smtp_test_run(struct instance_job *job, void *ctx, const char **error_r)
{
	struct instance_smtp_test *t = ctx;
	struct instance_smtp *s;
	if (instance_smtp_load(t->base_dir, t->key_file, &s, error_r) < 0)
		return -1;
	instance_job_status(job, tstr_printf("sending a test message to %s", t->to));
	char *message = smtp_build_text_message(
		s->from, t->to, "Coffer test message",
		tstr_printf("This test message was sent with the SMTP settings of the Coffer "
			    "instance %s.\n",
			    t->instance_id));
	const char *to[] = {t->to};
	struct smtp_message msg = {s->from, to, 1, message, strlen(message)};
	int ret = smtp_send(&s->set, &msg, error_r);
	if (ret < 0)
		*error_r = tstr_dup(*error_r); /* the settings' strings go now */
	mem_free(message);
	instance_smtp_free(&s);
	if (ret == 0)
		instance_job_set_string(job, "sentTo", t->to);
	return ret;
}

static void instance_smtp_test_free(void *ctx)
{
	struct instance_smtp_test *t = ctx;
	mem_free(t->base_dir);
	mem_free(t->key_file);
	mem_free(t->to);
	mem_free(t->instance_id);
	mem_free(t);
}

static const struct instance_job_kind instance_smtp_test_kind = {
	"smtp-test", instance_smtp_test_run, instance_smtp_test_free};

int instance_smtp_test(struct instance_call *c)
{
	const char *to = json_get_string(c->args, "to"), *id;
	if (!instance_smtp_address_ok(to)) {
		c->code = "bad-request";
		c->error = "to: an email address (user@domain)";
		return -1;
	}
	struct instance_smtp_test *t = mem_new(struct instance_smtp_test);
	t->base_dir = mem_strdup(c->inst->base_dir);
	t->key_file = mem_strdup(c->inst->key_file);
	t->to = mem_strdup(to);
	t->instance_id = mem_strdup(c->inst->id);
	struct json *arguments = json_new_object();
	json_set_string(arguments, "to", to);
	if (instance_jobs_start(c->inst->jobs, &instance_smtp_test_kind, arguments, NULL, t, &id,
				&c->error) < 0) {
		instance_smtp_test_free(t);
		c->code = "busy";
		return -1;
	}
	c->result = json_new_object();
	json_set_string(c->result, "jobID", id);
	return 0;
}
