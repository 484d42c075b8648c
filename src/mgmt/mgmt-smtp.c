/* mgmt-smtp: the system SMTP configuration, used from a thread. */
#include "mgmt-smtp.h"
#include "auth-secret.h"
#include "crypto.h"
#include "json.h"
#include "mem.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "role-daemon.h"
#include "smtp-client.h"
#include "tstr.h"

#include <event2/event.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct mgmt_smtp_job {
	struct smtp_settings set;
	char *host, *user, *password, *from, *to;
	unsigned char *message;
	size_t size;
	const char *error; /* points into error_text on failure */
	char error_text[1024];
	int pipe[2];
	struct event *done_event;
	mgmt_smtp_done_fn *done;
	void *ctx;
};

const char *mgmt_smtp_from(struct mgmt *mgmt)
{
	return json_get_string(json_get(mgmtdb_root(mgmt->db), "smtp"), "fromAddress");
}

static void mgmt_smtp_job_free(struct mgmt_smtp_job *j)
{
	if (j->done_event != NULL)
		event_free(j->done_event);
	if (j->pipe[0] >= 0)
		close(j->pipe[0]);
	if (j->pipe[1] >= 0)
		close(j->pipe[1]);
	if (j->password != NULL)
		crypto_wipe(j->password, strlen(j->password));
	mem_free(j->host);
	mem_free(j->user);
	mem_free(j->password);
	mem_free(j->from);
	mem_free(j->to);
	mem_free(j->message);
	mem_free(j);
}

static void *mgmt_smtp_thread(void *ctx)
{
	struct mgmt_smtp_job *j = ctx;
	const char *to[] = {j->to};
	struct smtp_message msg = {j->from, to, 1, j->message, j->size};
	const char *error;
	if (smtp_send(&j->set, &msg, &error) < 0) {
		snprintf(j->error_text, sizeof(j->error_text), "%s", error);
		j->error = j->error_text;
	}
	char c = 1;
	ssize_t n = write(j->pipe[1], &c, 1);
	(void)n;
	return NULL;
}

static void mgmt_smtp_finished(evutil_socket_t fd, short events, void *ctx)
{
	struct mgmt_smtp_job *j = ctx;
	char c;
	if (fd >= 0) {
		ssize_t n = read(fd, &c, 1);
		(void)n;
	}
	j->done(j->error, j->ctx);
	mgmt_smtp_job_free(j);
}

/* Report an error before any thread ran, still from the event loop. */
static void mgmt_smtp_fail(struct mgmt_smtp_job *j, const char *error)
{
	snprintf(j->error_text, sizeof(j->error_text), "%s", error);
	j->error = j->error_text;
	char c = 1;
	ssize_t n = write(j->pipe[1], &c, 1);
	(void)n;
}

void mgmt_smtp_send(struct mgmt *mgmt, const char *to, const void *message, size_t size,
		    mgmt_smtp_done_fn *done, void *ctx)
{
	const struct json *smtp = json_get(mgmtdb_root(mgmt->db), "smtp");
	struct mgmt_smtp_job *j = mem_new(struct mgmt_smtp_job);
	j->done = done;
	j->ctx = ctx;
	j->pipe[0] = j->pipe[1] = -1;
	if (pipe(j->pipe) < 0) {
		/* out of descriptors: say so, from the event loop as promised */
		snprintf(j->error_text, sizeof(j->error_text), "pipe() failed: %s",
			 strerror(errno));
		j->error = j->error_text;
		struct timeval now = {0, 0};
		j->done_event = event_new(role_daemon_base(mgmt->rd), -1, 0, mgmt_smtp_finished, j);
		event_add(j->done_event, &now);
		return;
	}
	j->done_event =
		event_new(role_daemon_base(mgmt->rd), j->pipe[0], EV_READ, mgmt_smtp_finished, j);
	event_add(j->done_event, NULL);
	const char *host = json_get_string(smtp, "host"),
		   *from = json_get_string(smtp, "fromAddress");
	const char *sealed = json_get_string(smtp, "password"), *error;
	long long port = 0;
	(void)json_get_int(smtp, "port", &port);
	if (host == NULL || from == NULL) {
		mgmt_smtp_fail(j, "no SMTP settings yet (SetSystemSmtpConfiguration)");
		return;
	}
	if (sealed != NULL &&
	    auth_secret_open(mgmt->secret_key, sealed, "smtp-password", &j->password, &error) < 0) {
		mgmt_smtp_fail(j, tstr_printf("the SMTP password cannot be read: %s", error));
		return;
	}
	j->host = mem_strdup(host);
	j->user = mem_strdup(
		json_get_string(smtp, "userName") != NULL ? json_get_string(smtp, "userName") : "");
	j->from = mem_strdup(from);
	j->to = mem_strdup(to);
	j->message = mem_alloc(size + 1);
	memcpy(j->message, message, size);
	j->size = size;
	(void)smtp_security_parse(json_get_string(smtp, "security"), &j->set.security);
	j->set.host = j->host;
	j->set.port = (unsigned int)port;
	j->set.user = j->user[0] != '\0' ? j->user : NULL;
	j->set.password = j->password;
	j->set.verify_certificate = json_get_bool(smtp, "verifyCertificate", true);
	j->set.timeout_secs = 30;
	pthread_t thread;
	if (pthread_create(&thread, NULL, mgmt_smtp_thread, j) != 0) {
		mgmt_smtp_fail(j, "cannot start the SMTP thread");
		return;
	}
	pthread_detach(thread);
}
