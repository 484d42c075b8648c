#include "cli-journal.h"
#include "auth-salted.h"
#include "config.h"
#include "crypto.h"
#include "file.h"
#include "json.h"
#include "mem.h"
#include "tstr.h"

#include <stdio.h>
#include <string.h>

#define CLI_JOURNAL_FILE "journal.json"
#define CLI_JOURNAL_MAX (1024 * 1024)

/* The keys the Instance Host reads (host-journal.c); anything else is a typo. */
static const char *const cli_journal_keys[] = {"smtpListeners",
					       "lmtpListeners",
					       "hostname",
					       "starttls",
					       "allowedNetworks",
					       "authRequired",
					       "authUsers",
					       "maxMessageSize",
					       "maxRecipients",
					       "maxConnections",
					       "maxConnectionsPerClient",
					       "timeoutSeconds",
					       "instances",
					       "smtpPort",
					       "lmtpPort",
					       NULL};

static int cli_journal_check(const struct json *set, const char **error_r)
{
	if (json_kind(set) != JSON_KIND_OBJECT) {
		*error_r = "the journal settings must be a JSON object";
		return -1;
	}
	for (void *it = json_iter(set); it != NULL; it = json_iter_next(set, it)) {
		const char *key = json_iter_key(it);
		bool known = false;
		for (size_t i = 0; cli_journal_keys[i] != NULL; i++)
			known |= strcmp(cli_journal_keys[i], key) == 0;
		if (!known) {
			*error_r = tstr_printf("unknown setting '%s' (docs/sources.md lists them)",
					       key);
			return -1;
		}
	}
	const struct json *list = json_get(set, "instances");
	if (list != NULL && json_kind(list) != JSON_KIND_ARRAY) {
		*error_r = "instances: expected an array";
		return -1;
	}
	return 0;
}

static int cli_journal_load(const char *path, struct json **set_r, const char **error_r)
{
	char *text;
	size_t len;
	if (file_read_all(path, CLI_JOURNAL_MAX, &text, &len, error_r) < 0)
		return -1;
	int ret = json_parse(text, len, set_r, error_r);
	mem_free(text);
	if (ret == 0 && cli_journal_check(*set_r, error_r) < 0) {
		json_unref(set_r);
		ret = -1;
	}
	if (ret < 0)
		*error_r = tstr_printf("%s: %s", path, *error_r);
	return ret;
}

static int cli_journal_save(const char *config_dir, const struct json *set, const char **error_r)
{
	char *path = config_path(config_dir, CLI_JOURNAL_FILE);
	char *text = json_serialize(set, true);
	/* it holds password hashes: for the Instance Host only */
	int ret = file_write_atomic(path, text, strlen(text), 0600, error_r);
	mem_free(text);
	mem_free(path);
	return ret;
}

static int cli_journal_password(const char *config_dir, const char *user, const char **error_r)
{
	char *path = config_path(config_dir, CLI_JOURNAL_FILE);
	struct json *set = NULL;
	int exists = file_exists(path, error_r);
	int ret = exists < 0 ? -1 : exists == 0 ? 0 : cli_journal_load(path, &set, error_r);
	mem_free(path);
	if (ret < 0)
		return -1;
	if (set == NULL)
		set = json_new_object();
	if (json_get(set, "authUsers") == NULL)
		json_set(set, "authUsers", json_new_array());
	struct json *list = json_get(set, "authUsers");
	for (size_t i = json_count(list); i > 0; i--) {
		if (strcmp(json_get_string(json_at(list, i - 1), "userName") ?: "", user) == 0)
			(void)json_remove_at(list, i - 1);
	}
	/* 128 random bits: a salted SHA-256 is then as good as any slow hash */
	char *password = crypto_random_hex(16);
	json_append(list, auth_salted_entry(user, password));
	ret = cli_journal_save(config_dir, set, error_r);
	if (ret == 0)
		printf("%s\n", password);
	crypto_wipe(password, strlen(password));
	mem_free(password);
	json_unref(&set);
	return ret;
}

int cli_journal_main(const char *config_dir, const char *const *pos, size_t count,
		     const char **error_r)
{
	const char *sub = count > 1 ? pos[1] : "";
	struct json *set = NULL;
	if (strcmp(sub, "set") == 0 && count == 3) {
		if (cli_journal_load(pos[2], &set, error_r) < 0)
			return -1;
		int ret = cli_journal_save(config_dir, set, error_r);
		json_unref(&set);
		if (ret == 0)
			printf("journal settings saved; restart the Instance Host to apply them "
			       "(coffer config restart instance-host)\n");
		return ret;
	}
	if (strcmp(sub, "show") == 0 && count == 2) {
		char *path = config_path(config_dir, CLI_JOURNAL_FILE);
		int exists = file_exists(path, error_r);
		int ret = exists <= 0 ? exists : cli_journal_load(path, &set, error_r);
		mem_free(path);
		if (ret < 0)
			return -1;
		char *text = set != NULL ? json_serialize(set, true) : mem_strdup("{}");
		printf("%s\n", text);
		mem_free(text);
		json_unref(&set);
		return 0;
	}
	if (strcmp(sub, "password") == 0 && count == 3)
		return cli_journal_password(config_dir, pos[2], error_r);
	*error_r = "expected: journal show | journal set FILE | journal password USER";
	return -2;
}
