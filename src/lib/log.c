#include "log.h"
#include "mem.h"
#include "tstr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_role[64] = "coffer";
static char *log_path;
static int log_fd = STDERR_FILENO;
static enum log_level log_min_level = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {"debug", "info", "warning", "error"};

void log_init(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

int log_open_file(const char *path, const char **error_r)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		*error_r = tstr_printf("open(%s) failed: %s", path, strerror(errno));
		return -1;
	}
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	mem_free(log_path);
	log_path = mem_strdup(path);
	return 0;
}

void log_reopen(void)
{
	const char *error;
	if (log_path != NULL) {
		char *path = mem_strdup(log_path);
		(void)log_open_file(path, &error);
		mem_free(path);
	}
}

void log_set_min_level(enum log_level level)
{
	log_min_level = level;
}

static void log_append_escaped(char *buf, size_t size, size_t *pos, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*pos + 5 >= size)
			break;
		if (*p < 0x20 || *p == 0x7f)
			*pos += (size_t)snprintf(buf + *pos, size - *pos, "\\x%02x", *p);
		else
			buf[(*pos)++] = (char)*p;
	}
}

void log_vmsg(enum log_level level, const char *context, const char *fmt, va_list args)
{
	if (level < log_min_level)
		return;
	char message[4096], line[8192];
	vsnprintf(message, sizeof(message), fmt, args);

	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t pos = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	pos += (size_t)snprintf(line + pos, sizeof(line) - pos,
				".%03ldZ coffer[%ld] %s %s: ", (long)tv.tv_usec / 1000,
				(long)getpid(), log_role, log_level_names[level]);
	if (context != NULL && context[0] != '\0') {
		log_append_escaped(line, sizeof(line), &pos, context);
		line[pos++] = ':';
		line[pos++] = ' ';
	}
	log_append_escaped(line, sizeof(line), &pos, message);
	line[pos++] = '\n';
	/* One write() per line keeps lines whole when several processes share a file. */
	ssize_t ret = write(log_fd, line, pos);
	(void)ret;
}

void log_msg(enum log_level level, const char *context, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	log_vmsg(level, context, fmt, args);
	va_end(args);
}

bool log_throttle_pass(struct log_throttle *t, unsigned int every_secs, unsigned int *count_r)
{
	long long now = (long long)time(NULL);
	t->count++;
	if (t->last != 0 && now - t->last < (long long)every_secs)
		return false;
	*count_r = t->count;
	t->count = 0;
	t->last = now;
	return true;
}
