#ifndef COFFER_HOST_MAIN_H
#define COFFER_HOST_MAIN_H
/* The Instance Host daemon: `coffer instance-host --config-dir DIR`. */
int host_main(int argc, char **argv);
#endif
