#ifndef COFFER_MGMT_MAIN_H
#define COFFER_MGMT_MAIN_H
/* The Management Server daemon: `coffer management-server --config-dir DIR`. */
int mgmt_main(int argc, char **argv);
#endif
