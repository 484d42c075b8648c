#ifndef COFFER_INSTANCE_TRANSFER_H
#define COFFER_INSTANCE_TRANSFER_H
/* instance-transfer: an administrator's exports and restores, as jobs of
 * the instance (instance-jobs.h: GetJob shows progress, CancelJob stops).
 *
 * Selection (exactly one): folder "USER/PATH" (that folder's messages),
 * query (a search, the query language), or messageIDs (a list).
 *
 * ExportMessages {selection, format zip|mbox|eml, name}: written below
 * <base>/export/ as `name` (letters, digits, '.', '_', '-'; not starting
 * with '.'; never an existing name: no path can leave export/), to a
 * temporary name first, each file fsynced, then renamed into place and the
 * directory fsynced: a crash leaves the old state or the whole export, and
 * a cancelled or failed export leaves nothing (what a killed process left,
 * a hidden ".NAME.tmp-*", the next export removes). Streamed: one message in
 * memory at a time (zip: libzip asks for each entry as it writes it). eml:
 * a directory of ID.eml files; mbox: mboxrd; zip: stored entries
 * USER/PATH/ID.eml. Every file holds the archived bytes unchanged.
 *
 * RestoreMessages {selection, method imap|smtp, target, password}: imap:
 * APPEND to target {host, port, security tls|starttls, fingerprint, login,
 * folder} (lib-source's source-append: verified TLS, no insecure mode),
 * the internal date kept; smtp: each message sent unchanged (CRLF) to
 * target {to} with the instance's SMTP settings (instance-smtp.h). A
 * message that fails is counted and named in the result's report; the job
 * goes on. The password is never in the job's arguments, the audit log or
 * any answer.
 *
 * Both are audited twice: the call (who, which selection, where) and its
 * outcome (ExportMessagesDone, RestoreMessagesDone: the job, its state and
 * counts). */

struct instance_call;

#define INSTANCE_TRANSFER_MAX_MESSAGES 1000000

int instance_transfer_export(struct instance_call *c);
int instance_transfer_restore(struct instance_call *c);

#endif
