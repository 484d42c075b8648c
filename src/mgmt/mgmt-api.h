#ifndef COFFER_MGMT_API_H
#define COFFER_MGMT_API_H
/* mgmt-api: the Management API on the Management Server's HTTPS listener.
 *
 *   POST /api/invoke/<Function>   arguments form-encoded or as a JSON object
 *   GET|POST /api/get-metadata    every function with its arguments
 *
 * Every answer is the envelope {"error", "token", "statusVersion",
 * "statusCode", "percentProgress", "statusText", "result", "logOutput"}.
 * Requests authenticate with HTTP Basic as a system administrator. */
#include <stdbool.h>

struct http_request;
struct json;
struct mgmt;
struct mgmt_job;

/* MGMT_API_LIST: a list of strings, given as a JSON array (in a JSON body,
 * or as JSON text in a form field: privileges=["login","export"]) or as
 * comma-separated text (privileges=login,export); functions get a JSON array. */
enum mgmt_api_arg_type {
	MGMT_API_STRING,
	MGMT_API_NUMBER,
	MGMT_API_BOOL,
	MGMT_API_JSON,
	MGMT_API_LIST
};

struct mgmt_api_arg {
	const char *name;
	enum mgmt_api_arg_type type;
	bool required;
	const char *description;
};

#define MGMT_API_MAX_ARGS 8

/* A function: args (validated, typed: strings, integers, booleans, JSON)
 * in. Either `run` answers at once: 0 with *result_r (new reference, may be
 * NULL) or -1 with *error_r; or `start` begins work that ends with
 * mgmt_job_done() (mgmt-jobs.h), now or later. long_running functions answer
 * with a token at once; the others wait up to MGMT_JOBS_ANSWER_MS. */
struct mgmt_api_function {
	const char *name;
	const char *description;
	struct mgmt_api_arg args[MGMT_API_MAX_ARGS];
	int (*run)(struct mgmt *mgmt, const struct json *args, struct json **result_r,
		   const char **error_r);
	void (*start)(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job);
	bool long_running;
};

void mgmt_api_handle(struct http_request *req, void *ctx);

/* The function tables (mgmt-api-*.c), NULL-name terminated. */
extern const struct mgmt_api_function mgmt_api_server_functions[];
extern const struct mgmt_api_function mgmt_api_instance_functions[];
extern const struct mgmt_api_function mgmt_api_admin_functions[];
extern const struct mgmt_api_function mgmt_api_instance_data_functions[];
extern const struct mgmt_api_function mgmt_api_move_functions[];
/* The Management Server stops: moves under way (mgmt-api-move.c) let go of
 * their jobs and links; called before the links are destroyed. */
void mgmt_api_move_abandon_all(void);
extern const struct mgmt_api_function mgmt_api_recover_functions[];
extern const struct mgmt_api_function mgmt_api_console_functions[];  /* mgmt-console.c */
extern const struct mgmt_api_function mgmt_api_branding_functions[]; /* mgmt-branding.c */
extern const struct mgmt_api_function mgmt_api_journal_functions[];  /* mgmt-api-journal.c */

#endif
