#ifndef COFFER_CLI_RELOCATE_H
#define COFFER_CLI_RELOCATE_H
/* cli-relocate: `coffer config relocate --from OLD --to NEW`, after instance
 * base directories were moved from below OLD to below NEW (a new disk, a new
 * server with another layout).
 *
 * Contract: rewrites every base directory that is OLD or below it, in the
 * management database and in the Instance Host's registry of this config
 * directory (whichever of the two it holds), each file atomically. Both
 * paths must be absolute, without . or .. components, and not the root. Where
 * the Instance Host's registry is here, every rewritten base directory must
 * exist (the data moved first) and none may overlap another instance's.
 * Nothing is written unless every check passes. The caller makes sure the
 * roles are stopped (their daemons hold these files in memory). Prints what
 * it changed; returns the number of instances relocated, or -1. */
int cli_relocate(const char *config_dir, const char *from, const char *to, const char **error_r);

#endif
