#ifndef COFFER_ACCESS_WEB_PRIVATE_H
#define COFFER_ACCESS_WEB_PRIVATE_H
/* What the access-web-*.c files share (private to src/access). */
#include "access-web.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>

struct auth_cache;
struct auth_throttle;
struct event;
struct event_base;
struct http_form_field;
struct http_request;
struct json;
struct access_web_sessions;
struct api_route;
struct str;

#define WEB_SESSION_COOKIE "coffer_session"
#define WEB_CSRF_HEADER "X-CSRF-Token"
#define WEB_CALL_TIMEOUT_SECS 60
/* Failed logins are answered after this long, whatever failed, so that the
 * time of the answer does not tell an unknown instance from a wrong password. */
#define WEB_LOGIN_FAILURE_DELAY_MSECS 400

struct access_web {
	struct role_daemon *rd;
	struct event_base *base;
	struct access_route *route;
	struct http_server *http;
	char *web_dir;
	struct access_web_sessions *sessions;
	struct auth_throttle *throttle;
	struct auth_cache *basic_cache; /* app passwords verified recently */
	struct web_call *calls;         /* under way, for destroy */
	struct log_throttle refused;    /* connections refused by a limit */
};

/* One API request on its way through authentication and instance calls. */
struct web_call {
	struct web_call *prev, *next;
	struct access_web *web; /* NULL once the server is gone */
	struct http_request *req;
	struct event *timer;
	char *url_name;    /* the instance as the URL names it (cookie path) */
	char *instance_id; /* canonical; NULL if unknown */
	char *user_name;   /* once authenticated */
	char *session_token;
	bool basic;                     /* authenticated by HTTP Basic (app password) */
	char *basic_password;           /* until ClientLogin answered (wiped) */
	char *endpoint;                 /* path below /INSTANCE/api/ */
	const struct api_route *route;  /* its row of api_routes[] (access-web-api.c) */
	struct json *body;              /* the JSON request body, or NULL */
	struct http_form_field *params; /* the query */
	size_t param_count;
	/* an answer being streamed (export): errors abort the connection */
	bool streaming;
	bool waiting_instance; /* streaming: a piece is being asked for */
	/* export and other multi-step work */
	void *work;
	void (*work_free)(void *work);
};

/* access-web-static.c: /_branding/NAME (branding.json, logo); false if
 * there is no such file (not answered). */
bool access_web_branding_serve(struct access_web *web, struct http_request *req, const char *name);

/* access-web.c: replies with the common headers. */
void access_web_reply(struct http_request *req, int status, const char *content_type,
		      const void *body, size_t size);
void access_web_reply_json(struct http_request *req, int status, const struct json *json);
void access_web_reply_error(struct http_request *req, int status, const char *code,
			    const char *message);
/* An instance call's error code as an HTTP status. */
int access_web_error_status(const char *code);
/* "attachment; filename=...; filename*=UTF-8''..." for a download name. */
char *access_web_content_disposition(const char *filename);
/* Log context for a request: "web conn=IP:PORT instance=X user=Y". */
const char *access_web_context(const struct web_call *call);

/* web_call life cycle (access-web.c). */
struct web_call *access_web_call_create(struct access_web *web, struct http_request *req);
/* Reply has been sent (or the request is gone): free the call. */
void access_web_call_free(struct web_call *call);
void access_web_call_reply_error(struct web_call *call, int status, const char *code,
				 const char *message);
/* Send an error after `msecs` (the same for every failed login). */
void access_web_call_reply_error_later(struct web_call *call, unsigned int msecs, int status,
				       const char *code, const char *message);

/* access-web-static.c: a file of the web directory; false if there is none
 * of that name (the caller answers 404). */
bool access_web_static_serve(struct access_web *web, struct http_request *req, const char *name,
			     bool cacheable);

/* access-web-api.c: a request below /INSTANCE/api/. */
void access_web_api_handle(struct access_web *web, struct http_request *req, const char *url_name,
			   const char *endpoint);

/* Call a "Client*" method for the call's user (userName is added to args,
 * which are taken); `done` gets the result, or the error is answered. */
typedef void access_web_done_fn(struct web_call *call, const struct json *result, const void *blob,
				size_t blob_len);
void access_web_api_call(struct web_call *call, const char *method, struct json *args,
			 access_web_done_fn *done);
/* A query parameter of the request (borrowed from the call), or NULL. */
const char *access_web_api_param(struct web_call *call, const char *name);

/* access-web-export.c: downloads built by the instance (ClientExport),
 * streamed to the client piece by piece (authenticated). */
void access_web_export_raw(struct web_call *call, long long id);
void access_web_export_selection(struct web_call *call);

#endif
