#ifndef COFFER_ACCESS_MAIN_H
#define COFFER_ACCESS_MAIN_H
/* The Client Access Server daemon: `coffer client-access-server --config-dir DIR`. */
int access_main(int argc, char **argv);
#endif
