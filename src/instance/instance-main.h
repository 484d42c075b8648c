#ifndef COFFER_INSTANCE_MAIN_H
#define COFFER_INSTANCE_MAIN_H
/* The per-instance process: `coffer instance --id ID --base-dir DIR
 * --key-file FILE [--log-file FILE]`, started by its Instance Host with the
 * role protocol on file descriptor 3 (never by hand). */
int instance_main(int argc, char **argv);
#endif
