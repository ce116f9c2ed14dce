/*
 * The command-line client: jobq push|get|cancel|retry|stats|dead.
 */
#ifndef JOBQ_CLI_H
#define JOBQ_CLI_H

#include <stdbool.h>

/* Prints the client commands' usage to stderr; continued: after another
 * usage line (so without its "usage:"). */
void cli_usage(bool continued);

/* Runs the command in argv[1]; returns the exit status (0 done, 1 refused
 * or failed, 2 a usage error). */
int cli_main(int argc, char **argv);

#endif
