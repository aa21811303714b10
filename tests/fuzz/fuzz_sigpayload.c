/* libFuzzer: the simple-signing payload parser (the plaintext of a
 * verified OpenPGP signature), then identity matching of what parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/sigverify.h"
#include "policy/sigpolicy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sp_identity rules[] = {
		{ .type = SP_ID_MATCH_EXACT },
		{ .type = SP_ID_MATCH_REPO_DIGEST_OR_EXACT },
		{ .type = SP_ID_MATCH_REPOSITORY },
	};
	struct sig_payload pl;
	crisp_err_t err = CRISP_ERR_INIT;

	if (sig_payload_parse(data, size, &pl, &err) != 0) {
		if (err.code != CRISP_INVALID_ARGUMENT || pl.docker_reference[0] != '\0')
			abort();
		return 0;
	}
	if (!dockerref_valid_digest(pl.manifest_digest, strlen(pl.manifest_digest)))
		abort();
	sink += strlen(pl.docker_reference) + strlen(pl.creator) + (size_t)pl.timestamp;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		sink += sp_identity_matches(&rules[i], "quay.io/ns/app:v1", pl.docker_reference);
	return 0;
}
