/* libFuzzer: the audit log read back (a file anyone with write access to
 * it may have altered).  The input is a log: audit_verify must classify
 * it without crashing; then audit_open continues it and one record is
 * appended: a log that verified before must still verify, one record
 * longer (or two, with a recover note). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imaged/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_verify_result before, after;
	crisp_err_t err = CRISP_ERR_INIT;
	struct audit_log *log;

	if (path[0] == '\0')
		snprintf(path, sizeof path, "/dev/shm/crisp-fuzz-audit-%d", (int)getpid());
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	int rb = audit_verify(path, &before, &err);
	if (rb < 0 || rb > 1 || (rb == 1) != (before.bad_line != 0))
		abort();
	if (audit_open(path, &log, &err) == 0) {
		struct audit_record r = { .event = "pull", .allow = false, .reference = "quay.io/x:1" };
		if (audit_write(log, &r, &err) != 0)
			abort();
		audit_close(log);
		int ra = audit_verify(path, &after, &err);
		if (rb == 0 && (ra != 0 || after.records != before.records + 1))
			abort();
	}
	unlink(path);
	return 0;
}
