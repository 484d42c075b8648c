#include "cli-archive.h"
#include "archive-compact.h"
#include "archive-delete.h"
#include "archive-import.h"
#include "archive-retention.h"
#include "archive.h"
#include "array.h"
#include "catalog.h"
#include "json.h"
#include "mem.h"
#include "mime.h"
#include "str.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void cli_archive_usage(FILE *out)
{
	fprintf(out,
		"usage: coffer archive --base-dir DIR --key-file FILE [--store-max-size BYTES]\n"
		"                      COMMAND [ARGS...]\n\n"
		"The key file must live outside the base directory (it is created, with a\n"
		"new key, by the first import). COFFER_ARCHIVE_KEY_FILE may name it instead.\n\n"
		"commands:\n"
		"  import [--user U] [--folder F] [--workers N] [--max-message-size BYTES]\n"
		"         FILE|DIR|- ...   EML files, directories of them, mbox files (\"-\" = "
		"mbox\n"
		"                          on stdin) and Maildir trees; prints one line per\n"
		"                          message once it is durably archived, and one line\n"
		"                          (on stderr) per input not archived, with its reason;\n"
		"                          larger messages are refused (default 100 MiB)\n"
		"  search [--limit N] [--offset N] [--repeat N] QUERY...\n"
		"                          total count, then: id, date, from, subject (tabs)\n"
		"  show ID                 the message's raw bytes on stdout\n"
		"  imap ID                 the IMAP ENVELOPE and BODYSTRUCTURE computed at ingest\n"
		"  locate ID               where its content record is: STORE/SEGMENT OFFSET "
		"LENGTH\n"
		"  export [--format eml|mbox] [QUERY] OUT\n"
		"  verify                  check every record, catalog row and the index\n"
		"  rebuild                 rebuild catalog and index from the segments\n"
		"  delete ID...            delete messages (holds and keep times apply)\n"
		"  compact                 rewrite segments without deleted records\n"
		"  retention [--dry-run] [--policies JSON]\n"
		"                          run the retention policies (as "
		"ProcessRetentionPolicies;\n"
		"                          --policies first replaces them, as "
		"SetRetentionPolicies)\n"
		"  dump-records            every record's decrypted bytes on stdout (tests)\n"
		"  stats                   JSON statistics\n"
		"  store list | new | set-state NAME STATE | detach NAME | attach NAME\n");
}

static bool cli_parse_u64(const char *s, uint64_t *v_r)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
		return false;
	*v_r = v;
	return true;
}

static int cli_archive_delete(struct archive *archive, int argc, char **argv)
{
	ARRAY(int64_t) ids = ARRAY_INIT;
	for (int i = 1; i < argc; i++) {
		uint64_t id;
		if (!cli_parse_u64(argv[i], &id) || id > INT64_MAX) {
			fprintf(stderr, "coffer archive delete: bad id '%s'\n", argv[i]);
			array_free(&ids);
			return 2;
		}
		array_append(&ids, (int64_t)id);
	}
	uint64_t contents;
	const char *error;
	int ret = archive_delete_messages(archive, ids.items, ids.count, (int64_t)time(NULL),
					  &contents, &error);
	array_free(&ids);
	if (ret <= 0) {
		fprintf(stderr, "coffer archive delete: %s\n", error);
		return 1;
	}
	printf("deleted: %d messages, %llu contents\n", argc - 1, (unsigned long long)contents);
	return 0;
}

static void cli_archive_dump_piece(const void *data, size_t len, void *context)
{
	fwrite(data, 1, len, context);
	fputc('\n', context);
}

static int cli_archive_compact(struct archive *archive)
{
	struct archive_compact_result r;
	const char *error;
	if (archive_compact(archive, NULL, &r, &error) < 0) {
		fprintf(stderr, "coffer archive compact: %s\n", error);
		return 1;
	}
	printf("compact: %llu segments, %llu records dropped, %llu -> %llu bytes\n",
	       (unsigned long long)r.segments, (unsigned long long)r.records,
	       (unsigned long long)r.bytes_before, (unsigned long long)r.bytes_after);
	fprintf(stderr,
		"compact: segment rewrite %.2f s (%.2f s CPU), catalog scrub %.2f s (%.2f s "
		"CPU)\n",
		r.rewrite_secs, r.rewrite_cpu_secs, r.scrub_secs, r.scrub_cpu_secs);
	return 0;
}

static double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The policies of a JSON text replaced, through a catalog handle of its
 * own (as the instance's SetRetentionPolicies). */
static int cli_archive_set_policies(const struct archive_settings *set, const char *text)
{
	struct json *list = NULL;
	struct archive_policy *policies = NULL;
	struct catalog *cat = NULL;
	size_t count = 0;
	const char *error;
	int ret = json_parse(text, strlen(text), &list, &error) < 0 ||
				  archive_retention_policies_parse(list, &policies, &count,
								   &error) < 0 ||
				  archive_catalog_open(set->base_dir, set->key_file, &cat, &error) <
					  0 ||
				  archive_retention_set_policies(cat, policies, count, &error) < 0
			  ? -1
			  : 0;
	if (ret < 0)
		fprintf(stderr, "coffer archive retention: --policies: %s\n", error);
	catalog_destroy(&cat);
	archive_retention_policies_parsed_free(&policies, count);
	json_unref(&list);
	return ret;
}

static int cli_archive_retention(struct archive *archive, const struct archive_settings *set,
				 int argc, char **argv)
{
	struct archive_retention_run run = {.now = (int64_t)time(NULL)};
	const char *policies = NULL, *error;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0) {
			run.dry_run = true;
		} else if (strcmp(argv[i], "--policies") == 0 && i + 1 < argc) {
			policies = argv[++i];
		} else {
			fprintf(stderr, "coffer archive retention: unknown argument '%s'\n",
				argv[i]);
			return 2;
		}
	}
	if (policies != NULL && cli_archive_set_policies(set, policies) < 0)
		return 1;
	struct archive_retention_result r;
	double start = cli_now();
	if (archive_delete_expired(archive, &run, &r, &error) < 0) {
		fprintf(stderr, "coffer archive retention: %s\n", error);
		return 1;
	}
	printf("retention: %llu expired, %llu kept by legal hold, %llu kept by minimum, %llu %s, "
	       "%llu contents removed\n",
	       (unsigned long long)r.expired, (unsigned long long)r.held,
	       (unsigned long long)r.kept, (unsigned long long)r.deleted,
	       run.dry_run ? "would be deleted" : "deleted",
	       (unsigned long long)r.contents_removed);
	fprintf(stderr, "retention: %.2f s\n", cli_now() - start);
	return 0;
}

static void cli_print_line(const char *line, void *context)
{
	FILE *out = context;
	fprintf(out, "%s\n", line);
}

struct cli_import_ctx {
	bool progress, quiet;
	struct timespec start;
};

static double cli_elapsed(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void cli_import_event(const struct archive_import_event *ev, void *context)
{
	struct cli_import_ctx *ctx = context;
	switch (ev->type) {
	case ARCHIVE_IMPORT_ARCHIVED:
	case ARCHIVE_IMPORT_DUPLICATE:
		if (!ctx->quiet) {
			char *defects = mime_defects_describe(ev->defects);
			printf("%s %lld %s %s%s%s%s\n",
			       ev->type == ARCHIVE_IMPORT_ARCHIVED ? "archived" : "duplicate",
			       (long long)ev->message_id, ev->hash_hex, ev->source,
			       ev->defects > 0 ? " (parse defects: " : "", defects,
			       ev->defects > 0 ? ")" : "");
			mem_free(defects);
		}
		break;
	case ARCHIVE_IMPORT_SKIPPED:
		fprintf(stderr, "skipped %s: %s [%s]\n", ev->source, ev->reason,
			archive_import_skip_name(ev->skip));
		break;
	case ARCHIVE_IMPORT_PROGRESS:
		/* each batch's lines are out only once they are durable */
		fflush(stdout);
		if (ctx->progress) {
			double secs = cli_elapsed(&ctx->start);
			fprintf(stderr, "\r%llu messages, %.1f MB, %.0f messages/s ",
				(unsigned long long)ev->messages, (double)ev->bytes / 1e6,
				secs > 0 ? (double)ev->messages / secs : 0.0);
		}
		break;
	}
}

static int cli_archive_import(struct archive *archive, int argc, char **argv)
{
	static const struct option options[] = {{"user", required_argument, NULL, 'u'},
						{"folder", required_argument, NULL, 'f'},
						{"workers", required_argument, NULL, 'w'},
						{"quiet", no_argument, NULL, 'q'},
						{"max-message-size", required_argument, NULL, 'm'},
						{NULL, 0, NULL, 0}};
	struct archive_import_settings set = {0};
	struct cli_import_ctx ctx = {.progress = isatty(STDERR_FILENO) != 0};
	uint64_t workers;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+u:f:w:qm:", options, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (!cli_parse_u64(optarg, &set.max_message_size) ||
			    set.max_message_size == 0 ||
			    set.max_message_size > ARCHIVE_IMPORT_MAX_MESSAGE_LIMIT) {
				fprintf(stderr,
					"coffer archive import: --max-message-size %s: expected "
					"1-%llu bytes\n",
					optarg, ARCHIVE_IMPORT_MAX_MESSAGE_LIMIT);
				return 2;
			}
			break;
		case 'u':
			set.user = optarg;
			break;
		case 'f':
			set.folder = optarg;
			break;
		case 'q':
			ctx.quiet = true;
			break;
		case 'w':
			if (!cli_parse_u64(optarg, &workers) || workers == 0 || workers > 64) {
				fprintf(stderr,
					"coffer archive import: --workers %s: expected 1-64\n",
					optarg);
				return 2;
			}
			set.workers = (unsigned int)workers;
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "coffer archive import: nothing to import\n");
		return 2;
	}
	set.cb = cli_import_event;
	set.context = &ctx;
	clock_gettime(CLOCK_MONOTONIC, &ctx.start);
	struct archive_import_result result;
	const char *error;
	int ret = archive_import(archive, &set, (const char *const *)argv + optind,
				 (size_t)(argc - optind), &result, &error);
	fflush(stdout);
	double secs = cli_elapsed(&ctx.start);
	if (ctx.progress)
		fprintf(stderr, "\n");
	fprintf(stderr,
		"import: %llu archived, %llu duplicates, %llu skipped, %llu with parse defects; "
		"%.1f MB in %.1f s (%.0f messages/s)\n",
		(unsigned long long)result.archived, (unsigned long long)result.duplicates,
		(unsigned long long)result.skipped, (unsigned long long)result.defects,
		(double)result.bytes / 1e6, secs,
		secs > 0 ? (double)(result.archived + result.duplicates) / secs : 0.0);
	/* why: per kind, so that a flagged archive can be understood */
	for (unsigned int k = 0; k < ARCHIVE_IMPORT_SKIP_KINDS; k++) {
		if (result.skipped_by_kind[k] > 0)
			fprintf(stderr, "import: skipped %s: %llu\n", archive_import_skip_name(k),
				(unsigned long long)result.skipped_by_kind[k]);
	}
	for (unsigned int bit = 0; bit < 32; bit++) {
		if (result.defects_by_kind[bit] > 0 && mime_defect_name(bit) != NULL)
			fprintf(stderr, "import: defect %s: %llu\n", mime_defect_name(bit),
				(unsigned long long)result.defects_by_kind[bit]);
	}
	if (ret < 0) {
		fprintf(stderr, "coffer archive import: %s\n", error);
		return 1;
	}
	return 0;
}

static void cli_clean(struct str *out, const char *s)
{
	for (const char *p = s != NULL ? s : ""; *p != '\0'; p++)
		str_append_c(out, *p == '\t' || *p == '\n' || *p == '\r' ? ' ' : *p);
}

static void cli_search_hit(const struct archive_hit *hit, void *context)
{
	struct str *line = context;
	char date[32];
	time_t t = (time_t)hit->date;
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		strcpy(date, "-");
	str_printfa(line, "%lld\t%s\t", (long long)hit->id, date);
	cli_clean(line, hit->from);
	str_append_c(line, '\t');
	cli_clean(line, hit->subject);
	str_append_c(line, '\n');
}

static char *cli_join(int argc, char **argv)
{
	struct str *s = str_create(64);
	for (int i = 0; i < argc; i++) {
		if (i > 0)
			str_append_c(s, ' ');
		str_append(s, argv[i]);
	}
	return str_steal(&s);
}

static void cli_ignore_hit(const struct archive_hit *hit, void *context)
{
}

static int cli_double_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* --repeat N: time the query N more times in this process (warm), for
 * benchmarks; the figures go to stderr. */
static int cli_search_timing(struct archive *archive, int argc, char **argv, uint64_t limit,
			     uint64_t offset, uint64_t repeat)
{
	char *query = cli_join(argc, argv);
	double *ms = mem_alloc(repeat * sizeof(double));
	const char *error;
	for (uint64_t i = 0; i < repeat; i++) {
		struct timespec start;
		uint64_t total;
		clock_gettime(CLOCK_MONOTONIC, &start);
		if (archive_search(archive, query, limit, offset, &total, cli_ignore_hit, NULL,
				   &error) < 0) {
			fprintf(stderr, "coffer archive search: %s\n", error);
			mem_free(ms);
			mem_free(query);
			return 1;
		}
		ms[i] = cli_elapsed(&start) * 1000;
	}
	if (repeat > 1)
		qsort(ms, repeat, sizeof(double), cli_double_cmp);
	fprintf(stderr, "search-time: median %.2f ms, max %.2f ms over %llu runs\n", ms[repeat / 2],
		ms[repeat - 1], (unsigned long long)repeat);
	mem_free(ms);
	mem_free(query);
	return 0;
}

static int cli_archive_search(struct archive *archive, int argc, char **argv)
{
	static const struct option options[] = {{"limit", required_argument, NULL, 'l'},
						{"offset", required_argument, NULL, 'o'},
						{"repeat", required_argument, NULL, 'r'},
						{NULL, 0, NULL, 0}};
	uint64_t limit = 50, offset = 0, repeat = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+l:o:r:", options, NULL)) != -1) {
		uint64_t *target = c == 'l' ? &limit : c == 'o' ? &offset : &repeat;
		if ((c != 'l' && c != 'o' && c != 'r') || !cli_parse_u64(optarg, target)) {
			fprintf(stderr, "coffer archive search: expected --limit N / --offset N / "
					"--repeat N\n");
			return 2;
		}
	}
	char *query = cli_join(argc - optind, argv + optind);
	uint64_t total;
	const char *error;
	struct str *lines = str_create(4096);
	int ret = archive_search(archive, query, limit, offset, &total, cli_search_hit, lines,
				 &error);
	mem_free(query);
	if (ret < 0) {
		fprintf(stderr, "coffer archive search: %s\n", error);
		str_destroy(&lines);
		return 1;
	}
	/* the count comes first, then the page */
	printf("%llu\n%s", (unsigned long long)total, str_c(lines));
	str_destroy(&lines);
	if (repeat > 0)
		return cli_search_timing(archive, argc - optind, argv + optind, limit, offset,
					 repeat);
	return 0;
}

static int cli_write_all(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int cli_archive_show(struct archive *archive, int argc, char **argv)
{
	uint64_t id;
	if (argc != 2 || !cli_parse_u64(argv[1], &id)) {
		fprintf(stderr, "usage: coffer archive show ID\n");
		return 2;
	}
	unsigned char *data;
	size_t len;
	const char *error;
	int ret = archive_read_message(archive, (int64_t)id, &data, &len, &error);
	if (ret <= 0) {
		fprintf(stderr, "coffer archive show: %s\n", ret == 0 ? "no such message" : error);
		return 1;
	}
	ret = cli_write_all(STDOUT_FILENO, data, len);
	mem_free(data);
	if (ret < 0) {
		fprintf(stderr, "coffer archive show: write failed: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

static int cli_archive_locate(struct archive *archive, int argc, char **argv)
{
	uint64_t id;
	if (argc != 2 || !cli_parse_u64(argv[1], &id)) {
		fprintf(stderr, "usage: coffer archive locate ID\n");
		return 2;
	}
	struct str *out = str_create(64);
	const char *error;
	int ret = archive_message_location(archive, (int64_t)id, out, &error);
	if (ret > 0)
		printf("%s\n", str_c(out));
	else
		fprintf(stderr, "coffer archive locate: %s\n",
			ret == 0 ? "no such message" : error);
	str_destroy(&out);
	return ret > 0 ? 0 : 1;
}

static int cli_archive_imap(struct archive *archive, int argc, char **argv)
{
	uint64_t id;
	if (argc != 2 || !cli_parse_u64(argv[1], &id)) {
		fprintf(stderr, "usage: coffer archive imap ID\n");
		return 2;
	}
	struct archive_imap imap;
	const char *error;
	int ret = archive_message_imap(archive, (int64_t)id, &imap, &error);
	if (ret <= 0) {
		fprintf(stderr, "coffer archive imap: %s\n", ret == 0 ? "no such message" : error);
		return 1;
	}
	printf("ENVELOPE %s\nBODYSTRUCTURE %s\nBODY %s\nRFC822.SIZE %llu\n", imap.envelope,
	       imap.bodystructure, imap.body, (unsigned long long)imap.size);
	archive_imap_free(&imap);
	return 0;
}

struct cli_ids {
	ARRAY(int64_t) ids;
};

static void cli_collect_id(const struct archive_hit *hit, void *context)
{
	struct cli_ids *ids = context;
	array_append(&ids->ids, hit->id);
}

/* mboxrd: a From_ line, then the message with ^>*From escaped by one '>'. */
static void cli_mbox_append(FILE *f, const unsigned char *data, size_t len)
{
	fputs("From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n", f);
	size_t i = 0;
	while (i < len) {
		size_t k = i;
		while (k < len && data[k] == '>')
			k++;
		if (len - k >= 5 && memcmp(data + k, "From ", 5) == 0)
			fputc('>', f);
		const unsigned char *nl = memchr(data + i, '\n', len - i);
		size_t line = nl != NULL ? (size_t)(nl - (data + i)) + 1 : len - i;
		fwrite(data + i, 1, line, f);
		i += line;
	}
	if (len == 0 || data[len - 1] != '\n')
		fputc('\n', f);
	fputc('\n', f);
}

static int cli_archive_export(struct archive *archive, int argc, char **argv)
{
	static const struct option options[] = {{"format", required_argument, NULL, 'f'},
						{NULL, 0, NULL, 0}};
	const char *format = "eml";
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+f:", options, NULL)) != -1) {
		if (c != 'f')
			return 2;
		format = optarg;
	}
	if (strcmp(format, "eml") != 0 && strcmp(format, "mbox") != 0) {
		fprintf(stderr, "coffer archive export: --format %s: expected eml or mbox\n",
			format);
		return 2;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: coffer archive export [--format eml|mbox] [QUERY] OUT\n");
		return 2;
	}
	const char *out = argv[argc - 1];
	char *query = cli_join(argc - optind - 1, argv + optind);
	struct cli_ids ids = {0};
	uint64_t total;
	const char *error;
	int ret =
		archive_search(archive, query, UINT64_MAX, 0, &total, cli_collect_id, &ids, &error);
	mem_free(query);
	if (ret < 0) {
		fprintf(stderr, "coffer archive export: %s\n", error);
		return 1;
	}
	FILE *mbox = NULL;
	if (strcmp(format, "mbox") == 0) {
		mbox = fopen(out, "wbx");
		if (mbox == NULL) {
			fprintf(stderr, "coffer archive export: %s: %s\n", out, strerror(errno));
			array_free(&ids.ids);
			return 1;
		}
	} else if (mkdir(out, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "coffer archive export: mkdir %s: %s\n", out, strerror(errno));
		array_free(&ids.ids);
		return 1;
	}
	int status = 0;
	/* oldest first, as mailboxes are */
	for (size_t i = ids.ids.count; i-- > 0 && status == 0;) {
		unsigned char *data;
		size_t len;
		if (archive_read_message(archive, ids.ids.items[i], &data, &len, &error) <= 0) {
			fprintf(stderr, "coffer archive export: message %lld: %s\n",
				(long long)ids.ids.items[i], error);
			status = 1;
			continue;
		}
		if (mbox != NULL) {
			cli_mbox_append(mbox, data, len);
		} else {
			char *path = mem_printf("%s/%lld.eml", out, (long long)ids.ids.items[i]);
			int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
			if (fd < 0 || cli_write_all(fd, data, len) < 0) {
				fprintf(stderr, "coffer archive export: %s: %s\n", path,
					strerror(errno));
				status = 1;
			}
			if (fd >= 0)
				close(fd);
			mem_free(path);
		}
		mem_free(data);
	}
	if (mbox != NULL && fclose(mbox) != 0) {
		fprintf(stderr, "coffer archive export: %s: %s\n", out, strerror(errno));
		status = 1;
	}
	if (status == 0)
		fprintf(stderr, "exported %zu messages\n", ids.ids.count);
	array_free(&ids.ids);
	return status;
}

static int cli_archive_store(struct archive *archive, int argc, char **argv)
{
	const char *error;
	int ret;
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		ret = archive_store_list(archive, cli_print_line, stdout, &error);
	} else if (argc == 2 && strcmp(argv[1], "new") == 0) {
		ret = archive_store_new(archive, &error);
	} else if (argc == 4 && strcmp(argv[1], "set-state") == 0) {
		ret = archive_store_set_state(archive, argv[2], argv[3], &error);
	} else if (argc == 3 && strcmp(argv[1], "detach") == 0) {
		ret = archive_store_detach(archive, argv[2], &error);
	} else if (argc == 3 && strcmp(argv[1], "attach") == 0) {
		ret = archive_store_attach(archive, argv[2], cli_print_line, stdout, &error);
		if (ret > 0)
			ret = 0;
	} else {
		fprintf(stderr, "usage: coffer archive store list | new | set-state NAME STATE | "
				"detach NAME | attach NAME\n");
		return 2;
	}
	if (ret < 0) {
		fprintf(stderr, "coffer archive store: %s\n", error);
		return 1;
	}
	return 0;
}

int cli_archive_main(int argc, char **argv)
{
	static const struct option options[] = {{"base-dir", required_argument, NULL, 'b'},
						{"key-file", required_argument, NULL, 'k'},
						{"store-max-size", required_argument, NULL, 's'},
						{"help", no_argument, NULL, 'h'},
						{NULL, 0, NULL, 0}};
	struct archive_settings set = {.key_file = getenv("COFFER_ARCHIVE_KEY_FILE")};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+b:k:s:h", options, NULL)) != -1) {
		switch (c) {
		case 'b':
			set.base_dir = optarg;
			break;
		case 'k':
			set.key_file = optarg;
			break;
		case 's':
			if (!cli_parse_u64(optarg, &set.store_max_size) ||
			    set.store_max_size == 0) {
				fprintf(stderr,
					"coffer archive: --store-max-size %s: expected bytes\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			cli_archive_usage(stdout);
			return 0;
		default:
			cli_archive_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || set.base_dir == NULL || set.key_file == NULL) {
		cli_archive_usage(stderr);
		return 2;
	}
	argc -= optind;
	argv += optind;
	const char *cmd = argv[0];
	const char *error;
	if (strcmp(cmd, "rebuild") == 0) {
		int ret = archive_rebuild(&set, cli_print_line, stdout, &error);
		if (ret < 0) {
			fprintf(stderr, "coffer archive rebuild: %s\n", error);
			return 1;
		}
		fprintf(stderr, "rebuild: done, %d damaged records skipped\n", ret);
		return ret > 0 ? 1 : 0;
	}
	bool is_import = strcmp(cmd, "import") == 0;
	bool writes = is_import || strcmp(cmd, "verify") == 0 || strcmp(cmd, "store") == 0 ||
		      strcmp(cmd, "delete") == 0 || strcmp(cmd, "compact") == 0 ||
		      strcmp(cmd, "dump-records") == 0 || strcmp(cmd, "retention") == 0;
	static const char *const known[] = {
		"import", "search", "show",   "export",  "verify",       "stats",    "store",
		"locate", "imap",   "delete", "compact", "dump-records", "retention"};
	bool ok = false;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ok = ok || strcmp(cmd, known[i]) == 0;
	if (!ok) {
		fprintf(stderr, "coffer archive: unknown command '%s'\n\n", cmd);
		cli_archive_usage(stderr);
		return 2;
	}
	set.create = is_import;
	set.write = writes;
	struct archive *archive;
	if (archive_open(&set, &archive, &error) < 0) {
		fprintf(stderr, "coffer archive: %s\n", error);
		return 1;
	}
	int ret;
	if (is_import) {
		ret = cli_archive_import(archive, argc, argv);
	} else if (strcmp(cmd, "search") == 0) {
		ret = cli_archive_search(archive, argc, argv);
	} else if (strcmp(cmd, "show") == 0) {
		ret = cli_archive_show(archive, argc, argv);
	} else if (strcmp(cmd, "imap") == 0) {
		ret = cli_archive_imap(archive, argc, argv);
	} else if (strcmp(cmd, "locate") == 0) {
		ret = cli_archive_locate(archive, argc, argv);
	} else if (strcmp(cmd, "export") == 0) {
		ret = cli_archive_export(archive, argc, argv);
	} else if (strcmp(cmd, "verify") == 0) {
		int problems = archive_verify(archive, cli_print_line, stdout, &error);
		if (problems < 0) {
			fprintf(stderr, "coffer archive verify: %s\n", error);
			ret = 1;
		} else {
			printf("verify: %s (%d problems)\n", problems == 0 ? "clean" : "PROBLEMS",
			       problems);
			ret = problems == 0 ? 0 : 1;
		}
	} else if (strcmp(cmd, "delete") == 0) {
		ret = cli_archive_delete(archive, argc, argv);
	} else if (strcmp(cmd, "compact") == 0) {
		ret = cli_archive_compact(archive);
	} else if (strcmp(cmd, "retention") == 0) {
		ret = cli_archive_retention(archive, &set, argc, argv);
	} else if (strcmp(cmd, "dump-records") == 0) {
		ret = archive_dump(archive, cli_archive_dump_piece, stdout, &error) < 0 ? 1 : 0;
		if (ret != 0)
			fprintf(stderr, "coffer archive dump-records: %s\n", error);
	} else if (strcmp(cmd, "stats") == 0) {
		struct str *out = str_create(512);
		ret = archive_stats_json(archive, out, &error) < 0 ? 1 : 0;
		if (ret == 0)
			printf("%s\n", str_c(out));
		else
			fprintf(stderr, "coffer archive stats: %s\n", error);
		str_destroy(&out);
	} else {
		ret = cli_archive_store(archive, argc, argv);
	}
	archive_destroy(&archive);
	return ret;
}
