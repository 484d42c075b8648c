#include "instance-journal.h"
#include "instance-archive.h"
#include "instance-calls.h"
#include "instance-users.h"
#include "instance.h"
#include "archive-import.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "rpc.h"
#include "tstr.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int instance_journal_resolve(struct instance_call *c)
{
	const char *address = json_get_string(c->args, "address");
	const char *catch_all = json_get_string(c->args, "catchAllUser");
	if (address == NULL || address[0] == '\0') {
		c->code = "bad-request";
		c->error = "address: missing";
		return -1;
	}
	const char *user = instance_users_find_by_address(c->inst->users, address);
	if (user == NULL && catch_all != NULL)
		user = catch_all;
	const char *archive_name =
		user == NULL ? NULL : instance_users_archive_name(c->inst->users, user);
	if (archive_name == NULL) {
		c->code = "no-such-user";
		c->error = user == NULL ? tstr_printf("no user has the address %s", address)
					: tstr_printf("the catch-all user %s does not exist", user);
		return -1;
	}
	c->result = json_new_object();
	json_set_string(c->result, "userName", user);
	json_set_string(c->result, "archiveName", archive_name);
	return 0;
}

/* A spool file's name as the Instance Host makes them: m-HEX.eml. */
static bool instance_journal_name_ok(const char *name)
{
	size_t len = name == NULL ? 0 : strlen(name);
	if (len < 7 || len > 100 || strncmp(name, "m-", 2) != 0 ||
	    strcmp(name + len - 4, ".eml") != 0)
		return false;
	for (size_t i = 2; i < len - 4; i++) {
		if (strchr("0123456789abcdef", name[i]) == NULL)
			return false;
	}
	return true;
}

/* COFFER_TEST_JOURNAL_DELAY_MS (tests only, see instance-journal.h): the
 * answer waits after the commit, so a test can kill the process between
 * the commit and the Instance Host's 250. */
static void instance_journal_test_delay(void)
{
	const char *ms = getenv("COFFER_TEST_JOURNAL_DELAY_MS");
	if (ms != NULL && atoi(ms) > 0)
		usleep((useconds_t)atoi(ms) * 1000);
}

struct instance_journal_pending {
	struct instance *inst;
	struct rpc_conn *conn;
	uint32_t id;
	char *path;
	size_t owners;
};

static struct json *instance_journal_result(size_t owners, unsigned int archived,
					    unsigned int duplicates)
{
	struct json *r = json_new_object();
	json_set_int(r, "owners", (long long)owners);
	json_set_int(r, "archived", archived);
	json_set_int(r, "duplicates", duplicates);
	return r;
}

/* Committed: the spool file has served (a leftover would only be filed
 * again as a duplicate). */
static void instance_journal_committed(struct instance *inst, const char *path, size_t owners,
				       unsigned int archived, unsigned int duplicates)
{
	(void)unlink(path);
	log_info(tstr_printf("instance=%s", inst->id),
		 "journal message archived for %zu user(s): %u new, %u already held", owners,
		 archived, duplicates);
	instance_journal_test_delay();
}

/* A message filed through a running import (instance-archive.h). */
static void instance_journal_filed(int ret, unsigned int archived, unsigned int duplicates,
				   const char *code, const char *error, void *ctx)
{
	struct instance_journal_pending *p = ctx;
	if (ret == 0) {
		instance_journal_committed(p->inst, p->path, p->owners, archived, duplicates);
		rpc_conn_reply(p->conn, p->id,
			       instance_journal_result(p->owners, archived, duplicates));
	} else {
		rpc_conn_reply_error(p->conn, p->id, code, error);
	}
	mem_free(p->path);
	mem_free(p);
}

int instance_journal_deliver(struct instance_call *c)
{
	const char *file = json_get_string(c->args, "file");
	const struct json *list = json_get(c->args, "owners");
	size_t n = json_count(list);
	if (!instance_journal_name_ok(file) || n == 0) {
		c->code = "bad-request";
		c->error = "file: a spool file name (m-HEX.eml) and owners: archive names";
		return -1;
	}
	const char **owners = mem_alloc(sizeof(*owners) * n);
	for (size_t i = 0; i < n; i++) {
		owners[i] = json_string_of(json_at(list, i));
		if (owners[i] == NULL) {
			mem_free(owners);
			c->code = "bad-request";
			c->error = "owners: expected strings";
			return -1;
		}
	}
	char *path = mem_strdup(
		tstr_printf("%s/%s/%s", c->inst->base_dir, INSTANCE_JOURNAL_SPOOL, file));
	unsigned int archived, duplicates;
	int ret = instance_archive_file_message(
		c->inst->archive, path, owners, n, INSTANCE_JOURNAL_FOLDER,
		ARCHIVE_IMPORT_MAX_MESSAGE_LIMIT, &archived, &duplicates, &c->code, &c->error);
	if (ret < 0 && strcmp(c->code, "busy") == 0) {
		/* an import holds the writer: go through its pipeline */
		struct instance_journal_pending *p = mem_new(struct instance_journal_pending);
		p->inst = c->inst;
		p->conn = c->conn;
		p->id = c->id;
		p->path = path;
		p->owners = n;
		if (instance_archive_file_message_queued(c->inst->archive, c->inst->base, path,
							 owners, n, INSTANCE_JOURNAL_FOLDER,
							 instance_journal_filed, p) == 1) {
			mem_free(owners);
			return INSTANCE_CALL_ANSWERED;
		}
		mem_free(p);
	}
	mem_free(owners);
	if (ret == 0) {
		instance_journal_committed(c->inst, path, n, archived, duplicates);
		c->result = instance_journal_result(n, archived, duplicates);
	}
	mem_free(path);
	return ret;
}
