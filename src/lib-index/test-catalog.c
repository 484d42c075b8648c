#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "crypto.h"
#include "file.h"
#include "mem.h"
#include "test-tmpdir.h"

static char *tmpdir;

struct hits {
	size_t count;
	int64_t ids[16];
};

static void collect(const struct catalog_hit *hit, void *context)
{
	struct hits *h = context;
	if (h->count < 16)
		h->ids[h->count++] = hit->id;
}

static uint64_t search(struct catalog *cat, const char *query, struct hits *h)
{
	uint64_t total;
	const char *error = NULL;
	memset(h, 0, sizeof(*h));
	if (catalog_search(cat, query, 10, 0, &total, collect, h, &error) < 0)
		fail_msg("%s: %s", query, error);
	return total;
}

static int64_t add(struct catalog *cat, int n, const char *from, const char *subject,
		   const char *body, int64_t date, const char *folder, bool attachment)
{
	const char *error = NULL;
	struct catalog_content c = {
		.loc = {.store_id = 1, .segment = 1, .offset = (uint64_t)n * 100, .length = 100},
		.size = (uint64_t)n * 1000,
		.date = date,
		.from = from,
		.to = "list@example.org",
		.cc = "",
		.subject = subject,
		.imap = "NIL",
		.imap_len = 3,
		.body_text = body,
		.attachment_names = attachment ? "report.pdf" : "",
		.has_attachment = attachment,
	};
	memset(c.hash, n, sizeof(c.hash));
	int64_t content_id, msg_id;
	if (catalog_content_add(cat, &c, &content_id, &error) < 0)
		fail_msg("%s", error);
	assert_int_equal(catalog_message_add(cat, content_id, "alice", folder, date, date, &c.loc,
					     &msg_id, &error),
			 1);
	/* filing the same content in the same folder again is a no-op */
	assert_int_equal(catalog_message_add(cat, content_id, "alice", folder, date, date, &c.loc,
					     &msg_id, &error),
			 0);
	return msg_id;
}

/* A new catalog with one store, inside an open transaction. */
static struct catalog *catalog_with_store(const char *path, const unsigned char *key,
					  int64_t *store_id_r)
{
	const char *error = NULL;
	struct catalog *cat;
	assert_int_equal(catalog_open(path, key, &cat, &error), 0);
	assert_int_equal(catalog_begin(cat, &error), 0);
	assert_int_equal(
		catalog_store_add(cat, "store-0001", CATALOG_STORE_CURRENT, store_id_r, &error), 0);
	return cat;
}

static void test_catalog(void **state)
{
	const char *error = NULL;
	char *path = mem_printf("%s/catalog.db", tmpdir);
	unsigned char key[CATALOG_KEY_LEN];
	crypto_key_generate(key);
	int64_t store_id;
	struct catalog *cat = catalog_with_store(path, key, &store_id);
	int64_t m1 = add(cat, 1, "Ralf <ralf@linux-mips.org>", "[PATCH] fix TLB flush",
			 "the cache flush is wrong", 1514800000, "INBOX", false);
	int64_t m2 = add(cat, 2, "Bob <bob@example.com>", "Re: kernel panic",
			 "kernel panic in octeon code", 1530000000, "INBOX/Lists", true);
	int64_t m3 = add(cat, 3, "Carol <carol@example.com>", "hello", "testing text", 1400000000,
			 "Other", false);
	assert_int_equal(catalog_store_set_tail(cat, store_id, 1, 400, &error), 0);
	assert_int_equal(catalog_commit(cat, &error), 0);

	struct hits h;
	assert_int_equal(search(cat, "", &h), 3);
	assert_int_equal(h.ids[0], m2); /* newest first */
	assert_int_equal(h.ids[2], m3);
	assert_int_equal(search(cat, "tlb", &h), 1);
	assert_int_equal(h.ids[0], m1);
	assert_int_equal(search(cat, "\"cache flush\"", &h), 1);
	assert_int_equal(search(cat, "\"flush cache\"", &h), 0);
	assert_int_equal(search(cat, "from:ralf@linux-mips.org", &h), 1);
	assert_int_equal(search(cat, "subject:PATCH AND date:2018-01-01..2018-12-31", &h), 1);
	assert_int_equal(search(cat, "kernel AND panic AND NOT subject:PATCH", &h), 1);
	assert_int_equal(h.ids[0], m2);
	assert_int_equal(search(cat, "octe*", &h), 1);
	assert_int_equal(search(cat, "te?t", &h), 1);
	assert_int_equal(h.ids[0], m3);
	assert_int_equal(search(cat, "NOT kernel", &h), 2);
	assert_int_equal(search(cat, "has:attachment", &h), 1);
	assert_int_equal(search(cat, "attachment:report", &h), 1);
	assert_int_equal(search(cat, "folder:INBOX", &h), 2);
	assert_int_equal(search(cat, "folder:INBOX/Lists", &h), 1);
	assert_int_equal(search(cat, "size:>1500", &h), 2);
	assert_int_equal(search(cat, "hello OR tlb", &h), 2);
	assert_int_equal(search(cat, "has:attachment OR tlb", &h), 2);
	assert_int_equal(search(cat, "nothing?here", &h), 0);
	uint64_t total;
	assert_int_equal(catalog_search(cat, "(", 10, 0, &total, collect, &h, &error), -1);

	unsigned char hash[CATALOG_HASH_LEN];
	struct catalog_loc loc;
	assert_int_equal(catalog_message_content(cat, m2, hash, &loc, &error), 1);
	assert_int_equal(loc.offset, 200);
	assert_int_equal(catalog_message_content(cat, 999, hash, &loc, &error), 0);

	struct catalog_stats stats;
	assert_int_equal(catalog_stats(cat, &stats, &error), 0);
	assert_int_equal(stats.messages, 3);
	assert_int_equal(stats.raw_bytes, 6000);
	assert_int_equal(catalog_check_index(cat, &error), 0);

	/* A disabled store hides its messages. */
	assert_int_equal(catalog_store_set_state(cat, store_id, CATALOG_STORE_DISABLED, &error), 0);
	assert_int_equal(search(cat, "", &h), 0);
	catalog_destroy(&cat);

	/* Nothing readable on disk; another key cannot open it. */
	char *raw;
	size_t raw_len;
	assert_int_equal(file_read_all(path, 64 * 1024 * 1024, &raw, &raw_len, &error), 0);
	assert_true(raw_len > 0);
	assert_null(memmem(raw, raw_len, "linux-mips", 10));
	assert_null(memmem(raw, raw_len, "SQLite format", 13));
	mem_free(raw);
	unsigned char other[CATALOG_KEY_LEN];
	crypto_key_generate(other);
	assert_int_equal(catalog_open(path, other, &cat, &error), -1);

	/* Reopening keeps everything (the schema is not migrated twice). */
	assert_int_equal(catalog_open(path, key, &cat, &error), 0);
	struct catalog_store *stores;
	size_t count;
	assert_int_equal(catalog_stores(cat, &stores, &count, &error), 0);
	assert_int_equal(count, 1);
	assert_int_equal(stores[0].state, CATALOG_STORE_DISABLED);
	assert_int_equal(stores[0].tail_length, 400);
	catalog_stores_free(stores, count);
	catalog_destroy(&cat);
	mem_free(path);
}

static int setup(void **state)
{
	tmpdir = test_tmpdir_create("catalog");
	return crypto_init() < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	int ret = test_tmpdir_remove(&tmpdir);
	return ret == 0 ? 0 : -1;
}

struct ordered_hits {
	size_t count;
	int64_t ids[64];
	int64_t dates[64];
};

static void collect_ordered(const struct catalog_hit *hit, void *context)
{
	struct ordered_hits *h = context;
	if (h->count < 64) {
		h->ids[h->count] = hit->id;
		h->dates[h->count++] = hit->date;
	}
}

/* A date range whose messages came in two imports (two bands of content ids
 * with a long one between them): the bounded text search finds the matches
 * of both bands, counts all, and pages newest first, as without bounds. */
static void test_date_bounds(void **state)
{
	const char *error = NULL;
	char *path = mem_printf("%s/bounds.db", tmpdir);
	unsigned char key[CATALOG_KEY_LEN];
	crypto_key_generate(key);
	int64_t store_id;
	struct catalog *cat = catalog_with_store(path, key, &store_id);
	/* 1-200: 2018; 201-2000: 2010; 2001-2200: 2018 again, later */
	int64_t expected[2200];
	size_t nexpected = 0;
	for (int n = 1; n <= 2200; n++) {
		bool in_2018 = n <= 200 || n > 2000;
		int64_t date =
			in_2018 ? 1514800000 + (int64_t)n * 60 : 1270000000 + (int64_t)n * 60;
		bool patch = n % 3 == 0;
		char *hashed = mem_printf("%d", n);
		struct catalog_content c = {.loc = {.store_id = store_id,
						    .segment = 1,
						    .offset = (uint64_t)n * 100,
						    .length = 100},
					    .size = 1000,
					    .date = date,
					    .from = "a@example.org",
					    .to = "",
					    .cc = "",
					    .subject = patch ? "[PATCH] change" : "question",
					    .imap = "NIL",
					    .imap_len = 3,
					    .body_text = "words",
					    .attachment_names = ""};
		memset(c.hash, 0, sizeof(c.hash));
		memcpy(c.hash, hashed, strlen(hashed));
		mem_free(hashed);
		int64_t content_id, msg_id;
		assert_int_equal(catalog_content_add(cat, &c, &content_id, &error), 0);
		assert_int_equal(catalog_message_add(cat, content_id, "alice", "INBOX", date, date,
						     &c.loc, &msg_id, &error),
				 1);
		if (in_2018 && patch)
			expected[nexpected++] = msg_id;
	}
	assert_int_equal(catalog_store_set_tail(cat, store_id, 1, 300000, &error), 0);
	assert_int_equal(catalog_commit(cat, &error), 0);

	/* dates grow with n, so newest first is the expected list reversed */
	struct ordered_hits h = {0};
	uint64_t total;
	const char *q = "subject:patch AND date:2018-01-01..2018-12-31";
	assert_int_equal(catalog_search(cat, q, 10, 5, &total, collect_ordered, &h, &error), 0);
	assert_int_equal(total, nexpected);
	assert_int_equal(h.count, 10);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(h.ids[i], expected[nexpected - 1 - 5 - i]);
	/* the last page reaches into the first band */
	memset(&h, 0, sizeof(h));
	assert_int_equal(
		catalog_search(cat, q, 10, nexpected - 3, &total, collect_ordered, &h, &error), 0);
	assert_int_equal(h.count, 3);
	assert_int_equal(h.ids[2], expected[0]);
	/* "everything" as the limit (export) */
	memset(&h, 0, sizeof(h));
	assert_int_equal(catalog_search(cat, "subject:patch AND date:2018", UINT64_MAX, 0, &total,
					collect_ordered, &h, &error),
			 0);
	assert_int_equal(total, nexpected);
	assert_int_equal(h.count, 64);
	assert_int_equal(h.ids[0], expected[nexpected - 1]);
	/* a range without messages, and one inside the gap */
	assert_int_equal(catalog_search(cat, "patch AND date:2001", 10, 0, &total, collect_ordered,
					&h, &error),
			 0);
	assert_int_equal(total, 0);
	assert_int_equal(catalog_search(cat, "patch AND date:2010", 10, 0, &total, collect_ordered,
					&h, &error),
			 0);
	assert_int_equal(total, 600);
	catalog_destroy(&cat);
	mem_free(path);
}

/* A catalog with `n` messages of alice's in five folders and one of bob's. */
static struct catalog *catalog_of_size(const char *name, int n)
{
	const char *error = NULL;
	char *path = mem_printf("%s/%s", tmpdir, name);
	unsigned char key[CATALOG_KEY_LEN];
	crypto_key_generate(key);
	int64_t store_id;
	struct catalog *cat = catalog_with_store(path, key, &store_id);
	mem_free(path);
	for (int i = 0; i <= n; i++) {
		char *hashed = mem_printf("m%d", i);
		char *folder = mem_printf("Lists/%d", i % 5);
		struct catalog_content c = {
			.loc = {.store_id = store_id,
				.segment = 1,
				.offset = (uint64_t)i * 100,
				.length = 100},
			.size = 1000,
			.date = 1500000000 + i,
			.from = "a@example.org",
			.to = "",
			.cc = "",
			.subject = "weekly report",
			.imap = "NIL",
			.imap_len = 3,
			.body_text = "the numbers of this week",
			.attachment_names = "",
			.has_attachment = i % 2 == 0,
		};
		memset(c.hash, 0, sizeof(c.hash));
		memcpy(c.hash, hashed, strlen(hashed));
		int64_t content_id, msg_id;
		assert_int_equal(catalog_content_add(cat, &c, &content_id, &error), 0);
		/* message 0 is bob's */
		assert_int_equal(catalog_message_add(cat, content_id, i == 0 ? "bob" : "alice",
						     i == 0 ? "INBOX" : folder, c.date, c.date,
						     &c.loc, &msg_id, &error),
				 1);
		mem_free(hashed);
		mem_free(folder);
	}
	assert_int_equal(catalog_store_set_tail(cat, store_id, 1, (uint64_t)(n + 1) * 100, &error),
			 0);
	assert_int_equal(catalog_commit(cat, &error), 0);
	return cat;
}

struct folder_ids {
	size_t count;
	int64_t ids[8];
};

static int collect_folder(const struct catalog_folder *f, void *context)
{
	struct folder_ids *w = context;
	assert_int_equal(f->messages, 0); /* not counted */
	if (w->count < 8)
		w->ids[w->count++] = f->id;
	return 0;
}

struct folder_counts {
	size_t count;
	uint64_t messages, bytes, bob_messages;
};

static int count_folder(const struct catalog_folder *f, void *context)
{
	struct folder_counts *w = context;
	w->count++;
	w->messages += f->messages;
	w->bytes += f->bytes;
	if (strcmp(f->user, "bob") == 0)
		w->bob_messages += f->messages;
	return 0;
}

/* catalog_folders() on a catalog, and what it read. */
static struct folder_counts folder_counts(struct catalog *cat, uint64_t *vm_steps_r)
{
	const char *error = NULL;
	struct folder_counts all = {0};
	struct catalog_cost before, after;
	catalog_cost(cat, &before);
	assert_int_equal(catalog_folders(cat, count_folder, &all, &error), 0);
	catalog_cost(cat, &after);
	*vm_steps_r = after.vm_steps - before.vm_steps;
	return all;
}

struct attachment_flags {
	int with, without;
};

static void collect_flags(const struct catalog_hit *hit, void *context)
{
	struct attachment_flags *f = context;
	if (hit->has_attachment)
		f->with++;
	else
		f->without++;
}

/* What listing a user's folders, then searching them for a word without a
 * hit, reads; the folder ids go into *w. */
static struct catalog_cost folder_search_cost(struct catalog *cat, const char *user,
					      struct folder_ids *w)
{
	const char *error = NULL;
	struct catalog_cost before, after;
	catalog_cost(cat, &before);
	memset(w, 0, sizeof(*w));
	assert_int_equal(catalog_folder_list(cat, user, collect_folder, w, &error), 0);
	struct catalog_scope scope = {w->ids, w->count};
	struct hits h = {0};
	uint64_t total = 1;
	assert_int_equal(catalog_search_scoped(cat, "nohitanywhere", &scope, 50, 0, &total, collect,
					       &h, &error),
			 0);
	assert_int_equal(total, 0);
	catalog_cost(cat, &after);
	return (struct catalog_cost){after.fullscan_steps - before.fullscan_steps,
				     after.vm_steps - before.vm_steps};
}

/* A user's folders come from the folders index, and a search without hits
 * reads as much in an archive of 2,000 messages as in one of 10: its cost
 * grows with its hits, not with the archive (a search with hits shows
 * that the counter sees a walk over messages when there is one). The
 * folders with their counts come from the folders table too, the counts
 * kept by triggers as messages come and go. */
static void test_folder_list_cost(void **state)
{
	const char *error = NULL;
	struct catalog *small = catalog_of_size("small.db", 10);
	struct catalog *big = catalog_of_size("big.db", 2000);
	struct folder_ids ws, wb;
	struct catalog_cost cs = folder_search_cost(small, "alice", &ws);
	struct catalog_cost cb = folder_search_cost(big, "alice", &wb);
	assert_int_equal(ws.count, 5);
	assert_int_equal(wb.count, 5);
	assert_int_equal(cb.vm_steps, cs.vm_steps);
	/* no table is scanned: the only full scan is the stores table's (one
	 * row, whether a store is disabled) */
	assert_true(cb.fullscan_steps <= 1);
	/* bob's one folder, not alice's */
	assert_int_equal(folder_search_cost(big, "bob", &wb).vm_steps,
			 folder_search_cost(small, "bob", &ws).vm_steps);
	assert_int_equal(wb.count, 1);

	/* a search with hits costs more in the big archive: the counter works */
	struct catalog_cost before, after;
	struct hits h;
	catalog_cost(big, &before);
	assert_int_equal(search(big, "weekly", &h), 2001);
	catalog_cost(big, &after);
	assert_true(after.vm_steps - before.vm_steps > 2000);
	/* folders with their counts: as cheap in the big archive */
	uint64_t small_steps, big_steps;
	struct folder_counts all = folder_counts(big, &big_steps);
	(void)folder_counts(small, &small_steps);
	assert_int_equal(big_steps, small_steps);
	assert_int_equal(all.count, 6);
	assert_int_equal(all.messages, 2001);
	assert_int_equal(all.bytes, 2001 * 1000);
	assert_int_equal(all.bob_messages, 1);
	/* the same message again in a folder: counted once; in another: twice */
	assert_int_equal(catalog_begin(big, &error), 0);
	unsigned char hash[CATALOG_HASH_LEN];
	struct catalog_loc loc;
	int64_t msg_id;
	assert_int_equal(catalog_message_content(big, 1, hash, &loc, &error), 1);
	assert_int_equal(catalog_message_add(big, 1, "bob", "INBOX", 1, 1, &loc, &msg_id, &error),
			 0);
	assert_int_equal(catalog_message_add(big, 1, "bob", "Copy", 1, 1, &loc, &msg_id, &error),
			 1);
	assert_int_equal(catalog_commit(big, &error), 0);
	all = folder_counts(big, &big_steps);
	assert_int_equal(all.count, 7);
	assert_int_equal(all.bob_messages, 2);
	assert_int_equal(all.bytes, 2002 * 1000);
	/* a store removed: its messages leave their folders' counts */
	struct catalog_store *stores;
	size_t nstores;
	assert_int_equal(catalog_stores(big, &stores, &nstores, &error), 0);
	assert_int_equal(nstores, 1);
	assert_int_equal(catalog_begin(big, &error), 0);
	assert_int_equal(catalog_store_remove(big, stores[0].id, &error), 0);
	assert_int_equal(catalog_commit(big, &error), 0);
	catalog_stores_free(stores, nstores);
	all = folder_counts(big, &big_steps);
	assert_int_equal(all.count, 7);
	assert_true(all.messages == 0 && all.bytes == 0);

	/* the list carries has_attachment (message ids 1..: even i has one) */
	memset(&h, 0, sizeof(h));
	struct attachment_flags flags = {0};
	uint64_t total;
	assert_int_equal(
		catalog_search(small, "folder:INBOX", 10, 0, &total, collect_flags, &flags, &error),
		0);
	assert_int_equal(total, 1);
	assert_true(flags.with == 1 && flags.without == 0);
	memset(&flags, 0, sizeof(flags));
	assert_int_equal(catalog_search(small, "folder:Lists/1", 10, 0, &total, collect_flags,
					&flags, &error),
			 0);
	/* i = 1, 6: both odd/even once */
	assert_int_equal(flags.with + flags.without, 2);
	assert_true(flags.with == 1 && flags.without == 1);
	catalog_destroy(&small);
	catalog_destroy(&big);
}

/* Defect kinds are counted per message (a content filed in two folders
 * counts twice), one count per bit. */
static void test_defect_counts(void **state)
{
	const char *error = NULL;
	char *path = mem_printf("%s/defects.db", tmpdir);
	unsigned char key[CATALOG_KEY_LEN];
	crypto_key_generate(key);
	int64_t store_id;
	struct catalog *cat = catalog_with_store(path, key, &store_id);
	static const unsigned int defects[] = {0, 5, 4, 0x80000000u};
	for (int n = 0; n < 4; n++) {
		struct catalog_content c = {.loc = {.store_id = store_id,
						    .segment = 1,
						    .offset = (uint64_t)n * 100,
						    .length = 100},
					    .size = 100,
					    .from = "",
					    .to = "",
					    .cc = "",
					    .subject = "",
					    .imap = "NIL",
					    .imap_len = 3,
					    .body_text = "",
					    .attachment_names = "",
					    .defects = defects[n]};
		memset(c.hash, n + 1, sizeof(c.hash));
		int64_t content_id, msg_id;
		assert_int_equal(catalog_content_add(cat, &c, &content_id, &error), 0);
		assert_true(catalog_message_add(cat, content_id, "alice", "INBOX", 0, 0, &c.loc,
						&msg_id, &error) >= 0);
		if (n == 1)
			assert_true(catalog_message_add(cat, content_id, "alice", "Other", 0, 0,
							&c.loc, &msg_id, &error) >= 0);
	}
	uint64_t counts[CATALOG_DEFECT_BITS], flagged;
	assert_int_equal(catalog_defect_counts(cat, counts, &flagged, &error), 0);
	assert_int_equal(flagged, 4);
	assert_int_equal(counts[0], 2);
	assert_int_equal(counts[1], 0);
	assert_int_equal(counts[2], 3);
	assert_int_equal(counts[31], 1);
	catalog_destroy(&cat);
	mem_free(path);
}

/* sent: is the day on the sender's calendar (IMAP SENTON, RFC 3501), date:
 * the UTC day of the same instant. */
static void test_sent_day(void **state)
{
	const char *error = NULL;
	char *path = mem_printf("%s/sent.db", tmpdir);
	unsigned char key[CATALOG_KEY_LEN];
	crypto_key_generate(key);
	int64_t store_id;
	struct catalog *cat = catalog_with_store(path, key, &store_id);
	const int64_t march1 = 1709251200; /* 2024-03-01 00:00 UTC */
	/* Fri 1 Mar 20:30 -0800 (2 Mar in UTC); Sat 2 Mar 01:00 +1000 (1 Mar) */
	const int64_t dates[] = {march1 + 86400 + 4 * 3600 + 1800, march1 + 15 * 3600};
	const int zones[] = {-480, 600};
	const char *subjects[] = {"evening", "morning"};
	int64_t ids[2];
	for (int n = 0; n < 2; n++) {
		struct catalog_content c = {
			.loc = {.store_id = store_id,
				.segment = 1,
				.offset = (uint64_t)n * 100,
				.length = 100},
			.size = 100,
			.date = dates[n],
			.zone_minutes = zones[n],
			.from = "",
			.to = "",
			.cc = "",
			.subject = subjects[n],
			.imap = "NIL",
			.imap_len = 3,
			.body_text = "",
			.attachment_names = "",
		};
		memset(c.hash, n + 1, sizeof(c.hash));
		int64_t content_id;
		assert_int_equal(catalog_content_add(cat, &c, &content_id, &error), 0);
		assert_int_equal(catalog_message_add(cat, content_id, "alice", "INBOX", dates[n],
						     dates[n], &c.loc, &ids[n], &error),
				 1);
	}
	assert_int_equal(catalog_commit(cat, &error), 0);
	static const struct {
		const char *query;
		int which; /* 0 evening, 1 morning */
	} cases[] = {
		{"sent:2024-03-01", 0},
		{"sent:2024-03-02", 1},
		{"date:2024-03-01", 1},
		{"date:2024-03-02", 0},
		{"sent:<2024-03-02", 0},
		{"sent:>=2024-03-02", 1},
		{"sent:2024-03-01 AND subject:evening", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hits h;
		uint64_t total = search(cat, cases[i].query, &h);
		if (total != 1 || h.ids[0] != ids[cases[i].which])
			fail_msg("%s: %llu hits", cases[i].query, (unsigned long long)total);
	}
	catalog_destroy(&cat);
	mem_free(path);
}

/* Users: rows written one user at a time, read back in order, replaced,
 * deleted, and copied into another catalog (what a rebuild does); a name
 * is unique regardless of case. */
struct user_rows {
	char text[4096];
	int users;
};

static int user_row(const struct catalog_user_row *row, void *context)
{
	struct user_rows *r = context;
	size_t len = strlen(r->text);
	snprintf(r->text + len, sizeof(r->text) - len, "%d:%lld:%s:%s:%s:%lld;", (int)row->kind,
		 (long long)row->user_id, row->kind == CATALOG_USER_ROW_USER ? row->name : "",
		 row->text != NULL ? row->text : "-", row->text2 != NULL ? row->text2 : "-",
		 (long long)row->number);
	r->users += row->kind == CATALOG_USER_ROW_USER;
	return 0;
}

static void users_read(struct catalog *cat, struct user_rows *r)
{
	const char *error = NULL;
	memset(r, 0, sizeof(*r));
	if (catalog_users_load(cat, user_row, r, &error) < 0)
		fail_msg("%s", error);
}

static void test_users(void **state)
{
	const char *error = NULL;
	unsigned char key[CATALOG_KEY_LEN];
	crypto_key_generate(key);
	char *path = mem_printf("%s/users.db", tmpdir);
	char *path2 = mem_printf("%s/users2.db", tmpdir);
	struct catalog *cat, *copy;
	assert_int_equal(catalog_open(path, key, &cat, &error), 0);
	const char *emails[] = {"a@x.test", "b@x.test"};
	const char *privs[] = {"login", "archive"};
	const char *logins[] = {"web"};
	const struct catalog_user_right rights[] = {{"bob/Work", "read,write"}};
	const struct catalog_user_app apps[] = {{"phone", "sha256$s$d", 1700000000}};
	struct catalog_user alice = {.name = "alice",
				     .archive_name = "alice",
				     .full_name = "Alice",
				     .password_hash = "$argon2id$x",
				     .mfa_state = "active",
				     .mfa_secret = "SECRET",
				     .mfa_last_step = 42,
				     .emails = emails,
				     .email_count = 2,
				     .privileges = privs,
				     .privilege_count = 2,
				     .login_privileges = logins,
				     .login_privilege_count = 1,
				     .rights = rights,
				     .right_count = 1,
				     .apps = apps,
				     .app_count = 1};
	struct catalog_user bob = {.name = "bob", .archive_name = "bob", .full_name = ""};
	assert_int_equal(catalog_begin(cat, &error), 0);
	assert_int_equal(catalog_user_put(cat, &alice, &error), 0);
	assert_int_equal(catalog_user_put(cat, &bob, &error), 0);
	assert_int_equal(catalog_commit(cat, &error), 0);
	assert_true(alice.id > 0 && bob.id > alice.id);
	struct user_rows r;
	users_read(cat, &r);
	assert_int_equal(r.users, 2);
	char *want =
		mem_printf("0:%lld:alice:alice:Alice:42;0:%lld:bob:bob::0;"
			   "1:%lld::a@x.test:-:0;1:%lld::b@x.test:-:0;"
			   "2:%lld::login:-:0;2:%lld::archive:-:0;3:%lld::web:-:0;"
			   "4:%lld::bob/Work:read,write:0;5:%lld::phone:sha256$s$d:1700000000;",
			   (long long)alice.id, (long long)bob.id, (long long)alice.id,
			   (long long)alice.id, (long long)alice.id, (long long)alice.id,
			   (long long)alice.id, (long long)alice.id, (long long)alice.id);
	assert_string_equal(r.text, want);
	mem_free(want);
	/* the same name in other case is refused by the unique index */
	struct catalog_user other = {.name = "ALICE", .archive_name = "x", .full_name = ""};
	assert_int_equal(catalog_begin(cat, &error), 0);
	assert_int_equal(catalog_user_put(cat, &other, &error), -1);
	catalog_rollback(cat);
	/* replacing a user replaces its rows; the copy has both users */
	alice.email_count = 1;
	alice.app_count = 0;
	alice.mfa_state = alice.mfa_secret = NULL;
	assert_int_equal(catalog_begin(cat, &error), 0);
	assert_int_equal(catalog_user_put(cat, &alice, &error), 0);
	assert_int_equal(catalog_commit(cat, &error), 0);
	assert_int_equal(catalog_open(path2, key, &copy, &error), 0);
	assert_int_equal(catalog_begin(copy, &error), 0);
	assert_int_equal(catalog_users_copy(cat, copy, &error), 0);
	assert_int_equal(catalog_commit(copy, &error), 0);
	struct user_rows r2;
	users_read(cat, &r);
	users_read(copy, &r2);
	assert_string_equal(r.text, r2.text);
	assert_null(strstr(r.text, "b@x.test"));
	assert_null(strstr(r.text, "phone"));
	assert_null(strstr(r.text, "SECRET"));
	/* deleting takes every row of the user */
	assert_int_equal(catalog_begin(cat, &error), 0);
	assert_int_equal(catalog_user_delete(cat, alice.id, &error), 0);
	assert_int_equal(catalog_commit(cat, &error), 0);
	users_read(cat, &r);
	assert_int_equal(r.users, 1);
	assert_null(strstr(r.text, "alice"));
	assert_null(strstr(r.text, "login"));
	catalog_destroy(&copy);
	catalog_destroy(&cat);
	mem_free(path);
	mem_free(path2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog),       cmocka_unit_test(test_date_bounds),
		cmocka_unit_test(test_defect_counts), cmocka_unit_test(test_folder_list_cost),
		cmocka_unit_test(test_sent_day),      cmocka_unit_test(test_users),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
