#ifndef COFFER_SMTP_CLIENT_H
#define COFFER_SMTP_CLIENT_H
/* smtp-client: sending mail (notifications, reports) through an SMTP relay
 * (the only module that uses libcurl).
 *
 * Contract: smtp_send() delivers one message to all recipients in one SMTP
 * transaction and blocks until the server accepted it, failed, or
 * timeout_secs (0 = 60) passed; it returns 0, or -1 with *error_r naming
 * host:port, what failed and, when the server refused something, the server's
 * reply (e.g. "550 5.1.1 <x@example.com>: Recipient address rejected"). It
 * fails if the server refuses any recipient. The password never appears in
 * error texts. SMTP_SECURITY_STARTTLS requires the upgrade (a server without
 * STARTTLS is an error); SMTP_SECURITY_TLS is implicit TLS (smtps, port 465).
 * Certificates are checked against the system's CAs and the host name unless
 * verify_certificate is false (self-signed test servers only). With
 * SMTP_SECURITY_NONE a password is sent in clear text if the server offers
 * AUTH; if the server offers no AUTH, the message is sent without logging in.
 * Envelope addresses (msg->from, msg->to) are bare addresses without CR, LF,
 * spaces or angle brackets; from may be "" (null sender). Message data should use
 * CRLF line ends; dot-stuffing is done here. Thread-safe (no shared state
 * besides libcurl's one-time global initialisation).
 *
 * smtp_build_text_message() makes an RFC 5322 text/plain message (UTF-8, 8bit)
 * with Date, Message-ID (random, at the sender's domain), MIME headers and
 * CRLF line ends; header values with non-ASCII characters (or too long for
 * one line) are RFC 2047 encoded-words, line breaks in header values become
 * spaces, and body lines longer than 998 bytes are broken. mem_free(). */
#include <stdbool.h>
#include <stddef.h>

enum smtp_security {
	SMTP_SECURITY_NONE,
	SMTP_SECURITY_STARTTLS,
	SMTP_SECURITY_TLS,
};

struct smtp_settings {
	const char *host;
	unsigned int port;
	enum smtp_security security;
	const char *user; /* NULL = no AUTH */
	const char *password;
	bool verify_certificate; /* false for self-signed test servers */
	unsigned int timeout_secs;
};

struct smtp_message {
	const char *from;
	const char *const *to;
	size_t to_count;
	const void *data; /* the full RFC 5322 message */
	size_t size;
};

/* "none", "starttls" (also for NULL: the default) or "tls": 0, else -1. */
int smtp_security_parse(const char *text, enum smtp_security *security_r);
int smtp_send(const struct smtp_settings *set, const struct smtp_message *msg,
	      const char **error_r);
char *smtp_build_text_message(const char *from, const char *to, const char *subject,
			      const char *body);

#endif
