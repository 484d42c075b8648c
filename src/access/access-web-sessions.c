#include "access-web-sessions.h"
#include "crypto.h"
#include "hash.h"
#include "hex.h"
#include "mem.h"

#include <string.h>
#include <strings.h>

#define SESSION_TOKEN_BYTES 32

/* The table is keyed by the hex SHA-256 of the token, never the token: a
 * lookup's timing can tell at most something about a hash whose input an
 * attacker cannot find, so no constant-time scan of every session is
 * needed, and a memory dump still shows no usable token. */
#define SESSION_KEY_LEN (CRYPTO_SHA256_LEN * 2)

struct session_entry {
	struct session_entry *prev, *next; /* most recently used first */
	char key[SESSION_KEY_LEN + 1];
	struct access_web_session s;
};

struct access_web_sessions {
	struct hash *by_key; /* key -> struct session_entry */
	struct session_entry *head, *tail;
	size_t count;
	unsigned int max, idle_secs, max_age_secs;
};

struct access_web_sessions *access_web_sessions_create(unsigned int max_sessions,
						       unsigned int idle_secs,
						       unsigned int max_age_secs)
{
	struct access_web_sessions *t = mem_new(struct access_web_sessions);
	t->max = max_sessions == 0 ? 1 : max_sessions;
	t->idle_secs = idle_secs;
	t->max_age_secs = max_age_secs;
	t->by_key = hash_create();
	return t;
}

static void sessions_unlink(struct access_web_sessions *t, struct session_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		t->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		t->tail = e->prev;
	e->prev = e->next = NULL;
}

static void sessions_push_front(struct access_web_sessions *t, struct session_entry *e)
{
	e->prev = NULL;
	e->next = t->head;
	if (t->head != NULL)
		t->head->prev = e;
	t->head = e;
	if (t->tail == NULL)
		t->tail = e;
}

static void sessions_free(struct access_web_sessions *t, struct session_entry *e)
{
	sessions_unlink(t, e);
	hash_remove(t->by_key, e->key);
	t->count--;
	crypto_wipe(e->s.csrf_token, strlen(e->s.csrf_token));
	mem_free(e->s.csrf_token);
	mem_free(e->s.user_json);
	mem_free(e->s.instance_id);
	mem_free(e->s.user_name);
	mem_free(e);
}

void access_web_sessions_destroy(struct access_web_sessions **_t)
{
	struct access_web_sessions *t = *_t;
	if (t == NULL)
		return;
	while (t->head != NULL)
		sessions_free(t, t->head);
	hash_destroy(&t->by_key);
	mem_free(t);
	*_t = NULL;
}

static void sessions_key(const char *token, char key_r[SESSION_KEY_LEN + 1])
{
	unsigned char hash[CRYPTO_SHA256_LEN];
	crypto_sha256(token, strlen(token), hash);
	hex_encode(hash, sizeof(hash), key_r);
}

char *access_web_sessions_add(struct access_web_sessions *t, const char *instance_id,
			      const char *user_name, time_t now,
			      struct access_web_session **session_r)
{
	while (t->count >= t->max)
		sessions_free(t, t->tail);
	struct session_entry *e = mem_new(struct session_entry);
	char *token = crypto_random_hex(SESSION_TOKEN_BYTES);
	sessions_key(token, e->key);
	e->s.instance_id = mem_strdup(instance_id);
	e->s.user_name = mem_strdup(user_name);
	e->s.csrf_token = crypto_random_hex(SESSION_TOKEN_BYTES);
	e->s.created = e->s.last_used = now;
	sessions_push_front(t, e);
	hash_set(t->by_key, e->key, e);
	t->count++;
	*session_r = &e->s;
	return token;
}

static bool sessions_expired(const struct access_web_sessions *t, const struct session_entry *e,
			     time_t now)
{
	return now < e->s.created || now - e->s.last_used > (time_t)t->idle_secs ||
	       now - e->s.created > (time_t)t->max_age_secs;
}

static struct session_entry *sessions_lookup(struct access_web_sessions *t, const char *token)
{
	if (token == NULL || strlen(token) != SESSION_TOKEN_BYTES * 2)
		return NULL;
	char key[SESSION_KEY_LEN + 1];
	sessions_key(token, key);
	return hash_get(t->by_key, key);
}

struct access_web_session *access_web_sessions_find(struct access_web_sessions *t,
						    const char *token, time_t now)
{
	/* Expired sessions are least recently used: drop them from the tail. */
	while (t->tail != NULL && sessions_expired(t, t->tail, now))
		sessions_free(t, t->tail);
	struct session_entry *e = sessions_lookup(t, token);
	if (e == NULL)
		return NULL;
	if (sessions_expired(t, e, now)) {
		sessions_free(t, e);
		return NULL;
	}
	e->s.last_used = now;
	sessions_unlink(t, e);
	sessions_push_front(t, e);
	return &e->s;
}

bool access_web_sessions_remove(struct access_web_sessions *t, const char *token)
{
	struct session_entry *e = sessions_lookup(t, token);
	if (e == NULL)
		return false;
	sessions_free(t, e);
	return true;
}

size_t access_web_sessions_remove_user(struct access_web_sessions *t, const char *instance_id,
				       const char *user_name, const char *keep_token)
{
	struct session_entry *keep = keep_token == NULL ? NULL : sessions_lookup(t, keep_token);
	size_t removed = 0;
	for (struct session_entry *e = t->head, *next; e != NULL; e = next) {
		next = e->next;
		if (e != keep && strcmp(e->s.instance_id, instance_id) == 0 &&
		    strcasecmp(e->s.user_name, user_name) == 0) {
			sessions_free(t, e);
			removed++;
		}
	}
	return removed;
}

size_t access_web_sessions_count(struct access_web_sessions *t)
{
	return t->count;
}

bool access_web_sessions_csrf_ok(const struct access_web_session *session, const char *token)
{
	size_t len = strlen(session->csrf_token);
	return token != NULL && strlen(token) == len &&
	       crypto_equal(session->csrf_token, token, len);
}
