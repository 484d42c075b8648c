#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("coffer %s\n", COFFER_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: coffer COMMAND ...\n");
	return 2;
}
