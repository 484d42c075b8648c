#include "cli-config.h"
#include "cli-api.h"
#include "cli-args.h"
#include "cli-journal.h"
#include "cli-relocate.h"
#include "config.h"
#include "crypto.h"
#include "file.h"
#include "json.h"
#include "mem.h"
#include "mgmtdb.h"
#include "service.h"
#include "str.h"
#include "tls.h"
#include "tstr.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLI_CERT_DAYS 3650
#define CLI_START_TIMEOUT_SECS 30

/* Each command's synopsis, for `coffer config --help` (all) and
 * `coffer config COMMAND --help` (its own, with the notes it refers to). */
static const struct {
	const char *command; /* as cli_config_command_key() names it */
	const char *usage;
	bool roles; /* the usage refers to ROLE, FIELDS or listeners */
} cli_config_usages[] = {
	{"init",
	 "  init --mode single|multi [--server-name NAME] [--run-as USER]\n"
	 "       [--admin-name NAME --admin-password PW] [--product-key KEY]\n"
	 "                          set up this server (single: all three roles)\n",
	 false},
	{"role add",
	 "  role add ROLE [FIELDS]  add a role (management-server: --admin-name, "
	 "--admin-password)\n",
	 true},
	{"role configure", "  role configure ROLE FIELDS   change a role's settings\n", true},
	{"role show",
	 "  role show [ROLE] [--json]    show settings, certificates and service state\n", true},
	{"role remove", "  role remove ROLE        remove a stopped role\n", true},
	{"start", "  start|stop|restart|status [ROLE]\n", true},
	{"pair",
	 "  pair --management-server HOST [--api-port 8470] [--admin-name NAME]\n"
	 "       [--admin-password PW] [--fingerprint FP | --trust-on-first-use] [--role ROLE]\n",
	 true},
	{"cert",
	 "  cert show ROLE [KIND]   KIND: tcp, http or imap\n"
	 "  cert export ROLE KIND FILE [--password-file PWFILE]   (.p12/.pfx: PKCS#12, else "
	 "PEM)\n"
	 "  cert import ROLE KIND FILE [--key KEYFILE] [--password-file PWFILE]\n"
	 "       PWFILE: first line = PKCS#12 password (- = stdin); else asked on the terminal\n"
	 "  cert renew ROLE KIND [--days N]\n",
	 true},
	{"rename", "  rename NEW-SERVER-NAME  rename this server (every role on it)\n", false},
	{"relocate",
	 "  relocate --from OLD --to NEW   after moving instance base directories from below\n"
	 "                          OLD to below NEW: rewrite them (services stopped)\n",
	 false},
	{"show", "  show [ROLE] [--json]    the same as role show\n", true},
	{"journal",
	 "  journal show | set FILE | password USER   the journal receiver's settings\n"
	 "                          (docs/sources.md); restart the Instance Host to apply\n",
	 false},
};

static const char cli_config_usage_roles[] =
	"\n"
	"ROLE: management-server, instance-host, client-access-server\n"
	"FIELDS: --server-name, --tcp-listeners, --http-listeners, --http-enabled,\n"
	"  --imap-listeners, --imap-enabled, --imaps-listeners, --imaps-enabled,\n"
	"  --management-server, --management-port, --management-fingerprint, --product-key\n"
	"Listeners: comma-separated HOST:PORT (* for every address).\n";

/* The usage of one command, or of all (command NULL or unknown). */
static void cli_config_print_usage(FILE *out, const char *command)
{
	size_t n = sizeof(cli_config_usages) / sizeof(cli_config_usages[0]), found = n;
	for (size_t i = 0; command != NULL && i < n; i++) {
		if (strcmp(cli_config_usages[i].command, command) == 0)
			found = i;
	}
	fputs("usage: coffer config [--config-dir DIR] COMMAND ...\n\n", out);
	for (size_t i = 0; i < n; i++) {
		if (found == n || i == found)
			fputs(cli_config_usages[i].usage, out);
	}
	if (found == n || cli_config_usages[found].roles)
		fputs(cli_config_usage_roles, out);
}

static const char *const cli_config_fields[] = {"server-name",
						"tcp-listeners",
						"http-listeners",
						"http-enabled",
						"imap-listeners",
						"imap-enabled",
						"imaps-listeners",
						"imaps-enabled",
						"management-server",
						"management-port",
						"management-fingerprint",
						"product-key",
						NULL};

static const char *const cli_config_flags[] = {"json", "trust-on-first-use", "help", NULL};
/* Every option that takes a value, of any command (each command's own are
 * checked by cli_config_check_options()). */
static const char *const cli_config_value_options[] = {"config-dir",
						       "mode",
						       "server-name",
						       "run-as",
						       "admin-name",
						       "admin-password",
						       "product-key",
						       "tcp-listeners",
						       "http-listeners",
						       "http-enabled",
						       "imap-listeners",
						       "imap-enabled",
						       "imaps-listeners",
						       "imaps-enabled",
						       "management-server",
						       "management-port",
						       "management-fingerprint",
						       "api-port",
						       "fingerprint",
						       "role",
						       "password",
						       "password-file",
						       "key",
						       "days",
						       "from",
						       "to",
						       NULL};

struct cli_config {
	const char *dir;
	struct cli_args args;
	const char *const *pos; /* positional arguments after the command */
	size_t pos_count;
};

static int cli_fail(const char *error)
{
	fprintf(stderr, "coffer config: %s\n", error);
	return 1;
}

/* ---- small helpers ---- */

static const char *cli_local_server_name(void)
{
	char host[256] = "localhost";
	if (gethostname(host, sizeof(host) - 1) < 0)
		return "localhost";
	struct addrinfo hints = {.ai_flags = AI_CANONNAME}, *res;
	if (getaddrinfo(host, NULL, &hints, &res) == 0) {
		const char *canon = tstr_dup(res->ai_canonname != NULL ? res->ai_canonname : host);
		freeaddrinfo(res);
		return canon;
	}
	return tstr_dup(host);
}

static int cli_run(char *const argv[], const char **error_r)
{
	pid_t pid = fork();
	if (pid < 0) {
		*error_r = tstr_printf("fork() failed: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	int status;
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		*error_r = tstr_printf("%s failed", argv[0]);
		return -1;
	}
	return 0;
}

static int cli_ensure_user(const char *user, const char **error_r)
{
	if (user[0] == '\0' || getpwnam(user) != NULL)
		return 0;
	char *argv[] = {
		"useradd",      "--system", "--user-group",      "--no-create-home", "--home-dir",
		"/nonexistent", "--shell",  "/usr/sbin/nologin", (char *)user,       NULL};
	if (cli_run(argv, error_r) < 0) {
		*error_r = tstr_printf("cannot create the run-as user '%s': %s", user, *error_r);
		return -1;
	}
	return 0;
}

static uid_t cli_chown_uid;
static gid_t cli_chown_gid;

static int cli_chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)lchown(path, cli_chown_uid, cli_chown_gid);
	return 0;
}

/* Daemons run as the run-as user: they must own what they read and write. */
static void cli_fix_ownership(const char *dir)
{
	struct config_server server;
	const char *error;
	if (geteuid() != 0 || config_server_load(dir, &server, &error) < 0)
		return;
	struct passwd *pw = server.run_as_user[0] == '\0' ? NULL : getpwnam(server.run_as_user);
	if (pw != NULL) {
		cli_chown_uid = pw->pw_uid;
		cli_chown_gid = pw->pw_gid;
		(void)nftw(dir, cli_chown_one, 16, FTW_PHYS);
	}
	config_server_free(&server);
}

static int cli_make_dirs(const char *dir, const char **error_r)
{
	static const char *const subdirs[] = {"", "/certs", "/run", "/log"};
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		char *path = mem_printf("%s%s", dir, subdirs[i]);
		int ret = file_mkdir_parents(path, 0750, error_r);
		mem_free(path);
		if (ret < 0)
			return -1;
	}
	return 0;
}

/* run/ and log/ hold nothing worth keeping, so a backup may leave them out
 * (docs/operations.md does): a restored config directory gets them back at
 * the first start, owned by the run-as user. */
static int cli_restore_runtime_dirs(const char *dir, const char **error_r)
{
	char *run = mem_printf("%s/run", dir), *log = mem_printf("%s/log", dir);
	int have_run = file_exists(run, error_r), have_log = file_exists(log, error_r);
	mem_free(run);
	mem_free(log);
	if (have_run < 0 || have_log < 0)
		return -1;
	if (have_run == 1 && have_log == 1)
		return 0;
	if (cli_make_dirs(dir, error_r) < 0)
		return -1;
	cli_fix_ownership(dir);
	return 0;
}

static bool cli_role_running(const char *dir, enum config_role role)
{
	char *pid_path = config_pid_path(dir, role);
	pid_t pid;
	bool running = service_control_status(pid_path, &pid) == SERVICE_STATE_RUNNING;
	mem_free(pid_path);
	return running;
}

static bool cli_any_running(const char *dir)
{
	for (int r = 0; r < CONFIG_ROLE_COUNT; r++) {
		if (cli_role_running(dir, (enum config_role)r))
			return true;
	}
	return false;
}

static int cli_role_load(const char *dir, enum config_role role,
			 struct config_role_settings *settings, const char **error_r)
{
	int ret = config_role_load(dir, role, settings, error_r);
	if (ret == 0) {
		*error_r =
			tstr_printf("the %s role is not set up in %s", config_role_name(role), dir);
		return -1;
	}
	return ret < 0 ? -1 : 0;
}

static int cli_fingerprint(const char *dir, enum config_role role, enum config_kind kind,
			   char fp[TLS_FINGERPRINT_HEX_LEN + 1], const char **error_r)
{
	char *cert = config_cert_path(dir, role, kind);
	int ret = tls_cert_fingerprint(cert, fp, error_r);
	mem_free(cert);
	return ret;
}

#define CLI_CERT_MAX_NAMES 64

/* The names a role's self-signed certificate of one kind carries besides its
 * server name: every address its listeners of that kind are configured with,
 * and localhost (127.0.0.1, ::1) when one listens on every address or on
 * loopback, so that clients warn only about the self-signing. names_r gets
 * mem_strdup()ed strings, NULL-terminated. */
static void cli_cert_names(const struct config_role_settings *s, enum config_kind cert_kind,
			   char *names_r[CLI_CERT_MAX_NAMES + 1])
{
	size_t n = 0;
	bool local = false;
	for (int k = 0; k < CONFIG_KIND_COUNT; k++) {
		const struct config_listener_set *l = &s->listeners[k];
		if (config_kind_cert((enum config_kind)k) != cert_kind || !l->present)
			continue;
		for (size_t i = 0; i < l->listener_count; i++) {
			const char *host = l->listeners[i].host;
			if (host[0] == '\0' || strncmp(host, "127.", 4) == 0 ||
			    strcmp(host, "::1") == 0)
				local = true;
			if (host[0] != '\0' && n < CLI_CERT_MAX_NAMES - 3)
				names_r[n++] = mem_strdup(host);
		}
	}
	if (local) {
		names_r[n++] = mem_strdup("localhost");
		names_r[n++] = mem_strdup("127.0.0.1");
		names_r[n++] = mem_strdup("::1");
	}
	names_r[n] = NULL;
}

static int cli_generate_cert(const struct config_role_settings *s, enum config_kind kind,
			     unsigned int days, const char *cert, const char *key,
			     const char **error_r)
{
	char *names[CLI_CERT_MAX_NAMES + 1];
	cli_cert_names(s, kind, names);
	int ret = tls_cert_generate_names(s->server_name, (const char *const *)names, days, cert,
					  key, error_r);
	for (char **n = names; *n != NULL; n++)
		mem_free(*n);
	return ret;
}

static int cli_generate_certs(const char *dir, const struct config_role_settings *s,
			      const char **error_r)
{
	for (int k = 0; k < CONFIG_KIND_COUNT; k++) {
		if (!s->listeners[k].present || (int)config_kind_cert((enum config_kind)k) != k)
			continue;
		char *cert = config_cert_path(dir, s->role, (enum config_kind)k);
		char *key = config_key_path(dir, s->role, (enum config_kind)k);
		int ret = cli_generate_cert(s, (enum config_kind)k, CLI_CERT_DAYS, cert, key,
					    error_r);
		mem_free(cert);
		mem_free(key);
		if (ret < 0)
			return -1;
	}
	return 0;
}

static int cli_apply_fields(struct cli_config *cc, struct config_role_settings *s, bool *any_r,
			    const char **error_r)
{
	*any_r = false;
	for (const char *const *f = cli_config_fields; *f != NULL; f++) {
		const char *value = cli_args_get(&cc->args, *f);
		if (value == NULL)
			continue;
		*any_r = true;
		if (config_role_set_field(s, *f, value, error_r) < 0)
			return -1;
	}
	return 0;
}

static int cli_parse_role(struct cli_config *cc, size_t index, enum config_role *role_r,
			  const char **error_r)
{
	if (index >= cc->pos_count) {
		*error_r = "missing ROLE: management-server, instance-host or client-access-server";
		return -1;
	}
	return config_role_parse(cc->pos[index], role_r, error_r);
}

static const char *cli_read_password(const char *prompt)
{
	if (!isatty(STDIN_FILENO))
		return NULL;
	char *pw = getpass(prompt);
	return pw == NULL || pw[0] == '\0' ? NULL : tstr_dup(pw);
}

#define CLI_PASSWORD_MAX 1024

/* The first line of a password file ("-": standard input), as a tstr. A
 * password file keeps the password out of the command line, which every user
 * of the machine can read (ps, /proc) and shells keep in their history. */
static int cli_read_password_file(const char *path, const char **password_r, const char **error_r)
{
	char *data;
	size_t len;
	if (strcmp(path, "-") == 0) {
		/* a pipe: only its first line is wanted, so read up to it */
		data = mem_zalloc(CLI_PASSWORD_MAX + 2);
		len = 0;
		while (len < CLI_PASSWORD_MAX + 1 && memchr(data, '\n', len) == NULL) {
			ssize_t n = read(STDIN_FILENO, data + len, CLI_PASSWORD_MAX + 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
	} else if (file_read_all(path, CLI_PASSWORD_MAX * 4, &data, &len, error_r) < 0) {
		*error_r = tstr_printf("field password-file: %s", *error_r);
		return -1;
	}
	size_t line = 0;
	while (line < len && data[line] != '\n' && data[line] != '\r' && data[line] != '\0')
		line++;
	int ret = -1;
	if (line == 0)
		*error_r = tstr_printf("field password-file: '%s': its first line is empty, "
				       "expected the password",
				       path);
	else if (line > CLI_PASSWORD_MAX)
		*error_r = tstr_printf("field password-file: '%s': expected at most %d "
				       "characters on its first line",
				       path, CLI_PASSWORD_MAX);
	else {
		*password_r = tstr_printf("%.*s", (int)line, data);
		ret = 0;
	}
	memset(data, 0, len);
	mem_free(data);
	return ret;
}

/* The password of a PKCS#12 file: --password-file, --password, or asked for
 * on a terminal (twice when exporting, so a typo cannot lock the key away).
 * An export always has one: the file carries a private key. An import
 * without one tries the file as unprotected. */
static int cli_pkcs12_password(struct cli_config *cc, bool export, const char **password_r,
			       const char **error_r)
{
	const char *file = cli_args_get(&cc->args, "password-file");
	const char *given = cli_args_get(&cc->args, "password");
	*password_r = NULL;
	if (file != NULL && given != NULL) {
		*error_r = "give either --password-file or --password, not both";
		return -1;
	}
	if (file != NULL)
		return cli_read_password_file(file, password_r, error_r);
	if (given != NULL && given[0] != '\0') {
		fputs("coffer config: warning: --password is visible to every user of this "
		      "machine (ps); prefer --password-file\n",
		      stderr);
		*password_r = given;
		return 0;
	}
	*password_r = cli_read_password(export ? "PKCS#12 password for the export: "
					       : "PKCS#12 password: ");
	if (export && *password_r != NULL) {
		const char *again = cli_read_password("The same password again: ");
		if (again == NULL || strcmp(again, *password_r) != 0) {
			*error_r = "field password: the two passwords differ";
			return -1;
		}
	}
	if (export && *password_r == NULL) {
		*error_r = "field password: a PKCS#12 export holds the private key and needs a "
			   "password: --password-file FILE (- for standard input), or run on a "
			   "terminal to be asked";
		return -1;
	}
	return 0;
}

/* ---- single server mode: the local roles pair with each other ---- */

static const char *cli_connect_host(const struct config_role_settings *s)
{
	return netaddr_listener_connect_host(&s->listeners[CONFIG_KIND_TCP].listeners[0]);
}

static int cli_single_register(struct mgmtdb *db, enum mgmtdb_server_kind kind,
			       const struct config_role_settings *s, const char *fp,
			       const char **error_r)
{
	/* An older registration of this same server under another name (new
	 * listeners) takes the new name, with its instances. */
	const char *renamed_from;
	if (mgmtdb_server_pair(db, kind, cli_connect_host(s),
			       s->listeners[CONFIG_KIND_TCP].listeners[0].port, fp, &renamed_from,
			       error_r) < 0)
		return -1;
	/* Others left (the new name was registered already) hold no instance. */
	for (size_t i = mgmtdb_server_count(db, kind); i > 0; i--) {
		struct mgmtdb_server e;
		mgmtdb_server_get(db, kind, i - 1, &e);
		if (strcmp(e.fingerprint, fp) == 0 &&
		    strcasecmp(e.server_name, cli_connect_host(s)) != 0 &&
		    (kind != MGMTDB_INSTANCE_HOST ||
		     mgmtdb_instance_count_on_host(db, e.server_name) == 0)) {
			char *name = mem_strdup(e.server_name);
			mgmtdb_server_remove(db, kind, name);
			mem_free(name);
		}
	}
	return 0;
}

/* Point the local Instance Host and Client Access Server at the local
 * Management Server and register them in its database. */
static int cli_single_sync(const char *dir, const char **error_r)
{
	struct config_role_settings ms, role;
	char ms_fp[TLS_FINGERPRINT_HEX_LEN + 1], fp[TLS_FINGERPRINT_HEX_LEN + 1];
	int have_ms = config_role_load(dir, CONFIG_ROLE_MANAGEMENT_SERVER, &ms, error_r);
	if (have_ms <= 0)
		return have_ms;
	if (cli_fingerprint(dir, CONFIG_ROLE_MANAGEMENT_SERVER, CONFIG_KIND_TCP, ms_fp, error_r) <
	    0) {
		config_role_free(&ms);
		return -1;
	}
	char *db_path = config_path(dir, MGMTDB_FILE_NAME);
	struct mgmtdb *db;
	if (mgmtdb_load(db_path, &db, error_r) < 0) {
		mem_free(db_path);
		config_role_free(&ms);
		return -1;
	}
	int ret = 0;
	for (int r = CONFIG_ROLE_INSTANCE_HOST; r < CONFIG_ROLE_COUNT && ret == 0; r++) {
		int have = config_role_load(dir, (enum config_role)r, &role, error_r);
		if (have <= 0) {
			ret = have;
			continue;
		}
		mem_free(role.management.server);
		role.management.server = mem_strdup(cli_connect_host(&ms));
		role.management.port = ms.listeners[CONFIG_KIND_TCP].listeners[0].port;
		memcpy(role.management.fingerprint, ms_fp, sizeof(ms_fp));
		if (cli_fingerprint(dir, (enum config_role)r, CONFIG_KIND_TCP, fp, error_r) < 0 ||
		    config_role_save(dir, &role, error_r) < 0 ||
		    cli_single_register(db,
					r == CONFIG_ROLE_INSTANCE_HOST
						? MGMTDB_INSTANCE_HOST
						: MGMTDB_CLIENT_ACCESS_SERVER,
					&role, fp, error_r) < 0)
			ret = -1;
		config_role_free(&role);
	}
	if (ret == 0)
		ret = mgmtdb_save(db, db_path, error_r);
	mgmtdb_destroy(&db);
	mem_free(db_path);
	config_role_free(&ms);
	return ret;
}

static int cli_after_change(const char *dir, const char **error_r)
{
	struct config_server server;
	if (config_server_load(dir, &server, error_r) < 0)
		return -1;
	int ret = server.mode == CONFIG_MODE_SINGLE ? cli_single_sync(dir, error_r) : 0;
	config_server_free(&server);
	cli_fix_ownership(dir);
	return ret;
}

/* In single server mode a change may touch the management database, which a
 * running Management Server owns: such changes wait until it is stopped. */
static int cli_check_changeable(const char *dir, enum config_role role, const char **error_r)
{
	struct config_server server;
	if (config_server_load(dir, &server, error_r) < 0)
		return -1;
	bool single = server.mode == CONFIG_MODE_SINGLE;
	config_server_free(&server);
	if (single ? cli_any_running(dir) : cli_role_running(dir, role)) {
		*error_r = single ? "stop the services first (coffer config stop): in single "
				    "server mode a change also updates the management database"
				  : tstr_printf("stop the %s first (coffer config stop %s)",
						config_role_title(role), config_role_name(role));
		return -1;
	}
	return 0;
}

/* ---- init and roles ---- */

/* A management database brought from another server must be valid, and
 * comes with the secrets.key its MFA seeds and SMTP password are sealed
 * under (the Management Server checks at start that the key opens them). */
static int cli_check_moved_database(const char *dir, const char *db_path, const char **error_r)
{
	struct mgmtdb *db;
	if (mgmtdb_load(db_path, &db, error_r) < 0)
		return -1;
	size_t sealed = mgmtdb_sealed_secret_count(db);
	struct str *what = str_create(128);
	for (size_t i = 0; i < sealed; i++) {
		struct mgmtdb_sealed_secret secret;
		mgmtdb_sealed_secret_get(db, i, &secret);
		str_append(what, i == 0 ? "" : ", ");
		str_append(what, secret.what);
	}
	char *key_path = config_path(dir, "secrets.key");
	int exists = sealed == 0 ? 1 : file_exists(key_path, error_r);
	if (exists == 0)
		*error_r = tstr_printf("%s holds %zu secret(s) sealed under the secrets.key of the "
				       "server it came from (%s), and %s is missing: copy "
				       "secrets.key from that server's config directory too",
				       db_path, sealed, str_c(what), key_path);
	str_destroy(&what);
	mem_free(key_path);
	mgmtdb_destroy(&db);
	return exists == 1 ? 0 : -1;
}

static int cli_role_add(struct cli_config *cc, enum config_role role, const char *server_name,
			bool apply_fields, const char **error_r)
{
	struct config_role_settings s;
	int have = config_role_load(cc->dir, role, &s, error_r);
	if (have > 0) {
		config_role_free(&s);
		*error_r = tstr_printf("the %s role is already set up in %s (use 'role configure')",
				       config_role_name(role), cc->dir);
	}
	if (have != 0)
		return -1;
	bool any;
	const char *key = cli_args_get(&cc->args, "product-key");
	config_role_defaults(role, server_name, &s);
	if (!apply_fields && key != NULL && role == CONFIG_ROLE_MANAGEMENT_SERVER) {
		mem_free(s.product_key);
		s.product_key = mem_strdup(key);
	}
	if ((apply_fields && cli_apply_fields(cc, &s, &any, error_r) < 0) ||
	    cli_generate_certs(cc->dir, &s, error_r) < 0) {
		config_role_free(&s);
		return -1;
	}
	if (role == CONFIG_ROLE_MANAGEMENT_SERVER) {
		char *db_path = config_path(cc->dir, MGMTDB_FILE_NAME);
		int exists = file_exists(db_path, error_r);
		if (exists == 1) {
			/* A database moved here from another server: keep it as it is. */
			if (cli_check_moved_database(cc->dir, db_path, error_r) < 0)
				exists = -1;
			else
				printf("keeping the existing management database %s\n", db_path);
		} else {
			const char *admin = cli_args_get(&cc->args, "admin-name");
			const char *password = cli_args_get(&cc->args, "admin-password");
			admin = admin == NULL ? "admin" : admin;
			if (password == NULL)
				password =
					cli_read_password("Password for the first administrator: ");
			char hash[CRYPTO_PASSWORD_HASH_LEN];
			struct mgmtdb *db = mgmtdb_create();
			if (password == NULL) {
				*error_r = "field admin-password: the first administrator needs a "
					   "password (--admin-password)";
				exists = -1;
			} else if (strlen(password) < 8 || strlen(password) > 1024) {
				*error_r = "field admin-password: expected 8 to 1024 characters";
				exists = -1;
			} else if (crypto_password_hash(password, hash, error_r) < 0 ||
				   mgmtdb_admin_add(db, admin, hash, error_r) < 0) {
				exists = -1;
			} else {
				mgmtdb_set_product_key(db, s.product_key);
				if (mgmtdb_save(db, db_path, error_r) < 0)
					exists = -1;
			}
			mgmtdb_destroy(&db);
		}
		mem_free(db_path);
		if (exists < 0) {
			config_role_free(&s);
			return -1;
		}
	}
	int ret = config_role_save(cc->dir, &s, error_r);
	if (ret == 0)
		printf("added %s (%s)\n", config_role_title(role), s.server_name);
	config_role_free(&s);
	return ret;
}

static int cli_cmd_init(struct cli_config *cc, const char **error_r)
{
	const char *mode = cli_args_get(&cc->args, "mode");
	struct config_server server = {CONFIG_MODE_MULTI, NULL};
	if (mode == NULL || (strcmp(mode, "single") != 0 && strcmp(mode, "multi") != 0)) {
		*error_r = tstr_printf("field mode: '%s': expected --mode single or --mode multi",
				       mode == NULL ? "" : mode);
		return -1;
	}
	server.mode = strcmp(mode, "single") == 0 ? CONFIG_MODE_SINGLE : CONFIG_MODE_MULTI;
	char *coffer_json = config_path(cc->dir, "coffer.json");
	int exists = file_exists(coffer_json, error_r);
	mem_free(coffer_json);
	if (exists != 0) {
		if (exists > 0)
			*error_r =
				tstr_printf("%s is already set up (coffer.json exists)", cc->dir);
		return -1;
	}
	const char *run_as = cli_args_get(&cc->args, "run-as");
	server.run_as_user = (char *)(run_as != NULL ? run_as : geteuid() == 0 ? "coffer" : "");
	const char *server_name = cli_args_get(&cc->args, "server-name");
	if (server_name == NULL)
		server_name = cli_local_server_name();
	if (cli_ensure_user(server.run_as_user, error_r) < 0 ||
	    cli_make_dirs(cc->dir, error_r) < 0 ||
	    config_server_save(cc->dir, &server, error_r) < 0)
		return -1;
	printf("%s: %s server mode\n", cc->dir, mode);
	if (server.mode == CONFIG_MODE_SINGLE) {
		for (int r = 0; r < CONFIG_ROLE_COUNT; r++) {
			if (cli_role_add(cc, (enum config_role)r, server_name, false, error_r) < 0)
				return -1;
		}
	}
	return cli_after_change(cc->dir, error_r);
}

static int cli_cmd_role_add(struct cli_config *cc, const char **error_r)
{
	enum config_role role;
	struct config_server server;
	if (cli_parse_role(cc, 1, &role, error_r) < 0 ||
	    config_server_load(cc->dir, &server, error_r) < 0)
		return -1;
	config_server_free(&server);
	const char *name = cli_args_get(&cc->args, "server-name");
	if (cli_role_add(cc, role, name != NULL ? name : cli_local_server_name(), true, error_r) <
	    0)
		return -1;
	return cli_after_change(cc->dir, error_r);
}

static int cli_cmd_role_configure(struct cli_config *cc, const char **error_r)
{
	enum config_role role;
	struct config_role_settings s;
	bool any;
	if (cli_parse_role(cc, 1, &role, error_r) < 0 ||
	    cli_role_load(cc->dir, role, &s, error_r) < 0)
		return -1;
	int ret = cli_apply_fields(cc, &s, &any, error_r);
	if (ret == 0 && !any) {
		*error_r = tstr_printf("nothing to change: give one or more of --%s",
				       config_role_field_names(role));
		ret = -1;
	}
	if (ret == 0)
		ret = cli_check_changeable(cc->dir, role, error_r);
	if (ret == 0 && role == CONFIG_ROLE_MANAGEMENT_SERVER &&
	    cli_args_get(&cc->args, "product-key") != NULL) {
		char *db_path = config_path(cc->dir, MGMTDB_FILE_NAME);
		struct mgmtdb *db;
		ret = mgmtdb_load(db_path, &db, error_r);
		if (ret == 0) {
			mgmtdb_set_product_key(db, s.product_key);
			ret = mgmtdb_save(db, db_path, error_r);
			mgmtdb_destroy(&db);
		}
		mem_free(db_path);
	}
	if (ret == 0)
		ret = config_role_save(cc->dir, &s, error_r);
	config_role_free(&s);
	if (ret == 0)
		ret = cli_after_change(cc->dir, error_r);
	if (ret == 0)
		printf("%s updated\n", config_role_title(role));
	return ret;
}

static void cli_show_role(const char *dir, enum config_role role, bool as_json)
{
	struct config_role_settings s;
	const char *error;
	int have = config_role_load(dir, role, &s, &error);
	if (have < 0) {
		fprintf(stderr, "coffer config: %s\n", error);
		return;
	}
	if (have == 0)
		return;
	char *text = config_role_to_text(&s);
	struct json *json;
	if (json_parse(text, strlen(text), &json, &error) == 0) {
		struct json *certs = json_new_object();
		for (int k = 0; k < CONFIG_KIND_COUNT; k++) {
			char fp[TLS_FINGERPRINT_HEX_LEN + 1];
			if (!s.listeners[k].present ||
			    (int)config_kind_cert((enum config_kind)k) != k)
				continue;
			if (cli_fingerprint(dir, role, (enum config_kind)k, fp, &error) < 0)
				json_set_string(certs, config_kind_name((enum config_kind)k),
						error);
			else
				json_set_string(certs, config_kind_name((enum config_kind)k), fp);
		}
		json_set(json, "certificateFingerprints", certs);
		char *pid_path = config_pid_path(dir, role);
		pid_t pid;
		json_set_string(json, "service",
				service_state_name(service_control_status(pid_path, &pid)));
		mem_free(pid_path);
		char *out = json_serialize(json, true);
		if (as_json)
			printf("%s\n", out);
		else
			printf("%s\n%s\n\n", config_role_title(role), out);
		mem_free(out);
		json_unref(&json);
	}
	mem_free(text);
	config_role_free(&s);
}

static int cli_cmd_role_show(struct cli_config *cc, const char **error_r)
{
	bool as_json = cli_args_flag(&cc->args, "json");
	if (cc->pos_count > 1) {
		enum config_role role;
		struct config_role_settings s;
		if (cli_parse_role(cc, 1, &role, error_r) < 0 ||
		    cli_role_load(cc->dir, role, &s, error_r) < 0)
			return -1;
		config_role_free(&s);
		cli_show_role(cc->dir, role, as_json);
		return 0;
	}
	struct config_server server;
	if (config_server_load(cc->dir, &server, error_r) < 0)
		return -1;
	if (!as_json)
		printf("%s: %s server mode%s%s\n\n", cc->dir,
		       server.mode == CONFIG_MODE_SINGLE ? "single" : "multi",
		       server.run_as_user[0] != '\0' ? ", daemons run as " : "",
		       server.run_as_user);
	config_server_free(&server);
	for (int r = 0; r < CONFIG_ROLE_COUNT; r++)
		cli_show_role(cc->dir, (enum config_role)r, as_json);
	return 0;
}

static int cli_cmd_role_remove(struct cli_config *cc, const char **error_r)
{
	enum config_role role;
	struct config_role_settings s;
	if (cli_parse_role(cc, 1, &role, error_r) < 0 ||
	    cli_role_load(cc->dir, role, &s, error_r) < 0)
		return -1;
	config_role_free(&s);
	if (cli_role_running(cc->dir, role)) {
		*error_r = tstr_printf("the %s is running: stop it first (coffer config stop %s)",
				       config_role_title(role), config_role_name(role));
		return -1;
	}
	char *name = mem_printf("%s.json", config_role_name(role));
	char *path = config_path(cc->dir, name);
	for (int k = 0; k < CONFIG_KIND_COUNT; k++) {
		char *cert = config_cert_path(cc->dir, role, (enum config_kind)k);
		char *key = config_key_path(cc->dir, role, (enum config_kind)k);
		(void)unlink(cert);
		(void)unlink(key);
		mem_free(cert);
		mem_free(key);
	}
	int ret = unlink(path);
	if (ret < 0)
		*error_r = tstr_printf("unlink(%s) failed: %s", path, strerror(errno));
	else
		printf("removed %s%s\n", config_role_title(role),
		       role == CONFIG_ROLE_MANAGEMENT_SERVER
			       ? " (the management database file is kept)"
			       : "");
	mem_free(path);
	mem_free(name);
	return ret;
}

/* ---- services ---- */

/* Where systemd runs and its unit is installed, the default config directory
 * is served through systemd (it restarts a failed service); anything else runs
 * as our own daemon with a pid file. Both report readiness the same way. */
static bool cli_systemd_unit(const char *dir, enum config_role role)
{
	static const char *const unit_dirs[] = {
		"/etc/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system"};
	if (strcmp(dir, CONFIG_DEFAULT_DIR) != 0 || access("/run/systemd/system", F_OK) != 0)
		return false;
	for (size_t i = 0; i < sizeof(unit_dirs) / sizeof(unit_dirs[0]); i++) {
		char *unit =
			mem_printf("%s/coffer-%s.service", unit_dirs[i], config_role_name(role));
		bool found = access(unit, F_OK) == 0;
		mem_free(unit);
		if (found)
			return true;
	}
	return false;
}

static int cli_systemctl(const char *verb, enum config_role role, const char **error_r)
{
	char *unit = mem_printf("coffer-%s.service", config_role_name(role));
	char *argv[] = {"systemctl", (char *)verb, unit, NULL};
	int ret = cli_run(argv, error_r);
	if (ret < 0)
		*error_r = tstr_printf("systemctl %s %s failed (see journalctl -u %s)", verb, unit,
				       unit);
	mem_free(unit);
	return ret;
}

static int cli_service_start(const char *dir, enum config_role role, const char **error_r)
{
	if (cli_role_running(dir, role)) {
		printf("%s: already running\n", config_role_name(role));
		return 0;
	}
	if (cli_systemd_unit(dir, role)) {
		if (cli_systemctl("start", role, error_r) < 0)
			return -1;
		printf("%s: running (systemd)\n", config_role_name(role));
		return 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		*error_r = "cannot find the coffer executable (/proc/self/exe)";
		return -1;
	}
	self[n] = '\0';
	if (cli_restore_runtime_dirs(dir, error_r) < 0)
		return -1;
	char *pid_path = config_pid_path(dir, role);
	pid_t pid;
	if (service_control_status(pid_path, &pid) == SERVICE_STATE_DEAD)
		(void)unlink(pid_path);
	mem_free(pid_path);
	char *stderr_path = mem_printf("%s/log/%s.stderr", dir, config_role_name(role));
	char *argv[] = {self, (char *)config_role_name(role), "--config-dir", (char *)dir, NULL};
	const char *text, *error;
	int ret = service_control_start(argv, stderr_path, CLI_START_TIMEOUT_SECS, &text, &error);
	mem_free(stderr_path);
	if (ret < 0) {
		*error_r = tstr_printf("%s failed to start: %s", config_role_name(role), error);
		return -1;
	}
	printf("%s: running (%s)\n", config_role_name(role), text);
	return 0;
}

static int cli_service_stop(const char *dir, enum config_role role, const char **error_r)
{
	if (cli_systemd_unit(dir, role))
		return cli_systemctl("stop", role, error_r);
	char *pid_path = config_pid_path(dir, role);
	int ret = service_control_stop(pid_path, CLI_START_TIMEOUT_SECS, error_r);
	mem_free(pid_path);
	if (ret >= 0)
		printf("%s: %s\n", config_role_name(role), ret > 0 ? "stopped" : "was not running");
	return ret < 0 ? -1 : 0;
}

static int cli_service_status(const char *dir, enum config_role role)
{
	char *pid_path = config_pid_path(dir, role);
	pid_t pid;
	enum service_state state = service_control_status(pid_path, &pid);
	mem_free(pid_path);
	if (state == SERVICE_STATE_RUNNING)
		printf("%s: running (pid %ld)\n", config_role_name(role), (long)pid);
	else if (state == SERVICE_STATE_DEAD)
		printf("%s: dead (pid %ld is gone; it did not stop cleanly, see log/%s.log)\n",
		       config_role_name(role), (long)pid, config_role_name(role));
	else
		printf("%s: stopped\n", config_role_name(role));
	return state == SERVICE_STATE_RUNNING ? 0 : state == SERVICE_STATE_DEAD ? 1 : 3;
}

static int cli_cmd_service(struct cli_config *cc, const char *cmd, const char **error_r)
{
	bool roles[CONFIG_ROLE_COUNT] = {false};
	struct config_server server;
	if (config_server_load(cc->dir, &server, error_r) < 0)
		return -1;
	config_server_free(&server);
	if (cc->pos_count > 1) {
		enum config_role role;
		struct config_role_settings s;
		if (cli_parse_role(cc, 1, &role, error_r) < 0 ||
		    cli_role_load(cc->dir, role, &s, error_r) < 0)
			return -1;
		config_role_free(&s);
		roles[role] = true;
	} else {
		for (int r = 0; r < CONFIG_ROLE_COUNT; r++) {
			struct config_role_settings s;
			const char *error;
			roles[r] = config_role_load(cc->dir, (enum config_role)r, &s, &error) > 0;
			if (roles[r])
				config_role_free(&s);
		}
	}
	int ret = 0, status_ret = 0;
	bool stop = strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0;
	bool start = strcmp(cmd, "start") == 0 || strcmp(cmd, "restart") == 0;
	/* Stop in reverse dependency order, start the Management Server first. */
	for (int r = CONFIG_ROLE_COUNT - 1; stop && r >= 0; r--) {
		if (roles[r] && cli_service_stop(cc->dir, (enum config_role)r, error_r) < 0)
			return -1;
	}
	for (int r = 0; start && r < CONFIG_ROLE_COUNT; r++) {
		if (roles[r] && cli_service_start(cc->dir, (enum config_role)r, error_r) < 0)
			ret = -1;
	}
	for (int r = 0; strcmp(cmd, "status") == 0 && r < CONFIG_ROLE_COUNT; r++) {
		if (roles[r]) {
			int s = cli_service_status(cc->dir, (enum config_role)r);
			status_ret = s > status_ret ? s : status_ret;
		}
	}
	if (ret == 0 && status_ret != 0) {
		*error_r = NULL;
		return status_ret;
	}
	return ret;
}

/* ---- pairing ---- */

static int cli_pair_role(struct cli_config *cc, const struct cli_api_target *target,
			 enum config_role role, const char **error_r)
{
	struct config_role_settings s;
	char fp[TLS_FINGERPRINT_HEX_LEN + 1];
	if (cli_role_load(cc->dir, role, &s, error_r) < 0)
		return -1;
	if (cli_fingerprint(cc->dir, role, CONFIG_KIND_TCP, fp, error_r) < 0) {
		config_role_free(&s);
		return -1;
	}
	const char *args[] = {
		role == CONFIG_ROLE_INSTANCE_HOST ? "serverType=InstanceHost"
						  : "serverType=ClientAccessServer",
		tstr_printf("serverName=%s", s.server_name),
		tstr_printf("port=%u", s.listeners[CONFIG_KIND_TCP].listeners[0].port),
		tstr_printf("fingerprint=%s", fp),
	};
	char *envelope = NULL;
	int status = cli_api_call(target, "PairWithManagementServer", args, 4, &envelope, error_r);
	struct json *answer = NULL;
	const char *parse_error;
	int ret = -1;
	if (status < 0 && strcasestr(*error_r, "refused") != NULL) {
		*error_r =
			tstr_printf("pairing failed: %s; is the Management Server running there? "
				    "(on it: coffer config start management-server)",
				    *error_r);
	} else if (status == 401) {
		*error_r = "pairing failed: the Management Server refused the administrator name "
			   "or password";
	} else if (status > 0 &&
		   json_parse(envelope, strlen(envelope), &answer, &parse_error) == 0) {
		const struct json *result = json_get(answer, "result");
		const char *ms_fp = json_get_string(result, "fingerprint");
		long long port = 0;
		const struct json *err = json_get(answer, "error");
		if (err != NULL && json_kind(err) == JSON_KIND_OBJECT) {
			*error_r =
				tstr_printf("pairing failed: %s", json_get_string(err, "message"));
		} else if (ms_fp == NULL || json_get_int(result, "port", &port) != 1) {
			*error_r = "pairing failed: unexpected answer from the Management Server";
		} else {
			mem_free(s.management.server);
			s.management.server = mem_strdup(target->host);
			s.management.port = (unsigned int)port;
			snprintf(s.management.fingerprint, sizeof(s.management.fingerprint), "%s",
				 ms_fp);
			ret = config_role_save(cc->dir, &s, error_r);
			if (ret == 0)
				printf("%s %s paired with the Management Server %s (TCP port %lld, "
				       "fingerprint %s)\n",
				       config_role_title(role), s.server_name, target->host, port,
				       ms_fp);
		}
	} else if (status > 0) {
		*error_r = tstr_printf("pairing failed: HTTP status %d", status);
	}
	json_unref(&answer);
	mem_free(envelope);
	config_role_free(&s);
	return ret;
}

static int cli_cmd_pair(struct cli_config *cc, const char **error_r)
{
	struct cli_api_target target = {0};
	const char *port_text = cli_args_get(&cc->args, "api-port");
	const char *fp_arg = cli_args_get(&cc->args, "fingerprint");
	const char *role_arg = cli_args_get(&cc->args, "role");
	bool tofu = cli_args_flag(&cc->args, "trust-on-first-use");
	char fp[TLS_FINGERPRINT_HEX_LEN + 1];
	target.host = cli_args_get(&cc->args, "management-server");
	target.user = cli_args_get(&cc->args, "admin-name");
	target.password = cli_args_get(&cc->args, "admin-password");
	if (target.user == NULL)
		target.user = "admin";
	target.port = 8470;
	if (target.host == NULL) {
		*error_r = "field management-server: missing (--management-server HOST, the "
			   "Management Server's name)";
		return -1;
	}
	if (port_text != NULL && netaddr_parse_port(port_text, &target.port, error_r) < 0) {
		*error_r = tstr_printf("field api-port: %s", *error_r);
		return -1;
	}
	bool roles[CONFIG_ROLE_COUNT] = {false};
	if (role_arg != NULL) {
		enum config_role role;
		if (config_role_parse(role_arg, &role, error_r) < 0)
			return -1;
		if (role == CONFIG_ROLE_MANAGEMENT_SERVER) {
			*error_r = "field role: only an instance-host or client-access-server "
				   "pairs with a Management Server";
			return -1;
		}
		roles[role] = true;
	} else {
		for (int r = CONFIG_ROLE_INSTANCE_HOST; r < CONFIG_ROLE_COUNT; r++) {
			struct config_role_settings s;
			roles[r] = config_role_load(cc->dir, (enum config_role)r, &s, error_r) > 0;
			if (roles[r])
				config_role_free(&s);
		}
		if (!roles[CONFIG_ROLE_INSTANCE_HOST] && !roles[CONFIG_ROLE_CLIENT_ACCESS_SERVER]) {
			*error_r = tstr_printf(
				"no instance-host or client-access-server role in %s to pair",
				cc->dir);
			return -1;
		}
	}
	if (fp_arg != NULL) {
		if (tls_fingerprint_normalize(fp_arg, fp, error_r) < 0) {
			*error_r = tstr_printf("field fingerprint: %s", *error_r);
			return -1;
		}
	} else {
		/* Trust on first use: show what we are about to trust. */
		if (tls_probe_fingerprint(target.host, target.port, 10, fp, error_r) < 0)
			return -1;
		printf("The Management Server %s:%u presents the certificate fingerprint\n  %s\n",
		       target.host, target.port, fp);
		if (!tofu) {
			if (!isatty(STDIN_FILENO)) {
				*error_r = "pass --fingerprint FP to check it, or "
					   "--trust-on-first-use to accept it";
				return -1;
			}
			printf("Trust it? [y/N] ");
			fflush(stdout);
			char answer[16] = "";
			if (fgets(answer, sizeof(answer), stdin) == NULL ||
			    (answer[0] != 'y' && answer[0] != 'Y')) {
				*error_r = "not trusted; nothing changed";
				return -1;
			}
		}
	}
	target.fingerprint = fp;
	if (target.password == NULL)
		target.password = cli_read_password(tstr_printf("Password of %s: ", target.user));
	if (target.password == NULL) {
		*error_r = "field admin-password: missing (--admin-password)";
		return -1;
	}
	for (int r = CONFIG_ROLE_INSTANCE_HOST; r < CONFIG_ROLE_COUNT; r++) {
		if (roles[r] && cli_pair_role(cc, &target, (enum config_role)r, error_r) < 0)
			return -1;
	}
	cli_fix_ownership(cc->dir);
	for (int r = CONFIG_ROLE_INSTANCE_HOST; r < CONFIG_ROLE_COUNT; r++) {
		if (roles[r] && cli_role_running(cc->dir, (enum config_role)r)) {
			/* The pairing takes effect at start. */
			if (cli_service_stop(cc->dir, (enum config_role)r, error_r) < 0 ||
			    cli_service_start(cc->dir, (enum config_role)r, error_r) < 0)
				return -1;
		}
	}
	return 0;
}

/* ---- certificates ---- */

static int cli_cert_target(struct cli_config *cc, enum config_role *role_r,
			   enum config_kind *kind_r, bool kind_required, const char **error_r)
{
	struct config_role_settings s;
	if (cli_parse_role(cc, 2, role_r, error_r) < 0 ||
	    cli_role_load(cc->dir, *role_r, &s, error_r) < 0)
		return -1;
	int ret = 0;
	*kind_r = CONFIG_KIND_COUNT;
	if (cc->pos_count > 3) {
		if (config_kind_parse(cc->pos[3], kind_r, error_r) < 0 ||
		    *kind_r == CONFIG_KIND_IMAPS || !s.listeners[*kind_r].present) {
			if (*kind_r != CONFIG_KIND_COUNT)
				*error_r = tstr_printf("the %s has no %s certificate",
						       config_role_name(*role_r), cc->pos[3]);
			ret = -1;
		}
	} else if (kind_required) {
		*error_r = "missing KIND: tcp, http or imap";
		ret = -1;
	}
	config_role_free(&s);
	return ret;
}

static void cli_cert_print(const char *dir, enum config_role role, enum config_kind kind)
{
	char *cert = config_cert_path(dir, role, kind);
	struct tls_cert_info info;
	const char *error;
	if (tls_cert_read_info(cert, &info, &error) < 0) {
		printf("%s %s: %s\n", config_role_name(role), config_kind_name(kind), error);
	} else {
		char from[32], to[32];
		struct tm tm;
		strftime(from, sizeof(from), "%Y-%m-%d", gmtime_r(&info.not_before, &tm));
		strftime(to, sizeof(to), "%Y-%m-%d", gmtime_r(&info.not_after, &tm));
		printf("%s %s certificate (%s)\n  subject:     %s\n  issuer:      %s%s\n"
		       "  valid:       %s to %s\n  fingerprint: %s\n",
		       config_role_name(role), config_kind_name(kind), cert, info.subject,
		       info.issuer, info.self_signed ? " (self-signed)" : "", from, to,
		       info.fingerprint);
	}
	mem_free(cert);
}

static void cli_cert_changed_advice(const char *dir, enum config_role role, enum config_kind kind)
{
	struct config_server server;
	const char *error;
	if (kind != CONFIG_KIND_TCP || config_server_load(dir, &server, &error) < 0)
		return;
	if (server.mode == CONFIG_MODE_MULTI)
		printf("The role-to-role fingerprint changed: %s\n",
		       role == CONFIG_ROLE_MANAGEMENT_SERVER
			       ? "pair every Instance Host and Client Access Server again (coffer "
				 "config pair)"
			       : "pair this role again (coffer config pair) or update it on the "
				 "Management Server");
	config_server_free(&server);
}

static int cli_cmd_cert(struct cli_config *cc, const char **error_r)
{
	const char *sub = cc->pos_count > 1 ? cc->pos[1] : "";
	enum config_role role;
	enum config_kind kind;
	if (strcmp(sub, "show") == 0) {
		if (cli_cert_target(cc, &role, &kind, false, error_r) < 0)
			return -1;
		for (int k = 0; k < CONFIG_KIND_IMAPS; k++) {
			if (kind == CONFIG_KIND_COUNT || (int)kind == k) {
				struct config_role_settings s;
				if (cli_role_load(cc->dir, role, &s, error_r) == 0) {
					if (s.listeners[k].present)
						cli_cert_print(cc->dir, role, (enum config_kind)k);
					config_role_free(&s);
				}
			}
		}
		return 0;
	}
	if (cli_cert_target(cc, &role, &kind, true, error_r) < 0)
		return -1;
	char *cert = config_cert_path(cc->dir, role, kind),
	     *key = config_key_path(cc->dir, role, kind);
	const char *password = NULL;
	const char *file = cc->pos_count > 4 ? cc->pos[4] : NULL;
	size_t flen = file == NULL ? 0 : strlen(file);
	bool p12 = flen > 4 &&
		   (strcmp(file + flen - 4, ".p12") == 0 || strcmp(file + flen - 4, ".pfx") == 0);
	int ret = -1;
	if (p12 && (strcmp(sub, "export") == 0 || strcmp(sub, "import") == 0) &&
	    cli_pkcs12_password(cc, strcmp(sub, "export") == 0, &password, error_r) < 0) {
		mem_free(cert);
		mem_free(key);
		return -1;
	}
	if (strcmp(sub, "export") == 0) {
		if (file == NULL)
			*error_r = "missing FILE to export to";
		else if (p12)
			ret = tls_cert_export_pkcs12(cert, key, password, file, error_r);
		else {
			char *c, *k;
			size_t clen, klen;
			if (file_read_all(cert, 1 << 20, &c, &clen, error_r) == 0) {
				if (file_read_all(key, 1 << 20, &k, &klen, error_r) == 0) {
					struct str *both = str_create(clen + klen);
					str_append_n(both, c, clen);
					str_append_n(both, k, klen);
					ret = file_write_atomic(file, str_c(both), str_len(both),
								0600, error_r);
					str_destroy(&both);
					mem_free(k);
				}
				mem_free(c);
			}
		}
		if (ret == 0)
			printf("exported %s %s certificate and key to %s\n", config_role_name(role),
			       config_kind_name(kind), file);
	} else if (strcmp(sub, "import") == 0 || strcmp(sub, "renew") == 0) {
		bool import = strcmp(sub, "import") == 0;
		const char *days_text = cli_args_get(&cc->args, "days");
		const char *key_file = cli_args_get(&cc->args, "key");
		long days = days_text == NULL ? CLI_CERT_DAYS : atol(days_text);
		if (cli_check_changeable(cc->dir, role, error_r) < 0) {
			ret = -1;
		} else if (import && file == NULL) {
			*error_r = "missing FILE to import";
		} else if (!import && (days < 1 || days > 36500)) {
			*error_r = tstr_printf("field days: '%s': expected 1 to 36500", days_text);
		} else if (import) {
			ret = p12 ? tls_cert_import_pkcs12(file, password, cert, key, error_r)
				  : tls_cert_import_pem(file, key_file, cert, key, error_r);
		} else {
			struct config_role_settings s;
			if (cli_role_load(cc->dir, role, &s, error_r) == 0) {
				ret = cli_generate_cert(&s, config_kind_cert(kind),
							(unsigned int)days, cert, key, error_r);
				config_role_free(&s);
			}
		}
		if (ret == 0) {
			cli_cert_print(cc->dir, role, kind);
			ret = cli_after_change(cc->dir, error_r);
			cli_cert_changed_advice(cc->dir, role, kind);
		}
	} else {
		*error_r = tstr_printf(
			"unknown cert command '%s': expected show, export, import or renew", sub);
	}
	mem_free(cert);
	mem_free(key);
	return ret;
}

static int cli_cmd_rename(struct cli_config *cc, const char **error_r)
{
	if (cc->pos_count < 2) {
		*error_r = "missing NEW-SERVER-NAME";
		return -1;
	}
	int changed = 0;
	for (int r = 0; r < CONFIG_ROLE_COUNT; r++) {
		struct config_role_settings s;
		int have = config_role_load(cc->dir, (enum config_role)r, &s, error_r);
		if (have < 0)
			return -1;
		if (have == 0)
			continue;
		int ret = cli_check_changeable(cc->dir, (enum config_role)r, error_r);
		if (ret == 0)
			ret = config_role_set_field(&s, "server-name", cc->pos[1], error_r);
		if (ret == 0)
			ret = config_role_save(cc->dir, &s, error_r);
		config_role_free(&s);
		if (ret < 0)
			return -1;
		changed++;
	}
	if (changed == 0) {
		*error_r = tstr_printf("no roles in %s to rename", cc->dir);
		return -1;
	}
	printf("renamed %d role(s) to %s; in multi server mode pair them again (coffer config "
	       "pair): the Management Server then reaches them by the new name, and an Instance "
	       "Host's instances follow it\n",
	       changed, cc->pos[1]);
	return cli_after_change(cc->dir, error_r);
}

/* Instance base directories moved to another place (disk, server). The
 * daemons hold the files this rewrites in memory: they must be stopped. */
static int cli_cmd_relocate(struct cli_config *cc, const char **error_r)
{
	if (cli_any_running(cc->dir)) {
		*error_r = "stop the services first (coffer config stop): relocate rewrites the "
			   "management database and the Instance Host's registry, which they hold";
		return -1;
	}
	int count = cli_relocate(cc->dir, cli_args_get(&cc->args, "from"),
				 cli_args_get(&cc->args, "to"), error_r);
	if (count < 0)
		return -1;
	printf("relocated %d instance(s) from %s to %s; start the services (coffer config "
	       "start)\n",
	       count, cli_args_get(&cc->args, "from"), cli_args_get(&cc->args, "to"));
	cli_fix_ownership(cc->dir);
	return 0;
}

/* ---- dispatch ---- */

#define CLI_FIELDS                                                                                 \
	"server-name tcp-listeners http-listeners http-enabled imap-listeners "                    \
	"imap-enabled imaps-listeners imaps-enabled management-server management-port "            \
	"management-fingerprint product-key "

static const struct {
	const char *command;
	const char *options; /* space-separated, each followed by a space */
} cli_config_options[] = {
	{"init", "mode server-name run-as admin-name admin-password product-key "},
	{"role add", CLI_FIELDS "admin-name admin-password "},
	{"role configure", CLI_FIELDS},
	{"role show", "json "},
	{"show", "json "},
	{"pair", "management-server api-port admin-name admin-password fingerprint "
		 "trust-on-first-use role "},
	{"cert", "password password-file key days "},
	{"relocate", "from to "},
};

/* "init", "role add", "cert", ...: the command the positional arguments name
 * (tstr). start, stop, restart and status share one usage. */
static const char *cli_config_command_key(const char *const *pos, size_t count)
{
	if (count == 0)
		return "";
	if (strcmp(pos[0], "stop") == 0 || strcmp(pos[0], "restart") == 0 ||
	    strcmp(pos[0], "status") == 0)
		return "start";
	if (strcmp(pos[0], "role") == 0 && count > 1)
		return tstr_printf("role %s", pos[1]);
	return tstr_dup(pos[0]);
}

static int cli_config_check_options(struct cli_config *cc, const char **error_r)
{
	const char *allowed = "";
	char command[32];
	snprintf(command, sizeof(command), "%s", cli_config_command_key(cc->pos, cc->pos_count));
	for (size_t i = 0; i < sizeof(cli_config_options) / sizeof(cli_config_options[0]); i++) {
		if (strcmp(cli_config_options[i].command, command) == 0)
			allowed = cli_config_options[i].options;
	}
	for (size_t i = 0; i < cc->args.option_count; i++) {
		const char *name = cc->args.options[i].name;
		char word[64];
		snprintf(word, sizeof(word), "%s ", name);
		if (strcmp(name, "config-dir") == 0 || strcmp(name, "help") == 0 ||
		    strstr(allowed, word) == allowed ||
		    strstr(allowed, tstr_printf(" %s", word)) != NULL)
			continue;
		*error_r = tstr_printf("unknown option --%s for 'coffer config %s'%s%s", name,
				       command, allowed[0] != '\0' ? "; it takes: " : "", allowed);
		return -2;
	}
	return 0;
}

static int cli_config_dispatch(struct cli_config *cc, const char **error_r)
{
	const char *cmd = cc->pos_count > 0 ? cc->pos[0] : "";
	if (strcmp(cmd, "init") == 0)
		return cli_cmd_init(cc, error_r);
	if (strcmp(cmd, "role") == 0) {
		const char *sub = cc->pos_count > 1 ? cc->pos[1] : "";
		cc->pos++;
		cc->pos_count--;
		if (strcmp(sub, "add") == 0)
			return cli_cmd_role_add(cc, error_r);
		if (strcmp(sub, "configure") == 0)
			return cli_cmd_role_configure(cc, error_r);
		if (strcmp(sub, "show") == 0)
			return cli_cmd_role_show(cc, error_r);
		if (strcmp(sub, "remove") == 0)
			return cli_cmd_role_remove(cc, error_r);
		*error_r = tstr_printf(
			"unknown role command '%s': expected add, configure, show or remove", sub);
		return -1;
	}
	if (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0 ||
	    strcmp(cmd, "status") == 0)
		return cli_cmd_service(cc, cmd, error_r);
	if (strcmp(cmd, "pair") == 0)
		return cli_cmd_pair(cc, error_r);
	if (strcmp(cmd, "cert") == 0)
		return cli_cmd_cert(cc, error_r);
	if (strcmp(cmd, "rename") == 0)
		return cli_cmd_rename(cc, error_r);
	if (strcmp(cmd, "relocate") == 0)
		return cli_cmd_relocate(cc, error_r);
	if (strcmp(cmd, "show") == 0)
		return cli_cmd_role_show(cc, error_r);
	if (strcmp(cmd, "journal") == 0)
		return cli_journal_main(cc->dir, (const char *const *)cc->pos, cc->pos_count,
					error_r);
	*error_r = cmd[0] == '\0' ? "missing command" : tstr_printf("unknown command '%s'", cmd);
	return -2;
}

int cli_config_main(int argc, char **argv)
{
	struct cli_config cc = {0};
	const char *error = NULL;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		cli_config_print_usage(argc < 2 ? stderr : stdout, NULL);
		return argc < 2 ? 2 : 0;
	}
	if (crypto_init() < 0)
		return cli_fail("cannot initialise the crypto library");
	if (cli_args_parse(argc - 1, argv + 1, cli_config_flags, cli_config_value_options, &cc.args,
			   &error) < 0) {
		fprintf(stderr, "coffer config: %s\n\n", error);
		cli_config_print_usage(stderr, NULL);
		return 2;
	}
	cc.dir = config_dir_resolve(cli_args_get(&cc.args, "config-dir"));
	cc.pos = cc.args.positional;
	cc.pos_count = cc.args.positional_count;
	char command[32]; /* kept past the tstr buffers the command uses */
	snprintf(command, sizeof(command), "%s", cli_config_command_key(cc.pos, cc.pos_count));
	if (cli_args_flag(&cc.args, "help")) {
		cli_config_print_usage(stdout, command);
		cli_args_free(&cc.args);
		return 0;
	}
	/* Check option names before acting, so a typo changes nothing. */
	int ret = cli_config_check_options(&cc, &error);
	if (ret == 0)
		ret = cli_config_dispatch(&cc, &error);
	cli_args_free(&cc.args);
	if (ret == -2) {
		fprintf(stderr, "coffer config: %s\n\n", error);
		cli_config_print_usage(stderr, command);
		return 2;
	}
	if (ret < 0)
		return cli_fail(error);
	return ret;
}
