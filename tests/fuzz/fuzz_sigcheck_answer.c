/* libFuzzer: the signature verifier child's answer (imaged/sigcheck.h).
 * The child relays lookaside bytes fetched from the network and gpg's
 * findings; imaged parses what it says with fixed bounds.  The first
 * input byte picks how many signedBy results the caller expects. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/sigcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sigcheck_answer a;
	size_t want;

	if (size < 1)
		return 0;
	want = data[0] % 4;
	if (sigcheck_parse_answer(data + 1, size - 1, want, &a) != 0)
		return 0;
	if (a.nres != want || a.nfetched > STORE_MAX_SIGS)
		abort();
	for (size_t i = 0; i < a.nfetched; i++) {
		if (a.fetched[i].len == 0 || a.fetched[i].p < data + 1 ||
		    a.fetched[i].p + a.fetched[i].len > data + size)
			abort();
		sink += a.fetched[i].p[a.fetched[i].len - 1];
	}
	for (size_t i = 0; i < a.nres; i++) {
		if ((a.res[i].rc == 0) != (a.res[i].fprlen > 0) || a.res[i].msglen > 1024)
			abort();
		if (a.res[i].msglen)
			sink += (unsigned char)a.res[i].msg[a.res[i].msglen - 1];
	}
	return 0;
}
