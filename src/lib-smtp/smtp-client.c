#include "smtp-client.h"
#include "crypto.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SMTP_DEFAULT_TIMEOUT_SECS 60
#define SMTP_REPLY_MAX 300
#define SMTP_LINE_MAX 998
#define SMTP_ENCODED_WORD_MAX_BYTES 45 /* 60 base64 chars: an encoded-word < 76 */

static pthread_once_t smtp_once = PTHREAD_ONCE_INIT;
static CURLcode smtp_global_rc;

static void smtp_init_once(void)
{
	smtp_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int smtp_init(const char **error_r)
{
	if (pthread_once(&smtp_once, smtp_init_once) != 0) {
		*error_r = "SMTP client initialisation failed (pthread_once)";
		return -1;
	}
	if (smtp_global_rc != CURLE_OK) {
		*error_r = tstr_printf("libcurl initialisation failed: %s",
				       curl_easy_strerror(smtp_global_rc));
		return -1;
	}
	return 0;
}

/* ---- sending ---- */

struct smtp_transfer {
	const unsigned char *data;
	size_t size, offset;
	/* The server's last refusal (4xx/5xx reply line) and the partial line
	 * being received. */
	char reply[SMTP_REPLY_MAX + 1];
	struct str *line;
};

static size_t smtp_read_cb(char *buf, size_t size, size_t nitems, void *context)
{
	struct smtp_transfer *t = context;
	size_t room = size * nitems, left = t->size - t->offset;
	size_t n = left < room ? left : room;
	memcpy(buf, t->data + t->offset, n);
	t->offset += n;
	return n;
}

static void smtp_reply_line(struct smtp_transfer *t, const char *line, size_t len)
{
	/* Keep the last refusal: a final reply line ("DDD text" or "DDD";
	 * "DDD-text" continues) with a 4xx or 5xx code. After a refusal curl
	 * still sends QUIT, so the very last reply is usually "221 Bye". */
	if (len < 3 || (line[0] != '4' && line[0] != '5') || (len > 3 && line[3] != ' '))
		return;
	size_t o = 0;
	for (size_t i = 0; i < len && o < SMTP_REPLY_MAX; i++) {
		unsigned char c = (unsigned char)line[i];
		t->reply[o++] = c >= 0x20 && c != 0x7f ? (char)c : '?';
	}
	t->reply[o] = '\0';
}

/* Called (with CURLOPT_VERBOSE) for everything curl sends and receives. Only
 * the server's replies are looked at; what the client sends (AUTH with the
 * credentials) is ignored. */
static int smtp_debug_cb(CURL *handle, curl_infotype type, char *data, size_t size, void *context)
{
	struct smtp_transfer *t = context;
	if (type != CURLINFO_HEADER_IN)
		return 0;
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n') {
			size_t len = str_len(t->line);
			const char *s = str_c(t->line);
			if (len > 0 && s[len - 1] == '\r')
				len--;
			smtp_reply_line(t, s, len);
			str_truncate(t->line, 0);
		} else if (str_len(t->line) < 4096) {
			str_append_c(t->line, data[i]);
		}
	}
	return 0;
}

static bool smtp_address_valid(const char *addr, bool allow_empty)
{
	if (*addr == '\0')
		return allow_empty;
	return strpbrk(addr, "\r\n<> \t") == NULL;
}

static const char *smtp_redact(const char *text, const char *password)
{
	if (password == NULL || *password == '\0' || strstr(text, password) == NULL)
		return text;
	struct str *out = str_create(strlen(text));
	size_t plen = strlen(password);
	const char *p;
	while ((p = strstr(text, password)) != NULL) {
		str_append_n(out, text, (size_t)(p - text));
		str_append(out, "***");
		text = p + plen;
	}
	str_append(out, text);
	const char *result = tstr_dup(str_c(out));
	str_destroy(&out);
	return result;
}

static int smtp_check_input(const struct smtp_settings *set, const struct smtp_message *msg,
			    const char **error_r)
{
	if (set->host == NULL || *set->host == '\0' || set->port == 0 || set->port > 65535) {
		*error_r = tstr_printf("SMTP server %s:%u is not a host and port (1-65535)",
				       set->host == NULL ? "" : set->host, set->port);
		return -1;
	}
	if (strpbrk(set->host, "/?#@ \r\n[]") != NULL) {
		*error_r = tstr_printf("SMTP server host \"%s\" is not a host name or address",
				       set->host);
		return -1;
	}
	if (!smtp_address_valid(msg->from, true)) {
		*error_r = tstr_printf("sender address \"%s\" is not a bare address "
				       "(no spaces, line breaks or <>)",
				       msg->from);
		return -1;
	}
	if (msg->to_count == 0) {
		*error_r = "message has no recipients";
		return -1;
	}
	for (size_t i = 0; i < msg->to_count; i++) {
		if (!smtp_address_valid(msg->to[i], false)) {
			*error_r = tstr_printf("recipient address \"%s\" is not a bare address "
					       "(no spaces, line breaks or <>)",
					       msg->to[i]);
			return -1;
		}
	}
	return 0;
}

int smtp_security_parse(const char *text, enum smtp_security *security_r)
{
	if (text == NULL || strcmp(text, "starttls") == 0)
		*security_r = SMTP_SECURITY_STARTTLS;
	else if (strcmp(text, "tls") == 0)
		*security_r = SMTP_SECURITY_TLS;
	else if (strcmp(text, "none") == 0)
		*security_r = SMTP_SECURITY_NONE;
	else
		return -1;
	return 0;
}

#define SMTP_SETOPT(curl, opt, val)                                                                \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(curl, opt, val);                                     \
	} while (0)

int smtp_send(const struct smtp_settings *set, const struct smtp_message *msg, const char **error_r)
{
	if (smtp_init(error_r) < 0 || smtp_check_input(set, msg, error_r) < 0)
		return -1;
	CURL *curl = curl_easy_init();
	if (curl == NULL) {
		*error_r = "curl_easy_init() failed";
		return -1;
	}
	struct smtp_transfer t = {.data = msg->data, .size = msg->size};
	t.line = str_create(256);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *rcpts = NULL;
	for (size_t i = 0; i < msg->to_count; i++) {
		struct curl_slist *next = curl_slist_append(rcpts, msg->to[i]);
		if (next == NULL) {
			curl_slist_free_all(rcpts);
			curl_easy_cleanup(curl);
			str_destroy(&t.line);
			*error_r = "curl_slist_append() failed";
			return -1;
		}
		rcpts = next;
	}
	/* IPv6 addresses need brackets in the URL. */
	bool v6 = strchr(set->host, ':') != NULL;
	char *url =
		mem_printf("%s://%s%s%s:%u", set->security == SMTP_SECURITY_TLS ? "smtps" : "smtp",
			   v6 ? "[" : "", set->host, v6 ? "]" : "", set->port);
	long timeout = set->timeout_secs > 0 ? (long)set->timeout_secs : SMTP_DEFAULT_TIMEOUT_SECS;

	CURLcode rc = CURLE_OK;
	SMTP_SETOPT(curl, CURLOPT_ERRORBUFFER, errbuf);
	SMTP_SETOPT(curl, CURLOPT_URL, url);
	SMTP_SETOPT(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SMTP_SETOPT(curl, CURLOPT_NOSIGNAL, 1L);
	SMTP_SETOPT(curl, CURLOPT_TIMEOUT, timeout);
	SMTP_SETOPT(curl, CURLOPT_CONNECTTIMEOUT, timeout);
	SMTP_SETOPT(curl, CURLOPT_USE_SSL,
		    set->security == SMTP_SECURITY_NONE ? (long)CURLUSESSL_NONE
							: (long)CURLUSESSL_ALL);
	SMTP_SETOPT(curl, CURLOPT_SSL_VERIFYPEER, set->verify_certificate ? 1L : 0L);
	SMTP_SETOPT(curl, CURLOPT_SSL_VERIFYHOST, set->verify_certificate ? 2L : 0L);
	if (set->user != NULL) {
		SMTP_SETOPT(curl, CURLOPT_USERNAME, set->user);
		SMTP_SETOPT(curl, CURLOPT_PASSWORD, set->password != NULL ? set->password : "");
	}
	SMTP_SETOPT(curl, CURLOPT_MAIL_FROM, msg->from);
	SMTP_SETOPT(curl, CURLOPT_MAIL_RCPT, rcpts);
	SMTP_SETOPT(curl, CURLOPT_UPLOAD, 1L);
	SMTP_SETOPT(curl, CURLOPT_READFUNCTION, smtp_read_cb);
	SMTP_SETOPT(curl, CURLOPT_READDATA, &t);
	SMTP_SETOPT(curl, CURLOPT_DEBUGFUNCTION, smtp_debug_cb);
	SMTP_SETOPT(curl, CURLOPT_DEBUGDATA, &t);
	SMTP_SETOPT(curl, CURLOPT_VERBOSE, 1L);
	if (rc != CURLE_OK) {
		*error_r = tstr_printf("SMTP to %s:%u: setting up libcurl failed: %s", set->host,
				       set->port, curl_easy_strerror(rc));
	} else {
		rc = curl_easy_perform(curl);
		if (rc != CURLE_OK) {
			long code = 0;
			if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
				code = 0;
			/* Only a refusal is worth quoting; "220 Ready to start TLS"
			 * before a certificate error would mislead. */
			bool quote = code >= 400 && t.reply[0] != '\0';
			const char *text = tstr_printf(
				"SMTP to %s:%u failed: %s%s%s%s%s%s", set->host, set->port,
				curl_easy_strerror(rc), errbuf[0] != '\0' ? " (" : "", errbuf,
				errbuf[0] != '\0' ? ")" : "", quote ? "; server said: " : "",
				quote ? t.reply : "");
			*error_r = smtp_redact(text, set->password);
		}
	}
	crypto_wipe(errbuf, sizeof(errbuf));
	mem_free(url);
	curl_slist_free_all(rcpts);
	curl_easy_cleanup(curl);
	str_destroy(&t.line);
	return rc == CURLE_OK ? 0 : -1;
}

/* ---- building messages ---- */

static bool smtp_header_needs_encoding(const char *value)
{
	size_t len = 0;
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++, len++) {
		if (*p >= 0x80 || (*p < 0x20 && *p != '\t') || *p == 0x7f)
			return true;
	}
	/* A header line must stay under 998 bytes. */
	return len > 900;
}

/* Length of the UTF-8 sequence starting with byte c (1 for stray bytes). */
static size_t smtp_utf8_seq_len(unsigned char c)
{
	if (c >= 0xf0 && c < 0xf8)
		return 4;
	if (c >= 0xe0)
		return c < 0xf0 ? 3 : 1;
	if (c >= 0xc0)
		return 2;
	return 1;
}

/* RFC 2047 B encoded-words, each < 76 characters and holding whole UTF-8
 * characters, separated by folding whitespace. Line breaks become spaces. */
static void smtp_append_encoded_words(struct str *out, const char *value)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(value), pos = 0;
	bool first = true;
	while (pos < len) {
		size_t end = pos;
		while (end < len) {
			size_t n = smtp_utf8_seq_len((unsigned char)value[end]);
			if (end + n > len)
				n = len - end;
			if (end + n - pos > SMTP_ENCODED_WORD_MAX_BYTES && end > pos)
				break;
			end += n;
		}
		if (!first)
			str_append(out, "\r\n ");
		first = false;
		str_append(out, "=?UTF-8?B?");
		for (size_t i = pos; i < end; i += 3) {
			unsigned char in[3] = {0, 0, 0};
			size_t n = end - i < 3 ? end - i : 3;
			for (size_t j = 0; j < n; j++) {
				unsigned char c = (unsigned char)value[i + j];
				in[j] = c == '\r' || c == '\n' ? ' ' : c;
			}
			unsigned int v =
				(unsigned int)in[0] << 16 | (unsigned int)in[1] << 8 | in[2];
			str_append_c(out, b64[(v >> 18) & 63]);
			str_append_c(out, b64[(v >> 12) & 63]);
			str_append_c(out, n > 1 ? b64[(v >> 6) & 63] : '=');
			str_append_c(out, n > 2 ? b64[v & 63] : '=');
		}
		str_append(out, "?=");
		pos = end;
	}
}

static void smtp_append_plain(struct str *out, const char *value, size_t len)
{
	for (size_t i = 0; i < len; i++)
		str_append_c(out, value[i] == '\r' || value[i] == '\n' ? ' ' : value[i]);
}

/* An address header: "Name <addr>" gets its display name encoded if needed;
 * the address itself is left alone (it cannot be encoded). */
static void smtp_append_address_header(struct str *out, const char *name, const char *value)
{
	str_printfa(out, "%s: ", name);
	const char *lt = strrchr(value, '<');
	if (lt != NULL && lt != value && smtp_header_needs_encoding(value)) {
		size_t name_len = (size_t)(lt - value);
		while (name_len > 0 && value[name_len - 1] == ' ')
			name_len--;
		char *display = mem_strndup(value, name_len);
		if (display[0] == '"' && name_len >= 2 && display[name_len - 1] == '"') {
			display[name_len - 1] = '\0';
			smtp_append_encoded_words(out, display + 1);
		} else {
			smtp_append_encoded_words(out, display);
		}
		mem_free(display);
		str_append_c(out, ' ');
		smtp_append_plain(out, lt, strlen(lt));
	} else {
		smtp_append_plain(out, value, strlen(value));
	}
	str_append(out, "\r\n");
}

static void smtp_append_text_header(struct str *out, const char *name, const char *value)
{
	str_printfa(out, "%s: ", name);
	if (smtp_header_needs_encoding(value))
		smtp_append_encoded_words(out, value);
	else
		smtp_append_plain(out, value, strlen(value));
	str_append(out, "\r\n");
}

static void smtp_append_date(struct str *out, time_t now)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	if (gmtime_r(&now, &tm) == NULL) {
		now = 0;
		(void)gmtime_r(&now, &tm);
	}
	/* Fixed English names: strftime's %a/%b follow the locale. */
	str_printfa(out, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
		    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
}

static void smtp_append_message_id(struct str *out, const char *from)
{
	/* The domain of the sender's address, if it is a plain one. */
	const char *at = strrchr(from, '@');
	char *domain = NULL;
	if (at != NULL) {
		size_t n = strspn(at + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					  "0123456789.-");
		if (n > 0)
			domain = mem_strndup(at + 1, n);
	}
	char *random = crypto_random_hex(16);
	str_printfa(out, "Message-ID: <%s@%s>\r\n", random,
		    domain != NULL ? domain : "coffer.invalid");
	mem_free(random);
	mem_free(domain);
}

/* CRLF line ends, lines of at most 998 bytes (broken at a UTF-8 character
 * boundary), and a final CRLF. */
static void smtp_append_body(struct str *out, const char *body)
{
	size_t line_len = 0;
	for (const char *p = body; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n') {
			if (*p == '\r' && p[1] == '\n')
				p++;
			str_append(out, "\r\n");
			line_len = 0;
			continue;
		}
		size_t n = smtp_utf8_seq_len((unsigned char)*p);
		size_t avail = strnlen(p, n);
		if (avail < n)
			n = avail;
		if (line_len + n > SMTP_LINE_MAX) {
			str_append(out, "\r\n");
			line_len = 0;
		}
		str_append_n(out, p, n);
		line_len += n;
		p += n - 1;
	}
	if (line_len > 0)
		str_append(out, "\r\n");
}

char *smtp_build_text_message(const char *from, const char *to, const char *subject,
			      const char *body)
{
	/* The Message-ID is random. crypto_init() is idempotent and fails only
	 * if the system has no randomness, which, like memory exhaustion, the
	 * process cannot work around. */
	if (crypto_init() < 0)
		abort();
	struct str *out = str_create(512 + strlen(body));
	smtp_append_date(out, time(NULL));
	smtp_append_address_header(out, "From", from);
	smtp_append_address_header(out, "To", to);
	smtp_append_text_header(out, "Subject", subject);
	smtp_append_message_id(out, from);
	str_append(out, "MIME-Version: 1.0\r\n"
			"Content-Type: text/plain; charset=utf-8\r\n"
			"Content-Transfer-Encoding: 8bit\r\n"
			"\r\n");
	smtp_append_body(out, body);
	return str_steal(&out);
}
