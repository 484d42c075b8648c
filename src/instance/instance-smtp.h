#ifndef COFFER_INSTANCE_SMTP_H
#define COFFER_INSTANCE_SMTP_H
/* instance-smtp: the instance's own SMTP settings (restores by SMTP, test
 * mails): <base>/smtp.sealed, the settings with their password sealed under
 * a key derived from the instance key (as the jobs and profiles are), so a
 * copy of the base directory alone reveals no password; written atomically
 * (temp, fsync, rename). The password is never returned or logged:
 * GetSmtpSettings says only passwordSet.
 *
 * Calls (instance-calls.h): GetSmtpSettings, SetSmtpSettings {host, port,
 * security none|starttls|tls, userName, password (omitted: kept; "":
 * removed), fromAddress, verifyCertificate}, TestSmtpSettings {to}: a job
 * that sends a test message (answered with its jobID). */
#include "smtp-client.h"

struct instance_call;

/* Settings read for a job's thread; every string owned. */
struct instance_smtp {
	struct smtp_settings set;
	char *host, *user, *password, *from;
};

/* 0 with *smtp_r, -1 with *error_r (none set yet: says so). */
int instance_smtp_load(const char *base_dir, const char *key_file, struct instance_smtp **smtp_r,
		       const char **error_r);
void instance_smtp_free(struct instance_smtp **smtp);
/* Make bare LF line ends CRLF (SMTP's form): a new buffer, *len_r its length. */
unsigned char *instance_smtp_crlf(const unsigned char *data, size_t len, size_t *len_r);

int instance_smtp_get(struct instance_call *c);
int instance_smtp_set(struct instance_call *c);
int instance_smtp_test(struct instance_call *c);

#endif
