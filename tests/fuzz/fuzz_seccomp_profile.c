/* libFuzzer: the Localhost seccomp profile compiler (OCI/Docker JSON) on
 * any bytes, for a container with and without SYS_ADMIN; a profile that
 * compiles must give a non-empty BPF program, and its OCI form (what an
 * external runtime is handed) must be JSON that compiles again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "execd/ctr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int i = 0; i < 2; i++) {
		crisp_err_t err = CRISP_ERR_INIT;
		int fd = -1;
		if (ctr_seccomp_profile((const char *)data, size, i ? (1ULL << 21) : 0, &fd, &err) == 0) {
			struct stat st;
			if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % 8)
				abort();
			close(fd);
			uint64_t caps = i ? (1ULL << 21) : 0;
			char *oci = ctr_seccomp_profile_oci((const char *)data, size, caps, &err);
			if (oci == NULL) {
				if (err.code != CRISP_RESOURCE_EXHAUSTED)
					abort();
				continue;
			}
			fd = -1;
			if (ctr_seccomp_profile(oci, strlen(oci), caps, &fd, &err) != 0)
				abort();
			close(fd);
			free(oci);
		} else if (err.code != CRISP_INVALID_ARGUMENT || fd != -1) {
			abort();
		}
	}
	return 0;
}
