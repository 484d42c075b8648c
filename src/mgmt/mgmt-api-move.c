/* mgmt-api-move: MoveInstance, moving an instance with its base directory
 * and key to another Instance Host, as a job (docs/api.md,
 * docs/operations.md "Moving an instance"), and MoveInstances, the same for
 * every instance matching a filter, one after the other in one job.
 *
 * Steps, each a call on the Management Server's control links: the target
 * checks the base directory (MoveInPrepare) while the instance still runs;
 * the source lists its files (MoveOutBegin) and refuses starts and deletes;
 * the target pulls them straight from the source over a pinned, mutually
 * authenticated link between the two Instance Hosts and verifies each
 * piece's SHA-256 (MoveInStart, polled with MoveInStatus) while the
 * instance runs and takes writes; further passes copy what changed
 * (MoveInCatchUp) until one carries little; the source freezes the
 * instance (MoveOutFreeze: reads go on, writes wait) and a last pass makes
 * the copy exact; the target registers it (MoveInCommit); the management
 * database names the target; the Client Access Servers get the new
 * topology; the instance starts on the target (if it ran before); only then
 * does the source stop its frozen process and forget it (StopInstance,
 * MoveOutEnd, DeleteInstance, with its data unless keepSource).
 *
 * The bytes go host to host, not through the Management Server: it would
 * only relay them, at twice the network traffic, and the two hosts can pin
 * each other's registered fingerprints as well as it can.
 *
 * Until the database names the target, every failure (and a cancel) undoes
 * the move: the target's copy is removed and the source thaws the instance
 * (or starts it again, if it ran and has stopped meanwhile). If the
 * instance does not start on the target, the database names the source
 * again and the same happens. */
#include "json.h"
#include "log.h"
#include "mem.h"
#include "mgmt-api.h"
#include "mgmt-jobs.h"
#include "mgmt-links.h"
#include "mgmt.h"
#include "mgmtdb.h"
#include "role-daemon.h"
#include "rpc.h"
#include "tstr.h"

#include <event2/event.h>
#include <fnmatch.h>
#include <string.h>
#include <time.h>

#define MGMT_MOVE_CALL_SECS 120
/* The target is asked how its pass goes, and answers when the pass ends
 * or after MGMT_MOVE_PROGRESS_MS ("waited"), so the next step follows a
 * pass at once; the progress is reported that often. An Instance Host
 * that answers at once (not "waited") is asked every MGMT_MOVE_POLL_MS. */
#define MGMT_MOVE_POLL_MS 50
#define MGMT_MOVE_PROGRESS_MS 200
/* Passes while the instance runs, after the first: each copies what
 * changed during the one before; the instance is frozen for the last pass
 * once one sent at most MGMT_MOVE_SMALL_PASS bytes, or after these. */
#define MGMT_MOVE_RUNNING_CATCHUPS 3
#define MGMT_MOVE_SMALL_PASS (8LL * 1024 * 1024)
/* A job running on the instance keeps it from freezing: caught up again
 * every MGMT_MOVE_BUSY_RETRY_MS meanwhile, and given up after this. */
#define MGMT_MOVE_BUSY_SECS 600
#define MGMT_MOVE_BUSY_RETRY_MS 1000

/* The instances one job moves, one after the other: one for MoveInstance,
 * those matching a filter for MoveInstances. */
struct mgmt_move_batch {
	struct mgmt *mgmt;
	struct mgmt_job *job;
	bool single; /* MoveInstance: the job's result is the move's */
	char *target;
	bool keep_source;
	struct json *targets; /* [{instanceID, baseDirectory?}] */
	size_t next;
	unsigned int failed;
	struct json *results;
	bool cancelled;
	struct mgmt_move *current;
};

struct mgmt_move {
	struct mgmt_move *next;
	struct mgmt *mgmt;
	struct mgmt_job *job;
	struct mgmt_move_batch *batch;
	char *id, *source, *target, *source_dir, *target_dir;
	bool keep_source, was_running;
	bool switched;  /* the database names the target */
	bool call_open; /* an answer is still to come */
	bool abandoned; /* the Management Server stops */
	char *error;    /* why it is being undone */
	bool cancelled;
	struct event *poll;
	bool catch_up_next; /* the poll timer starts a pass, not a status */
	bool frozen;        /* the source froze it for the last pass */
	long long frozen_at_ms, busy_since_ms, progress_at_ms;
};

static struct mgmt_move *mgmt_moves;

static void mgmt_move_batch_free(struct mgmt_move_batch *b)
{
	json_unref(&b->targets);
	json_unref(&b->results);
	mem_free(b->target);
	mem_free(b);
}

static void mgmt_move_free(struct mgmt_move *mv)
{
	for (struct mgmt_move **p = &mgmt_moves; *p != NULL; p = &(*p)->next) {
		if (*p == mv) {
			*p = mv->next;
			break;
		}
	}
	if (mv->poll != NULL)
		event_free(mv->poll);
	mem_free(mv->id);
	mem_free(mv->source);
	mem_free(mv->target);
	mem_free(mv->source_dir);
	mem_free(mv->target_dir);
	mem_free(mv->error);
	mem_free(mv);
}

void mgmt_api_move_abandon_all(void)
{
	for (struct mgmt_move *mv = mgmt_moves, *next; mv != NULL; mv = next) {
		next = mv->next;
		mv->abandoned = true;
		if (!mv->call_open) {
			mgmt_move_batch_free(mv->batch);
			mgmt_move_free(mv);
		}
	}
}

/* Call a host; the answer (or the failure to send) comes to `answer`. */
static void mgmt_move_call(struct mgmt_move *mv, const char *host, const char *method,
			   struct json *args, rpc_answer_fn *answer)
{
	const char *error;
	mv->call_open = true;
	if (mgmt_links_call_host(mv->mgmt->links, host, method, args, MGMT_MOVE_CALL_SECS, answer,
				 mv, &error) < 0)
		answer(NULL, NULL, "unavailable", error, mv);
}

static struct json *mgmt_move_args(const struct mgmt_move *mv)
{
	struct json *args = json_new_object();
	json_set_string(args, "instanceID", mv->id);
	return args;
}

static long long mgmt_move_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take an answer: false if the move is gone (the server stops). */
static bool mgmt_move_answered(struct mgmt_move *mv)
{
	mv->call_open = false;
	if (mv->abandoned) {
		mgmt_move_batch_free(mv->batch);
		mgmt_move_free(mv);
		return false;
	}
	return true;
}

/* Progress of this move, as part of its batch. */
static void mgmt_move_progress(struct mgmt_move *mv, int percent, const char *text)
{
	struct mgmt_move_batch *b = mv->batch;
	if (b->single) {
		mgmt_job_progress(mv->job, percent, text);
		return;
	}
	size_t total = json_count(b->targets), done = b->next - 1;
	mgmt_job_progress(mv->job, (int)((done * 100 + (size_t)percent) / total),
			  tstr_printf("%s (%zu of %zu): %s", mv->id, done + 1, total, text));
}

static void mgmt_move_batch_next(struct mgmt_move_batch *b);

/* This move is over: record it in the batch and go on with the next. */
static void mgmt_move_end(struct mgmt_move *mv, struct json *result, const char *error)
{
	struct mgmt_move_batch *b = mv->batch;
	b->current = NULL;
	if (b->single) {
		if (mv->cancelled && error != NULL)
			mgmt_job_done_cancelled(mv->job, result);
		else
			mgmt_job_done(mv->job, result, error);
		mgmt_move_free(mv);
		mgmt_move_batch_free(b);
		return;
	}
	if (result == NULL) {
		result = json_new_object();
		json_set_string(result, "instanceID", mv->id);
	}
	if (error != NULL) {
		json_set_string(result, "error", error);
		b->failed++;
	}
	json_append(b->results, result);
	mgmt_move_free(mv);
	mgmt_move_batch_next(b);
}

static void mgmt_move_log(struct mgmt_move *mv, const char *text)
{
	mgmt_job_log(mv->job, text);
	log_info(tstr_printf("instance=%s", mv->id), "move to %s: %s", mv->target, text);
}

/* ---- undoing ---- */

static void mgmt_move_finish_undone(struct mgmt_move *mv)
{
	mgmt_links_push_instances(mv->mgmt->links);
	mgmt_move_end(mv, NULL,
		      mv->cancelled ? "cancelled"
				    : tstr_printf("moving %s to %s failed: %s (the instance stays "
						  "on %s)",
						  mv->id, mv->target, mv->error, mv->source));
}

static void mgmt_move_undo_started(struct rpc_conn *conn, const struct json *result,
				   const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL)
		mgmt_move_log(mv,
			      tstr_printf("starting it again on %s failed: %s", mv->source, text));
	else if (json_kind(result) == JSON_KIND_OBJECT)
		mgmt_links_note_instance(mv->mgmt->links, mv->source, mv->id, result);
	mgmt_move_finish_undone(mv);
}

static void mgmt_move_undo_source(struct rpc_conn *conn, const struct json *result,
				  const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL)
		mgmt_move_log(mv, tstr_printf("ending the move on %s: %s", mv->source, text));
	if (mv->was_running)
		mgmt_move_call(mv, mv->source, "StartInstance", mgmt_move_args(mv),
			       mgmt_move_undo_started);
	else
		mgmt_move_finish_undone(mv);
}

static void mgmt_move_undo_target(struct rpc_conn *conn, const struct json *result,
				  const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL)
		mgmt_move_log(mv, tstr_printf("removing the copy on %s: %s", mv->target, text));
	mgmt_move_call(mv, mv->source, "MoveOutEnd", mgmt_move_args(mv), mgmt_move_undo_source);
}

static int mgmt_move_set_host(struct mgmt_move *mv, const char *host, const char *dir,
			      const char **error_r)
{
	struct mgmtdb_instance inst;
	if (mgmtdb_instance_find(mv->mgmt->db, mv->id, &inst) == 0) {
		*error_r = "the instance was deleted meanwhile";
		return -1;
	}
	char *h = mem_strdup(host), *d = mem_strdup(dir);
	inst.instance_host = h;
	inst.base_directory = d;
	int ret = mgmtdb_instance_update(mv->mgmt->db, &inst, error_r);
	if (ret == 0)
		ret = mgmt_db_commit(mv->mgmt, error_r);
	mem_free(h);
	mem_free(d);
	return ret;
}

/* Undo everything: the instance ends where it was, as it was. */
static void mgmt_move_undo(struct mgmt_move *mv, const char *error)
{
	mem_free(mv->error);
	mv->error = mem_strdup(error);
	mgmt_move_log(mv, tstr_printf("undoing: %s", error));
	struct json *args = mgmt_move_args(mv);
	const char *method = "MoveInAbort";
	if (mv->switched) {
		const char *db_error;
		if (mgmt_move_set_host(mv, mv->source, mv->source_dir, &db_error) < 0)
			mgmt_move_log(mv, tstr_printf("naming %s again failed: %s", mv->source,
						      db_error));
		mv->switched = false;
		/* registered there already: unregister it with the copy */
		method = "DeleteInstance";
		json_set_bool(args, "deleteData", true);
	}
	mgmt_move_call(mv, mv->target, method, args, mgmt_move_undo_target);
}

/* An answer that must succeed for the move to go on: false (and undone) if not. */
static bool mgmt_move_step_ok(struct mgmt_move *mv, const char *code, const char *text,
			      const char *what)
{
	if (!mgmt_move_answered(mv))
		return false;
	if (code != NULL) {
		mgmt_move_undo(mv, tstr_printf("%s: %s", what, text));
		return false;
	}
	if (mv->cancelled && !mv->switched) {
		mgmt_move_undo(mv, "cancelled");
		return false;
	}
	return true;
}

/* ---- the steps, in order ---- */

static void mgmt_move_source_deleted(struct rpc_conn *conn, const struct json *result,
				     const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL)
		mgmt_move_log(mv, tstr_printf("removing it from %s failed: %s (remove it there "
					      "by hand)",
					      mv->source, text));
	struct mgmtdb_instance inst;
	const char *state_error;
	struct json *r = json_new_object();
	json_set_string(r, "instanceID", mv->id);
	json_set_string(r, "instanceHost", mv->target);
	json_set_string(r, "baseDirectory", mv->target_dir);
	json_set_string(r, "previousInstanceHost", mv->source);
	json_set_bool(r, "sourceKept", mv->keep_source);
	json_set_string(r, "status",
			mgmtdb_instance_find(mv->mgmt->db, mv->id, &inst) == 1
				? mgmt_links_instance_state(mv->mgmt->links, mv->target, mv->id,
							    &state_error)
				: "unknown");
	mgmt_links_message(mv->mgmt->links, LOG_LEVEL_INFO, "instance %s moved from %s to %s",
			   mv->id, mv->source, mv->target);
	mgmt_move_end(mv, r, NULL);
}

static void mgmt_move_source_ended(struct rpc_conn *conn, const struct json *result,
				   const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL)
		mgmt_move_log(mv, tstr_printf("ending the move on %s: %s", mv->source, text));
	struct json *args = mgmt_move_args(mv);
	json_set_bool(args, "deleteData", !mv->keep_source);
	mgmt_move_call(mv, mv->source, "DeleteInstance", args, mgmt_move_source_deleted);
}

static void mgmt_move_source_stopped(struct rpc_conn *conn, const struct json *result,
				     const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL)
		mgmt_move_log(mv, tstr_printf("stopping it on %s: %s", mv->source, text));
	else if (json_kind(result) == JSON_KIND_OBJECT)
		mgmt_links_note_instance(mv->mgmt->links, mv->source, mv->id, result);
	/* taken: even if the stop failed, the source must not thaw it */
	struct json *args = mgmt_move_args(mv);
	json_set_bool(args, "taken", true);
	mgmt_move_call(mv, mv->source, "MoveOutEnd", args, mgmt_move_source_ended);
}

/* The target holds it: the source's frozen process stops (it took no
 * write since the freeze), then forgets it. */
static void mgmt_move_release_source(struct mgmt_move *mv)
{
	if (mv->frozen)
		mgmt_move_log(mv, tstr_printf("writes were paused for %lld ms",
					      mgmt_move_now_ms() - mv->frozen_at_ms));
	mgmt_move_progress(mv, 99,
			   mv->keep_source ? "unregistering it on the source, keeping its data"
					   : "removing the source's copy");
	mgmt_move_call(mv, mv->source, "StopInstance", mgmt_move_args(mv),
		       mgmt_move_source_stopped);
}

static void mgmt_move_target_started(struct rpc_conn *conn, const struct json *result,
				     const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_step_ok(mv, code, text, tstr_printf("starting it on %s", mv->target)))
		return;
	if (json_kind(result) == JSON_KIND_OBJECT)
		mgmt_links_note_instance(mv->mgmt->links, mv->target, mv->id, result);
	mgmt_move_release_source(mv);
}

/* Registered on the target: start it there if it ran, then let the
 * source go. */
static void mgmt_move_start_on_target(struct mgmt_move *mv)
{
	if (mv->was_running) {
		mgmt_move_progress(mv, 97, tstr_printf("starting it on %s", mv->target));
		mgmt_move_call(mv, mv->target, "StartInstance", mgmt_move_args(mv),
			       mgmt_move_target_started);
	} else {
		mgmt_move_release_source(mv);
	}
}

/* The journal receiver's settings for an instance (its recipient addresses
 * and domains, their mapping to users) are kept by the Instance Host that
 * receives for it, so they go with the instance: read on the source, set
 * on the target, cleared on the source. The move does not fail for them:
 * what could not be carried is logged for SetJournalSettings. */
static void mgmt_move_journal_cleared(struct rpc_conn *conn, const struct json *result,
				      const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL)
		mgmt_move_log(mv, tstr_printf("its journal settings stay on %s too: %s", mv->source,
					      text));
	mgmt_move_start_on_target(mv);
}

static void mgmt_move_journal_set(struct rpc_conn *conn, const struct json *result,
				  const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL) {
		mgmt_move_log(mv,
			      tstr_printf("its journal settings were not set on %s (%s): set them "
					  "with SetJournalSettings",
					  mv->target, text));
		mgmt_move_start_on_target(mv);
		return;
	}
	mgmt_move_log(mv, tstr_printf("journal settings set on %s", mv->target));
	struct json *args = mgmt_move_args(mv);
	json_set(args, "addresses", json_new_array());
	json_set(args, "domains", json_new_array());
	json_set(args, "recipients", json_new_object());
	json_set(args, "unknownRecipients", json_new_null());
	json_set(args, "catchAllUser", json_new_null());
	mgmt_move_call(mv, mv->source, "SetJournalInstance", args, mgmt_move_journal_cleared);
}

static bool mgmt_move_journal_any(const struct json *settings)
{
	return json_count(json_get(settings, "addresses")) > 0 ||
	       json_count(json_get(settings, "domains")) > 0 ||
	       json_count(json_get(settings, "recipients")) > 0;
}

static void mgmt_move_journal_got(struct rpc_conn *conn, const struct json *result,
				  const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL)
		mgmt_move_log(mv, tstr_printf("its journal settings on %s could not be read: %s",
					      mv->source, text));
	if (code != NULL || json_kind(result) != JSON_KIND_OBJECT ||
	    !mgmt_move_journal_any(result)) {
		mgmt_move_start_on_target(mv);
		return;
	}
	struct json *args = json_clone(result);
	json_set_string(args, "instanceID", mv->id);
	mgmt_move_call(mv, mv->target, "SetJournalInstance", args, mgmt_move_journal_set);
}

static void mgmt_move_committed(struct rpc_conn *conn, const struct json *result, const char *code,
				const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	const char *error;
	if (!mgmt_move_step_ok(mv, code, text, tstr_printf("registering it on %s", mv->target)))
		return;
	/* From here the target holds it: name it in the database. */
	mv->switched = true;
	if (mgmt_move_set_host(mv, mv->target, mv->target_dir, &error) < 0) {
		mgmt_move_undo(mv, error);
		return;
	}
	mgmt_links_push_instances(mv->mgmt->links);
	mgmt_links_note_instance_state(mv->mgmt->links, mv->target, mv->id, "stopped");
	mgmt_move_log(mv, tstr_printf("registered on %s", mv->target));
	mgmt_move_call(mv, mv->source, "GetJournalInstance", mgmt_move_args(mv),
		       mgmt_move_journal_got);
}

static void mgmt_move_poll_now(evutil_socket_t fd, short events, void *ctx);
static void mgmt_move_copy_started(struct rpc_conn *conn, const struct json *result,
				   const char *code, const char *text, void *ctx);

static void mgmt_move_poll_later(struct mgmt_move *mv, long ms, bool catch_up)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	mv->catch_up_next = catch_up;
	event_add(mv->poll, &tv);
}

static void mgmt_move_frozen_answer(struct rpc_conn *conn, const struct json *result,
				    const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL && strcmp(code, "busy") == 0) {
		/* a job (an import) runs: it must end before the freeze; keep
		 * up with it meanwhile */
		long long now = mgmt_move_now_ms();
		if (mv->busy_since_ms == 0) {
			mv->busy_since_ms = now;
			mgmt_move_log(mv, tstr_printf("waiting to freeze it: %s", text));
		} else if (now - mv->busy_since_ms > MGMT_MOVE_BUSY_SECS * 1000LL) {
			mgmt_move_undo(mv, tstr_printf("it could not be frozen for %d s: %s",
						       MGMT_MOVE_BUSY_SECS, text));
			return;
		}
		mgmt_move_poll_later(mv, MGMT_MOVE_BUSY_RETRY_MS, true);
		return;
	}
	if (!mgmt_move_step_ok(mv, code, text, tstr_printf("freezing it on %s", mv->source)))
		return;
	if (json_kind(result) == JSON_KIND_OBJECT)
		mgmt_links_note_instance(mv->mgmt->links, mv->source, mv->id, result);
	mv->frozen = true;
	mv->frozen_at_ms = mgmt_move_now_ms();
	mgmt_move_progress(mv, 93, "last catch-up, writes paused");
	mgmt_move_poll_later(mv, 0, true);
}

/* A pass is over. Another one while the instance runs, as long as they
 * still carry much; then the frozen last one; then the target takes it. */
static void mgmt_move_pass_done(struct mgmt_move *mv, const struct json *result, long long pass)
{
	long long sent = 0, files = 0;
	(void)json_get_int(result, "bytesSent", &sent);
	(void)json_get_int(result, "filesCopied", &files);
	mgmt_move_log(mv, tstr_printf("pass %lld%s: %lld files, %lld bytes copied and verified",
				      pass, mv->frozen ? " (frozen)" : "", files, sent));
	if (mv->frozen) {
		mgmt_move_progress(mv, 95, tstr_printf("registering it on %s", mv->target));
		mgmt_move_call(mv, mv->target, "MoveInCommit", mgmt_move_args(mv),
			       mgmt_move_committed);
	} else if (mv->busy_since_ms == 0 && pass <= MGMT_MOVE_RUNNING_CATCHUPS &&
		   (pass == 1 || sent > MGMT_MOVE_SMALL_PASS)) {
		mgmt_move_progress(mv, 90, tstr_printf("catching up (pass %lld)", pass + 1));
		mgmt_move_poll_later(mv, 0, true);
	} else {
		mgmt_move_progress(mv, 92, tstr_printf("freezing it on %s", mv->source));
		mgmt_move_call(mv, mv->source, "MoveOutFreeze", mgmt_move_args(mv),
			       mgmt_move_frozen_answer);
	}
}

static void mgmt_move_status(struct rpc_conn *conn, const struct json *result, const char *code,
			     const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_step_ok(mv, code, text, tstr_printf("asking %s", mv->target)))
		return;
	const char *state = json_get_string(result, "state");
	long long done = 0, total = 0;
	(void)json_get_int(result, "bytesDone", &done);
	(void)json_get_int(result, "bytesTotal", &total);
	long long pass = 1;
	(void)json_get_int(result, "pass", &pass);
	if (state != NULL && strcmp(state, "failed") == 0) {
		mgmt_move_undo(mv, tstr_printf("copying: %s", json_get_string(result, "error")));
	} else if (state != NULL && strcmp(state, "copied") == 0) {
		mgmt_move_pass_done(mv, result, pass);
	} else {
		long long now = mgmt_move_now_ms();
		if (pass == 1 && now - mv->progress_at_ms >= MGMT_MOVE_PROGRESS_MS) {
			mv->progress_at_ms = now;
			int percent = total > 0 ? 5 + (int)(done * 85 / total) : 5;
			mgmt_move_progress(mv, percent,
					   tstr_printf("copying: %lld of %lld bytes", done, total));
		}
		mgmt_move_poll_later(
			mv, json_get_bool(result, "waited", false) ? 0 : MGMT_MOVE_POLL_MS, false);
	}
}

static void mgmt_move_poll_now(evutil_socket_t fd, short events, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (mv->cancelled) {
		mgmt_move_undo(mv, "cancelled");
		return;
	}
	if (mv->catch_up_next) {
		mv->catch_up_next = false;
		mgmt_move_call(mv, mv->target, "MoveInCatchUp", mgmt_move_args(mv),
			       mgmt_move_copy_started);
		return;
	}
	struct json *args = mgmt_move_args(mv);
	json_set_int(args, "waitMs", MGMT_MOVE_PROGRESS_MS);
	mgmt_move_call(mv, mv->target, "MoveInStatus", args, mgmt_move_status);
}

static void mgmt_move_copy_started(struct rpc_conn *conn, const struct json *result,
				   const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_step_ok(mv, code, text, tstr_printf("starting the copy on %s", mv->target)))
		return;
	mgmt_move_poll_now(-1, 0, mv);
}

static void mgmt_move_source_listed(struct rpc_conn *conn, const struct json *result,
				    const char *code, const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_step_ok(mv, code, text, tstr_printf("listing it on %s", mv->source)))
		return;
	struct mgmtdb_server src;
	const char *token = json_get_string(result, "moveToken");
	if (mgmtdb_server_find(mv->mgmt->db, MGMTDB_INSTANCE_HOST, mv->source, &src) == 0 ||
	    token == NULL) {
		mgmt_move_undo(mv, "the source Instance Host is no longer registered");
		return;
	}
	long long entries = 0, bytes = 0;
	(void)json_get_int(result, "entries", &entries);
	(void)json_get_int(result, "bytes", &bytes);
	mgmt_move_log(
		mv, tstr_printf("%lld files and directories, %lld bytes to copy", entries, bytes));
	mgmt_move_progress(mv, 5, tstr_printf("copying %lld bytes", bytes));
	struct json *args = mgmt_move_args(mv);
	struct json *source = json_new_object();
	json_set_string(source, "address", src.server_name);
	json_set_int(source, "port", src.port);
	json_set_string(source, "fingerprint", src.fingerprint);
	json_set(args, "source", source);
	json_set_string(args, "moveToken", token);
	mgmt_move_call(mv, mv->target, "MoveInStart", args, mgmt_move_copy_started);
}

/* The source lists its files while the instance runs on. */
static void mgmt_move_begin_out(struct mgmt_move *mv)
{
	struct mgmtdb_server target;
	if (mgmtdb_server_find(mv->mgmt->db, MGMTDB_INSTANCE_HOST, mv->target, &target) == 0) {
		mgmt_move_undo(mv, "the target Instance Host is no longer registered");
		return;
	}
	struct json *args = mgmt_move_args(mv);
	json_set_string(args, "peerFingerprint", target.fingerprint);
	mgmt_move_call(mv, mv->source, "MoveOutBegin", args, mgmt_move_source_listed);
}

static void mgmt_move_prepared(struct rpc_conn *conn, const struct json *result, const char *code,
			       const char *text, void *ctx)
{
	struct mgmt_move *mv = ctx;
	if (!mgmt_move_answered(mv))
		return;
	if (code != NULL) {
		/* nothing was touched yet: the instance never stopped */
		mgmt_move_end(mv, NULL,
			      tstr_printf("moving %s to %s failed: %s (the instance stays on %s)",
					  mv->id, mv->target, text, mv->source));
		return;
	}
	if (mv->cancelled) {
		mgmt_move_undo(mv, "cancelled");
		return;
	}
	mgmt_move_progress(mv, 2, tstr_printf("listing it on %s", mv->source));
	mgmt_move_begin_out(mv);
}

static void mgmt_move_cancel(struct mgmt_job *job, void *ctx)
{
	/* takes effect at the next step of the move under way; once the
	 * target holds the instance that move is finished instead. No further
	 * instance is moved. */
	struct mgmt_move_batch *b = ctx;
	b->cancelled = true;
	if (b->current != NULL)
		b->current->cancelled = true;
}

/* Start moving one instance: -1 with *error_r if it cannot begin. */
static int mgmt_move_start(struct mgmt_move_batch *b, const struct json *t, const char **error_r)
{
	struct mgmt *mgmt = b->mgmt;
	struct mgmtdb_instance inst;
	struct mgmtdb_server target;
	const char *id = json_get_string(t, "instanceID");
	const char *dir = json_get_string(t, "baseDirectory");
	if (mgmtdb_instance_find(mgmt->db, id, &inst) == 0) {
		*error_r = tstr_printf("no instance '%s'", id);
		return -1;
	}
	if (mgmtdb_server_find(mgmt->db, MGMTDB_INSTANCE_HOST, b->target, &target) == 0) {
		*error_r = tstr_printf("argument 'targetInstanceHost': no Instance Host '%s' is "
				       "registered",
				       b->target);
		return -1;
	}
	if (strcmp(inst.instance_host, target.server_name) == 0) {
		*error_r = tstr_printf("instance %s already lives on %s", inst.id, b->target);
		return -1;
	}
	for (struct mgmt_move *mv = mgmt_moves; mv != NULL; mv = mv->next) {
		if (strcmp(mv->id, inst.id) == 0) {
			*error_r = tstr_printf("instance %s is being moved already", inst.id);
			return -1;
		}
	}
	struct mgmt_move *mv = mem_new(struct mgmt_move);
	mv->mgmt = mgmt;
	mv->job = b->job;
	mv->batch = b;
	mv->id = mem_strdup(inst.id);
	mv->source = mem_strdup(inst.instance_host);
	mv->target = mem_strdup(target.server_name);
	mv->source_dir = mem_strdup(inst.base_directory);
	mv->target_dir = mem_strdup(dir != NULL ? dir : inst.base_directory);
	mv->keep_source = b->keep_source;
	const char *state_error;
	const char *state =
		mgmt_links_instance_state(mgmt->links, mv->source, mv->id, &state_error);
	mv->was_running = strcmp(state, "running") == 0 || strcmp(state, "frozen") == 0 ||
			  strcmp(state, "starting") == 0;
	mv->poll = evtimer_new(role_daemon_base(mgmt->rd), mgmt_move_poll_now, mv);
	mv->next = mgmt_moves;
	mgmt_moves = mv;
	b->current = mv;
	mgmt_move_progress(mv, 0, tstr_printf("checking %s on %s", mv->target_dir, mv->target));
	struct json *host_args = mgmt_move_args(mv);
	json_set_string(host_args, "baseDirectory", mv->target_dir);
	mgmt_move_call(mv, mv->target, "MoveInPrepare", host_args, mgmt_move_prepared);
	return 0;
}

static void mgmt_move_batch_next(struct mgmt_move_batch *b)
{
	const char *error;
	while (!b->cancelled && b->next < json_count(b->targets)) {
		const struct json *t = json_at(b->targets, b->next++);
		if (mgmt_move_start(b, t, &error) == 0)
			return; /* its end calls us again */
		if (b->single) {
			mgmt_job_done(b->job, NULL, error);
			mgmt_move_batch_free(b);
			return;
		}
		struct json *r = json_new_object();
		json_set_string(r, "instanceID", json_get_string(t, "instanceID"));
		json_set_string(r, "error", error);
		json_append(b->results, r);
		b->failed++;
	}
	/* The per-instance results go with a failure too: they say which failed. */
	struct json *results = b->results;
	b->results = NULL;
	if (b->cancelled)
		mgmt_job_done_cancelled(b->job, results);
	else
		mgmt_job_done(b->job, results,
			      b->failed > 0 ? tstr_printf("MoveInstances failed for %u of %zu "
							  "instance(s)",
							  b->failed, json_count(b->targets))
					    : NULL);
	mgmt_move_batch_free(b);
}

static struct mgmt_move_batch *mgmt_move_batch_create(struct mgmt *mgmt, const struct json *args,
						      struct mgmt_job *job)
{
	struct mgmt_move_batch *b = mem_new(struct mgmt_move_batch);
	b->mgmt = mgmt;
	b->job = job;
	b->target = mem_strdup(json_get_string(args, "targetInstanceHost"));
	b->keep_source = json_get_bool(args, "keepSource", false);
	b->targets = json_new_array();
	b->results = json_new_array();
	mgmt_job_on_cancel(job, mgmt_move_cancel, b);
	return b;
}

static void mgmt_api_move_instance(struct mgmt *mgmt, const struct json *args, struct mgmt_job *job)
{
	struct mgmt_move_batch *b = mgmt_move_batch_create(mgmt, args, job);
	b->single = true;
	struct json *t = json_new_object();
	json_set_string(t, "instanceID", json_get_string(args, "instanceID"));
	if (json_get_string(args, "baseDirectory") != NULL)
		json_set_string(t, "baseDirectory", json_get_string(args, "baseDirectory"));
	json_append(b->targets, t);
	mgmt_move_batch_next(b);
}

static void mgmt_api_move_instances(struct mgmt *mgmt, const struct json *args,
				    struct mgmt_job *job)
{
	const char *filter = json_get_string(args, "instanceFilter");
	const char *to = json_get_string(args, "targetInstanceHost");
	const char *parent = json_get_string(args, "targetDirectory");
	const char *from = json_get_string(args, "sourceInstanceHost");
	struct mgmt_move_batch *b = mgmt_move_batch_create(mgmt, args, job);
	/* Collected first: the database changes as instances move. */
	for (size_t n = 0; n < mgmtdb_instance_count(mgmt->db); n++) {
		struct mgmtdb_instance i;
		mgmtdb_instance_get(mgmt->db, n, &i);
		if (strcmp(i.instance_host, to) != 0 &&
		    (from == NULL || strcmp(i.instance_host, from) == 0) &&
		    (fnmatch(filter, i.id, 0) == 0 ||
		     (i.alias[0] != '\0' && fnmatch(filter, i.alias, 0) == 0))) {
			struct json *t = json_new_object();
			json_set_string(t, "instanceID", i.id);
			if (parent != NULL)
				json_set_string(t, "baseDirectory",
						tstr_printf("%s/%s", parent, i.id));
			json_append(b->targets, t);
		}
	}
	mgmt_move_batch_next(b);
}

const struct mgmt_api_function mgmt_api_move_functions[] = {
	{"MoveInstance",
	 "Move an instance with its data and key to another Instance Host (a job: copied host "
	 "to host and verified while it runs, caught up, frozen for the last catch-up, started "
	 "there, then removed from the source).",
	 {{"instanceID", MGMT_API_STRING, true, "the instance's ID or alias"},
	  {"targetInstanceHost", MGMT_API_STRING, true, "the registered Instance Host to move to"},
	  {"baseDirectory", MGMT_API_STRING, false,
	   "its base directory on the target (absent or empty; default: the same path)"},
	  {"keepSource", MGMT_API_BOOL, false,
	   "keep the base directory and key on the source (default false)"}},
	 NULL,
	 mgmt_api_move_instance,
	 true},
	{"MoveInstances",
	 "Move every instance matching a filter (and not on the target yet) to another Instance "
	 "Host, one after the other, each as MoveInstance does.",
	 {{"instanceFilter", MGMT_API_STRING, true,
	   "instance IDs or aliases, * and ? as wildcards"},
	  {"targetInstanceHost", MGMT_API_STRING, true, "the registered Instance Host to move to"},
	  {"sourceInstanceHost", MGMT_API_STRING, false,
	   "only the instances on this Instance Host (to empty it)"},
	  {"targetDirectory", MGMT_API_STRING, false,
	   "a directory on the target: each base directory becomes <targetDirectory>/<ID> "
	   "(default: the same path as on the source)"},
	  {"keepSource", MGMT_API_BOOL, false,
	   "keep the base directories and keys on the source (default false)"}},
	 NULL,
	 mgmt_api_move_instances,
	 true},
	{NULL, NULL, {{0}}, NULL, NULL, false},
};
