/* The engine through its library API: import, read back byte for byte,
 * dedup, search, verify, rebuild (the CLI-level tests are in tests/archive). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive-import.h"
#include "archive.h"
#include "file.h"
#include "mem.h"
#include "str.h"
#include "test-tmpdir.h"

static char *tmpdir;

struct events {
	int archived, duplicates, skipped;
	int64_t last_id;
};

static void on_event(const struct archive_import_event *ev, void *context)
{
	struct events *e = context;
	if (ev->type == ARCHIVE_IMPORT_ARCHIVED) {
		e->archived++;
		e->last_id = ev->message_id;
	} else if (ev->type == ARCHIVE_IMPORT_DUPLICATE) {
		e->duplicates++;
	} else if (ev->type == ARCHIVE_IMPORT_SKIPPED) {
		e->skipped++;
	}
}

static void count_hit(const struct archive_hit *hit, void *context)
{
	(*(int *)context)++;
}

static void no_report(const char *line, void *context)
{
	fprintf(stderr, "report: %s\n", line);
}

static void test_import_read_verify_rebuild(void **state)
{
	char *base = mem_printf("%s/base", tmpdir), *key = mem_printf("%s/keys/k", tmpdir);
	char *eml = mem_printf("%s/one.eml", tmpdir), *mbox = mem_printf("%s/two.mbox", tmpdir);
	const char *message = "From: a@example.com\r\nSubject: unit\r\n\r\nhello engine\r\n";
	const char *error;
	assert_int_equal(file_write_atomic(eml, message, strlen(message), 0600, &error), 0);
	const char *mb = "From x Tue Jan  2 10:00:00 2018\nSubject: m1\n\nfirst\n\n"
			 "From x Tue Jan  2 10:00:00 2018\nSubject: m2\n\n>From second\n";
	assert_int_equal(file_write_atomic(mbox, mb, strlen(mb), 0600, &error), 0);

	struct archive_settings set = {
		.base_dir = base, .key_file = key, .create = true, .write = true};
	struct archive *a;
	assert_int_equal(archive_open(&set, &a, &error), 0);
	struct events ev = {0};
	struct archive_import_settings is = {.cb = on_event, .context = &ev, .workers = 2};
	const char *paths[] = {eml, mbox, eml};
	struct archive_import_result result;
	assert_int_equal(archive_import(a, &is, paths, 3, &result, &error), 0);
	assert_int_equal(ev.archived, 3);
	assert_int_equal(ev.duplicates, 1); /* the same file twice, same folder */
	assert_int_equal(result.archived, 3);

	unsigned char *data;
	size_t len;
	assert_int_equal(archive_read_message(a, ev.last_id, &data, &len, &error), 1);
	assert_int_equal(len, strlen("Subject: m2\n\nFrom second\n"));
	assert_memory_equal(data, "Subject: m2\n\nFrom second\n", len);
	mem_free(data);
	assert_int_equal(archive_read_message(a, 999, &data, &len, &error), 0);

	uint64_t total;
	int hits = 0;
	assert_int_equal(archive_search(a, "hello", 10, 0, &total, count_hit, &hits, &error), 0);
	assert_int_equal(total, 1);
	assert_int_equal(hits, 1);
	assert_int_equal(archive_verify(a, no_report, NULL, &error), 0);
	struct str *json = str_create(256);
	assert_int_equal(archive_stats_json(a, json, &error), 0);
	assert_non_null(strstr(str_c(json), "\"messages\":3"));
	str_destroy(&json);
	archive_destroy(&a);

	/* the catalog is rebuilt from the segments alone */
	char *db = mem_printf("%s/catalog.db", base);
	assert_int_equal(unlink(db), 0);
	set.create = false;
	assert_int_equal(archive_open(&set, &a, &error), -1);
	assert_non_null(strstr(error, "rebuild"));
	assert_int_equal(archive_rebuild(&set, no_report, NULL, &error), 0);
	assert_int_equal(archive_open(&set, &a, &error), 0);
	assert_int_equal(archive_search(a, "", 10, 0, &total, count_hit, &hits, &error), 0);
	assert_int_equal(total, 3);
	assert_int_equal(archive_verify(a, no_report, NULL, &error), 0);
	archive_destroy(&a);

	/* a wrong key is refused */
	char *other = mem_printf("%s/other.key", tmpdir);
	const char *hexkey = "0000000000000000000000000000000000000000000000000000000000000000\n";
	assert_int_equal(file_write_atomic(other, hexkey, strlen(hexkey), 0600, &error), 0);
	set.key_file = other;
	assert_int_equal(archive_open(&set, &a, &error), -1);
	assert_non_null(strstr(error, "does not belong"));

	mem_free(other);
	mem_free(db);
	mem_free(base);
	mem_free(key);
	mem_free(eml);
	mem_free(mbox);
}

/* A crash after the key file was written but before the base directory was
 * marked as the key's: a writer finishes the creation (nothing was archived),
 * a reader refuses, and a base directory holding a catalog is never adopted. */
static void test_interrupted_creation(void **state)
{
	char *base = mem_printf("%s/half", tmpdir), *key = mem_printf("%s/keys/half", tmpdir);
	char *other = mem_printf("%s/keys/other", tmpdir);
	const char *error;
	assert_int_equal(archive_key_file_create(key, &error), 0);
	assert_int_equal(file_mkdir_parents(base, 0700, &error), 0);
	struct archive_settings set = {.base_dir = base, .key_file = key};
	struct archive *a = NULL;
	assert_int_equal(archive_open(&set, &a, &error), -1);
	assert_non_null(strstr(error, "no key-check"));
	set.write = true;
	assert_int_equal(archive_open(&set, &a, &error), 0);
	assert_int_equal(archive_verify(a, no_report, NULL, &error), 0);
	archive_destroy(&a);
	/* now it is this key's: another key is refused */
	assert_int_equal(archive_key_file_create(other, &error), 0);
	set.key_file = other;
	assert_int_equal(archive_open(&set, &a, &error), -1);
	assert_non_null(strstr(error, "does not belong"));
	mem_free(base);
	mem_free(key);
	mem_free(other);
}

/* Message i of the dictionary test: its words drift with i, as mail does
 * over the years. */
static char *drift_message(unsigned int i)
{
	static const char *const eras[] = {"alpha mips kernel tlb cache flush patch",
					   "octeon cavium ethernet driver interrupt",
					   "devicetree binding clock regulator dma"};
	const char *era = eras[(i / 1500) % 3];
	struct str *s = str_create(1024);
	str_printfa(s,
		    "From: user%u@example.com\nTo: list@example.com\n"
		    "Subject: [PATCH %u] %s\nMessage-ID: <%u@example.com>\n\n",
		    i % 97, i, era, i);
	for (unsigned int line = 0; line < 12; line++)
		str_printfa(s, "%s line %u of message %u, value %u\n", era, line, i,
			    i * 7919 % 10007);
	return str_steal(&s);
}

static size_t stats_dictionaries(struct archive *a)
{
	const char *error;
	struct str *json = str_create(256);
	assert_int_equal(archive_stats_json(a, json, &error), 0);
	const char *p = strstr(str_c(json), "\"dictionaries\":");
	assert_non_null(p);
	size_t n = (size_t)strtoul(p + strlen("\"dictionaries\":"), NULL, 10);
	str_destroy(&json);
	return n;
}

static void assert_messages_read_back(struct archive *a, unsigned int count)
{
	const char *error;
	for (unsigned int i = 0; i < count; i++) {
		char *want = drift_message(i);
		unsigned char *data;
		size_t len;
		assert_int_equal(archive_read_message(a, (int64_t)i + 1, &data, &len, &error), 1);
		assert_int_equal(len, strlen(want));
		assert_memory_equal(data, want, len);
		mem_free(data);
		mem_free(want);
	}
}

/* Long imports train new dictionaries as mail drifts; every message reads
 * back byte for byte, also through a reader opened before the newer
 * dictionaries existed, and after a rebuild from the segments alone. */
static void test_dictionary_generations(void **state)
{
	const unsigned int half = 4500;
	char *base = mem_printf("%s/dicts", tmpdir), *key = mem_printf("%s/keys/dicts", tmpdir);
	char *mbox[2] = {mem_printf("%s/first.mbox", tmpdir), mem_printf("%s/second.mbox", tmpdir)};
	const char *error;
	for (unsigned int f = 0; f < 2; f++) {
		struct str *mb = str_create(1024 * 1024);
		for (unsigned int i = f * half; i < (f + 1) * half; i++) {
			char *m = drift_message(i);
			str_printfa(mb, "From x Tue Jan  2 10:00:00 2018\n%s\n", m);
			mem_free(m);
		}
		assert_int_equal(file_write_atomic(mbox[f], str_c(mb), str_len(mb), 0600, &error),
				 0);
		str_destroy(&mb);
	}
	struct archive_settings set = {
		.base_dir = base, .key_file = key, .create = true, .write = true};
	struct archive *a, *reader;
	assert_int_equal(archive_open(&set, &a, &error), 0);
	struct events ev = {0};
	struct archive_import_settings is = {
		.cb = on_event, .context = &ev, .workers = 2, .dict_window = 1024 * 1024};
	struct archive_import_result result;
	assert_int_equal(archive_import(a, &is, (const char *const *)&mbox[0], 1, &result, &error),
			 0);
	size_t first_dicts = stats_dictionaries(a);
	assert_true(first_dicts >= 2);

	struct archive_settings rset = {.base_dir = base, .key_file = key};
	assert_int_equal(archive_open(&rset, &reader, &error), 0);
	/* the second import goes on from where the first left off */
	assert_int_equal(archive_import(a, &is, (const char *const *)&mbox[1], 1, &result, &error),
			 0);
	assert_int_equal(ev.archived, 2 * half);
	size_t dicts = stats_dictionaries(a);
	assert_true(dicts > first_dicts);
	assert_messages_read_back(a, 2 * half);
	assert_messages_read_back(reader, 2 * half);
	assert_int_equal(archive_verify(a, no_report, NULL, &error), 0);
	archive_destroy(&reader);
	archive_destroy(&a);

	char *db = mem_printf("%s/catalog.db", base);
	assert_int_equal(unlink(db), 0);
	set.create = false;
	assert_int_equal(archive_rebuild(&set, no_report, NULL, &error), 0);
	assert_int_equal(archive_open(&set, &a, &error), 0);
	assert_int_equal(stats_dictionaries(a), dicts);
	assert_messages_read_back(a, 2 * half);
	assert_int_equal(archive_verify(a, no_report, NULL, &error), 0);
	archive_destroy(&a);
	mem_free(db);
	mem_free(base);
	mem_free(key);
	mem_free(mbox[0]);
	mem_free(mbox[1]);
}

struct progress_seen {
	uint64_t last_done, last_total;
	int calls;
	bool backwards;
	atomic_bool cancel;
	int cancel_after; /* 0: never */
};

static void on_progress(uint64_t done, uint64_t total, void *context)
{
	struct progress_seen *p = context;
	if (done < p->last_done || done > total)
		p->backwards = true;
	p->last_done = done;
	p->last_total = total;
	if (++p->calls == p->cancel_after)
		atomic_store(&p->cancel, true);
}

/* Verify and rebuild tell how far they got, and stop when asked to; a
 * cancelled rebuild leaves the old catalog in place. */
static void test_progress_and_cancel(void **state)
{
	char *base = mem_printf("%s/progress", tmpdir), *key = mem_printf("%s/keys/p", tmpdir);
	char *mbox = mem_printf("%s/many.mbox", tmpdir);
	struct str *mb = str_create(0);
	for (int i = 0; i < 600; i++)
		str_printfa(mb,
			    "From x Tue Jan  2 10:00:00 2018\nSubject: message %d\n\nbody %d\n\n",
			    i, i);
	const char *error;
	assert_int_equal(file_write_atomic(mbox, str_c(mb), str_len(mb), 0600, &error), 0);
	str_destroy(&mb);
	struct archive_settings set = {
		.base_dir = base, .key_file = key, .create = true, .write = true};
	struct archive *a;
	assert_int_equal(archive_open(&set, &a, &error), 0);
	struct archive_import_settings is = {.workers = 2};
	const char *paths[] = {mbox};
	struct archive_import_result result;
	assert_int_equal(archive_import(a, &is, paths, 1, &result, &error), 0);
	assert_int_equal(result.archived, 600);

	struct progress_seen p = {0};
	struct archive_work work = {
		.report = no_report, .progress = on_progress, .context = &p, .cancel = &p.cancel};
	assert_int_equal(archive_verify_work(a, &work, &error), 0);
	assert_true(p.calls > 5);
	assert_false(p.backwards);
	assert_true(p.last_done == p.last_total && p.last_total > 0);

	p = (struct progress_seen){.cancel_after = 3};
	work.context = &p;
	work.cancel = &p.cancel;
	assert_int_equal(archive_verify_work(a, &work, &error), -1);
	assert_string_equal(error, "cancelled");
	assert_true(p.last_done < p.last_total);
	archive_destroy(&a);

	p = (struct progress_seen){.cancel_after = 2};
	assert_int_equal(archive_rebuild_work(&set, &work, &error), -1);
	assert_string_equal(error, "cancelled");
	set.create = false;
	assert_int_equal(archive_open(&set, &a, &error), 0);
	uint64_t total;
	int hits = 0;
	assert_int_equal(archive_search(a, "", 1, 0, &total, count_hit, &hits, &error), 0);
	assert_int_equal(total, 600);
	archive_destroy(&a);
	char *tmp = mem_printf("%s/catalog.rebuild.db", base);
	assert_int_equal(access(tmp, F_OK), -1);
	mem_free(tmp);

	p = (struct progress_seen){0};
	assert_int_equal(archive_rebuild_work(&set, &work, &error), 0);
	assert_false(p.backwards);
	assert_true(p.calls > 1 && p.last_done == p.last_total);
	mem_free(base);
	mem_free(key);
	mem_free(mbox);
}

static int setup(void **state)
{
	tmpdir = test_tmpdir_create("archive");
	return 0;
}

static int teardown(void **state)
{
	int ret = test_tmpdir_remove(&tmpdir);
	return ret == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_import_read_verify_rebuild),
		cmocka_unit_test(test_interrupted_creation),
		cmocka_unit_test(test_dictionary_generations),
		cmocka_unit_test(test_progress_and_cancel),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
