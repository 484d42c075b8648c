/* The message-source interface: a source in memory that hands its bytes
 * over in small pieces, with owners, folders, keys, failures and limits. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "archive-source.h"
#include "archive.h"
#include "mem.h"
#include "test-tmpdir.h"

static char *tmpdir;

struct mem_message {
	const char *label, *folder, *data;
	const char *const *owners;
	size_t owner_count;
	uint64_t key, size;
	size_t len; /* how much there is: may exceed what a size says */
	bool fail_read;
	const char *skip;
};

struct mem_source {
	const struct mem_message *messages;
	size_t count, next, pos;
	const char *fail_after; /* next() fails with this after the messages */
	int reads;
};

static int mem_next(void *context, struct archive_source_message *msg_r, const char **error_r)
{
	struct mem_source *s = context;
	if (s->next == s->count) {
		if (s->fail_after == NULL)
			return 0;
		*error_r = s->fail_after;
		return -1;
	}
	const struct mem_message *m = &s->messages[s->next++];
	s->pos = 0;
	msg_r->label = m->label;
	msg_r->key = m->key;
	msg_r->folder = m->folder;
	msg_r->owners = m->owners;
	msg_r->owner_count = m->owner_count;
	msg_r->received = 1600000000;
	msg_r->size = m->size;
	msg_r->skip_reason = m->skip;
	msg_r->skip_kind = ARCHIVE_IMPORT_SKIP_UNSUPPORTED;
	return 1;
}

/* at most 7 bytes a call: the pipeline must put the pieces together */
static ssize_t mem_read(void *context, unsigned char *buf, size_t size, const char **error_r)
{
	struct mem_source *s = context;
	const struct mem_message *m = &s->messages[s->next - 1];
	s->reads++;
	if (m->fail_read && s->pos > 0) {
		*error_r = "connection reset in the middle";
		return -1;
	}
	size_t n = m->len - s->pos;
	if (n > 7)
		n = 7;
	if (n > size)
		n = size;
	memcpy(buf, m->data + s->pos, n);
	s->pos += n;
	return (ssize_t)n;
}

static const struct archive_source_funcs mem_funcs = {.next = mem_next, .read = mem_read};

struct seen {
	int archived, duplicates, skipped;
	char users[8][32];
	uint64_t keys[16];
	char reasons[8][128];
	int64_t ids[8];
	/* the key of every event but PROGRESS, in the order they came */
	uint64_t order[16];
	int events;
};

static void on_event(const struct archive_import_event *ev, void *context)
{
	struct seen *s = context;
	if (ev->type != ARCHIVE_IMPORT_PROGRESS && s->events < 16)
		s->order[s->events++] = ev->key;
	if (ev->type == ARCHIVE_IMPORT_ARCHIVED) {
		snprintf(s->users[s->archived], sizeof(s->users[0]), "%s", ev->user);
		s->ids[s->archived] = ev->message_id;
		s->keys[s->archived++] = ev->key;
	} else if (ev->type == ARCHIVE_IMPORT_DUPLICATE) {
		s->duplicates++;
	} else if (ev->type == ARCHIVE_IMPORT_SKIPPED) {
		snprintf(s->reasons[s->skipped++], sizeof(s->reasons[0]), "%s: %s", ev->source,
			 ev->reason);
	}
}

struct folder_count {
	const char *user, *path;
	uint64_t messages;
};

static void on_folder(const struct archive_folder *folder, void *context)
{
	struct folder_count *c = context;
	if (strcmp(folder->user, c->user) == 0 && strcmp(folder->path, c->path) == 0)
		c->messages = folder->messages;
}

static uint64_t folder_messages(struct archive *a, const char *user, const char *path)
{
	struct folder_count c = {.user = user, .path = path};
	const char *error;
	assert_int_equal(archive_folders(a, on_folder, &c, &error), 0);
	return c.messages;
}

static void test_source_import(void **state)
{
	(void)state;
	char *base = mem_printf("%s/base", tmpdir), *key = mem_printf("%s/keys/k", tmpdir);
	static const char shared[] = "From: a@example.com\r\nSubject: for two\r\n\r\n"
				     "one copy, two owners, read in pieces of seven\r\n";
	static const char unsized[] = "From: b@example.com\r\nSubject: no size\r\n\r\nbody\r\n";
	char big[3000];
	memset(big, 'x', sizeof(big));
	memcpy(big, "Subject: big\r\n\r\n", 16);
	static const char *const two[] = {"alice", "bob"};
	const struct mem_message messages[] = {
		{.label = "m1",
		 .key = 11,
		 .folder = "Team/Shared",
		 .owners = two,
		 .owner_count = 2,
		 .data = shared,
		 .len = sizeof(shared) - 1,
		 .size = sizeof(shared) - 1},
		{.label = "m2", .key = 12, .data = unsized, .len = sizeof(unsized) - 1},
		{.label = "big", .key = 13, .data = big, .len = sizeof(big)},
		{.label = "broken",
		 .key = 14,
		 .data = unsized,
		 .len = sizeof(unsized) - 1,
		 .fail_read = true},
		{.label = "refused", .key = 15, .skip = "the source cannot give it"},
		{.label = "short", .key = 16, .data = unsized, .len = 10, .size = 40},
	};
	struct mem_source src = {.messages = messages,
				 .count = sizeof(messages) / sizeof(messages[0]),
				 .fail_after = "connection dropped"};
	const char *error;
	struct archive_settings set = {
		.base_dir = base, .key_file = key, .create = true, .write = true};
	struct archive *a;
	assert_int_equal(archive_open(&set, &a, &error), 0);
	struct seen seen = {0};
	struct archive_import_settings is = {.cb = on_event,
					     .context = &seen,
					     .workers = 2,
					     .user = "carol",
					     .folder = "Imported",
					     .max_message_size = 2048};
	struct archive_import_result result;
	assert_int_equal(archive_source_import(a, &is, &mem_funcs, &src, &result, &error), 0);

	/* one message, two owners: an event for each, in order, with the key */
	assert_int_equal(seen.archived, 3);
	assert_string_equal(seen.users[0], "alice");
	assert_string_equal(seen.users[1], "bob");
	assert_string_equal(seen.users[2], "carol");
	assert_int_equal(seen.keys[0], 11);
	assert_int_equal(seen.keys[1], 11);
	assert_int_equal(seen.keys[2], 12);
	assert_int_equal(folder_messages(a, "alice", "Team/Shared"), 1);
	assert_int_equal(folder_messages(a, "bob", "Team/Shared"), 1);
	assert_int_equal(folder_messages(a, "carol", "Imported"), 1);
	for (int i = 0; i < 2; i++) {
		unsigned char *data;
		size_t len;
		assert_int_equal(archive_read_message(a, seen.ids[i], &data, &len, &error), 1);
		assert_int_equal(len, sizeof(shared) - 1);
		assert_memory_equal(data, shared, len);
		mem_free(data);
	}

	/* in the source's order: a skip never overtakes the messages before it
	 * that wait for their batch's commit */
	static const uint64_t order[] = {11, 11, 12, 13, 14, 15, 16, 0};
	assert_int_equal(seen.events, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(seen.order[i], order[i]);

	/* every failure reported with its reason, the import went on */
	assert_int_equal(seen.skipped, 5);
	assert_non_null(strstr(seen.reasons[0], "big: too large"));
	assert_non_null(strstr(seen.reasons[1], "broken: connection reset"));
	assert_non_null(strstr(seen.reasons[2], "refused: the source cannot give it"));
	assert_non_null(strstr(seen.reasons[3], "short: the message ended after 10 of its 40"));
	assert_string_equal(seen.reasons[4], "(source): connection dropped");
	assert_int_equal(result.skipped_by_kind[ARCHIVE_IMPORT_SKIP_TOO_LARGE], 1);
	assert_int_equal(result.skipped_by_kind[ARCHIVE_IMPORT_SKIP_UNREADABLE], 3);
	assert_int_equal(result.skipped_by_kind[ARCHIVE_IMPORT_SKIP_UNSUPPORTED], 1);
	/* the refused message was not read to its end: 2048 bytes at most */
	assert_true(src.reads < 3000 / 7);

	/* again: nothing new, a duplicate for each owner */
	memset(&seen, 0, sizeof(seen));
	src.next = 0;
	src.fail_after = NULL;
	src.count = 2;
	assert_int_equal(archive_source_import(a, &is, &mem_funcs, &src, &result, &error), 0);
	assert_int_equal(seen.archived, 0);
	assert_int_equal(seen.duplicates, 3);
	assert_int_equal(result.duplicates, 3);
	archive_destroy(&a);
	mem_free(base);
	mem_free(key);
}

static int setup(void **state)
{
	(void)state;
	tmpdir = test_tmpdir_create("archive-source");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return test_tmpdir_remove(&tmpdir) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_source_import),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
