/*
 * libFuzzer: the Kubernetes quantity parser execd applies to bandwidth
 * annotations.  A value it accepts must survive a decimal round trip.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[128], back[32];
	uint64_t v, w;

	if (size >= sizeof s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (crisp_parse_quantity(s, &v) < 0)
		return 0;
	snprintf(back, sizeof back, "%" PRIu64, v);
	if (crisp_parse_quantity(back, &w) < 0 || w != v)
		abort();
	return 0;
}
