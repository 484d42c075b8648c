#ifndef COFFER_CLI_CONFIG_H
#define COFFER_CLI_CONFIG_H
/* `coffer config ...`: the configuration tool (docs/operations.md). */
int cli_config_main(int argc, char **argv);
#endif
