/* libFuzzer: /proc/net/dev text as read from a pod's network namespace
 * (interface names are chosen by whoever has CAP_NET_ADMIN in the pod).
 * podnet_parse must stay in bounds, never report more than asked, never
 * "lo", and only NUL-terminated, printable, slash-free names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "execd/ctr_podstats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct podnet_if ifs[4];
	size_t max = size > 0 ? data[0] % 5 : 0;

	int n = podnet_parse((const char *)data, size, ifs, max);
	if (n < -1 || n > (int)max)
		abort();
	for (int i = 0; i < n; i++) {
		size_t l = strnlen(ifs[i].name, sizeof ifs[i].name);
		if (l == 0 || l == sizeof ifs[i].name || strcmp(ifs[i].name, "lo") == 0)
			abort();
		for (size_t k = 0; k < l; k++)
			if (ifs[i].name[k] <= ' ' || ifs[i].name[k] > '~' || ifs[i].name[k] == '/' ||
			    ifs[i].name[k] == ':')
				abort();
	}
	return 0;
}
