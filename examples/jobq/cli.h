/*
 * The command-line client: jobq push|get|cancel|retry|stats|dead.
 */
#ifndef JOBQ_CLI_H
#define JOBQ_CLI_H

/* Prints the client commands' usage to stderr. */
void cli_usage(void);

/* Runs the command in argv[1]; returns the exit status (0 done, 1 refused
 * or failed, 2 a usage error). */
int cli_main(int argc, char **argv);

#endif
