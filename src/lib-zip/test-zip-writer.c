#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "mem.h"
#include "test-tmpdir.h"
#include "zip-writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

struct source {
	const char *const *texts;
	int reads;
	int fail_at; /* -1: never */
};

static int source_read(void *ctx, uint64_t index, unsigned char **data_r, size_t *len_r,
		       const char **error_r)
{
	struct source *s = ctx;
	s->reads++;
	if ((int)index == s->fail_at) {
		*error_r = "message gone";
		return -1;
	}
	*len_r = strlen(s->texts[index]);
	*data_r = mem_alloc(*len_r + 1);
	memcpy(*data_r, s->texts[index], *len_r);
	return 0;
}

static char *temp_path(void)
{
	char *dir = test_tmpdir_create("zip");
	char *path = mem_printf("%s/out.zip", dir);
	mem_free(dir);
	return path;
}

static void remove_path(char *path)
{
	*strrchr(path, '/') = '\0';
	assert_int_equal(test_tmpdir_remove(&path), 0);
}

static char *entry_text(zip_t *za, zip_uint64_t i, zip_stat_t *st)
{
	assert_int_equal(zip_stat_index(za, i, 0, st), 0);
	assert_int_equal(st->comp_method, ZIP_CM_STORE);
	zip_file_t *f = zip_fopen_index(za, i, 0);
	assert_non_null(f);
	char *text = mem_alloc(st->size + 1);
	assert_int_equal(zip_fread(f, text, st->size), (zip_int64_t)st->size);
	text[st->size] = '\0';
	zip_fclose(f);
	return text;
}

static void test_entries_names_and_times(void **state)
{
	static const char *const texts[] = {"first\n", "second\r\n", "", "fourth"};
	struct source s = {texts, 0, -1};
	char *path = temp_path();
	const char *error;
	struct zip_writer *zw = zip_writer_create(path, source_read, &s, &error);
	assert_non_null(zw);
	time_t t = 1500000000;
	assert_int_equal(zip_writer_add(zw, "INBOX/1.eml", 0, 6, t, &error), 0);
	assert_int_equal(zip_writer_add(zw, "INBOX/1.eml", 1, 8, t + 60, &error), 0);
	assert_int_equal(zip_writer_add(zw, "/../a\\b:c/../x", 2, 0, t, &error), 0);
	assert_int_equal(zip_writer_add(zw, "INBOX/1.eml", 3, 6, t, &error), 0);
	assert_int_equal(s.reads, 0); /* nothing is read before the archive is written */
	assert_int_equal(zip_writer_finish(&zw, &error), 0);
	assert_null(zw);
	assert_int_equal(s.reads, 4);

	int ze;
	zip_t *za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
	assert_non_null(za);
	assert_int_equal(zip_get_num_entries(za, 0), 4);
	static const char *const names[] = {"INBOX/1.eml", "INBOX/1 (2).eml", "__/a_b_c/__/x",
					    "INBOX/1 (4).eml"};
	for (zip_uint64_t i = 0; i < 4; i++) {
		zip_stat_t st;
		char *text = entry_text(za, i, &st);
		assert_string_equal(st.name, names[i]);
		assert_string_equal(text, texts[i]);
		mem_free(text);
	}
	zip_stat_t st;
	assert_int_equal(zip_stat_index(za, 1, 0, &st), 0);
	/* DOS times have a 2-second resolution */
	assert_true(st.mtime >= t + 58 && st.mtime <= t + 62);
	zip_close(za);
	remove_path(path);
}

/* Twenty thousand entries of one name: linear, so this takes well under a
 * second (the old writer's search made it minutes). */
static void test_many_duplicates(void **state)
{
	static const char *const texts[] = {"x"};
	struct source s = {texts, 0, -1};
	char *path = temp_path();
	const char *error;
	struct zip_writer *zw = zip_writer_create(path, source_read, &s, &error);
	for (int i = 0; i < 20000; i++)
		assert_int_equal(zip_writer_add(zw, "same.eml", 0, 1, 0, &error), 0);
	assert_int_equal(zip_writer_finish(&zw, &error), 0);
	int ze;
	zip_t *za = zip_open(path, ZIP_RDONLY, &ze);
	assert_non_null(za);
	assert_int_equal(zip_get_num_entries(za, 0), 20000);
	assert_true(zip_name_locate(za, "same (20000).eml", 0) >= 0);
	zip_close(za);
	remove_path(path);
}

static void test_read_failure(void **state)
{
	static const char *const texts[] = {"a", "b"};
	struct source s = {texts, 0, 1};
	char *path = temp_path();
	const char *error;
	struct zip_writer *zw = zip_writer_create(path, source_read, &s, &error);
	assert_int_equal(zip_writer_add(zw, "a", 0, 1, 0, &error), 0);
	assert_int_equal(zip_writer_add(zw, "b", 1, 1, 0, &error), 0);
	assert_int_equal(zip_writer_finish(&zw, &error), -1);
	assert_string_equal(error, "message gone");
	struct stat sb;
	assert_int_equal(stat(path, &sb), -1);
	remove_path(path);
}

static void test_size_mismatch(void **state)
{
	static const char *const texts[] = {"abc"};
	struct source s = {texts, 0, -1};
	char *path = temp_path();
	const char *error;
	struct zip_writer *zw = zip_writer_create(path, source_read, &s, &error);
	assert_int_equal(zip_writer_add(zw, "a", 0, 2, 0, &error), 0);
	assert_int_equal(zip_writer_finish(&zw, &error), -1);
	assert_non_null(strstr(error, "3 bytes instead of 2"));
	remove_path(path);
}

static void test_destroy_writes_nothing(void **state)
{
	static const char *const texts[] = {"a"};
	struct source s = {texts, 0, -1};
	char *path = temp_path();
	const char *error;
	struct zip_writer *zw = zip_writer_create(path, source_read, &s, &error);
	assert_int_equal(zip_writer_add(zw, "a", 0, 1, 0, &error), 0);
	zip_writer_destroy(&zw);
	assert_null(zw);
	assert_int_equal(s.reads, 0);
	struct stat sb;
	assert_int_equal(stat(path, &sb), -1);
	remove_path(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries_names_and_times),
		cmocka_unit_test(test_many_duplicates),
		cmocka_unit_test(test_read_failure),
		cmocka_unit_test(test_size_mismatch),
		cmocka_unit_test(test_destroy_writes_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
