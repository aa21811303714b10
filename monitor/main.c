/*
 * crisp-monitor: a container's monitor (monitor.h).  execd executes it;
 * run any other way it refuses.
 */
#include <stdio.h>

#include "monitor/monitor.h"

int main(int argc, char **argv)
{
	int rc = monitor_main(argc, argv);

	fprintf(stderr, "crisp-monitor: started by crisp-execd only (argv: see monitor/monitor.h)\n");
	return rc;
}
