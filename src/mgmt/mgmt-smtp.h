#ifndef COFFER_MGMT_SMTP_H
#define COFFER_MGMT_SMTP_H
/* mgmt-smtp: sending mail with the system SMTP configuration
 * (SetSystemSmtpConfiguration): test messages and restores to mailboxes.
 *
 * Contract: mgmt_smtp_send() copies what it needs and sends from a thread of
 * its own (SMTP servers may be slow; the event loop serves everyone
 * meanwhile). `done` is called exactly once, later, on the event loop, with
 * NULL or an error text (valid during the call). The envelope sender is the
 * configured fromAddress; the message's bytes go out unchanged. */
#include <stddef.h>

#include "smtp-client.h"

struct mgmt;

typedef void mgmt_smtp_done_fn(const char *error, void *ctx);

void mgmt_smtp_send(struct mgmt *mgmt, const char *to, const void *message, size_t size,
		    mgmt_smtp_done_fn *done, void *ctx);
/* The configured sender address (borrowed), or NULL before any settings. */
const char *mgmt_smtp_from(struct mgmt *mgmt);

#endif
