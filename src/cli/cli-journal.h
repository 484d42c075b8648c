#ifndef COFFER_CLI_JOURNAL_H
#define COFFER_CLI_JOURNAL_H
/* cli-journal: `coffer config journal`, the journal receiver's settings
 * (<config-dir>/journal.json, read by the Instance Host when it starts;
 * docs/sources.md, "Journal receiver").
 *
 *   journal show             print the settings
 *   journal set FILE         check and install a settings file
 *   journal password USER    make a random SMTP AUTH password for USER,
 *                            keep its salted SHA-256, print it once
 *
 * pos[0] is "journal". 0 done, -1 with *error_r, -2 a usage error. */
#include <stddef.h>

int cli_journal_main(const char *config_dir, const char *const *pos, size_t count,
		     const char **error_r);

#endif
