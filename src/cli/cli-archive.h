#ifndef COFFER_CLI_ARCHIVE_H
#define COFFER_CLI_ARCHIVE_H
/* cli-archive: `coffer archive`, local archive operations on an instance
 * base directory (import, search, show, export, verify, rebuild, stats,
 * stores). A thin layer over src/lib-archive. Exit status: 0 success,
 * 1 failure (or problems found by verify/rebuild), 2 usage errors. */

int cli_archive_main(int argc, char **argv);

#endif
