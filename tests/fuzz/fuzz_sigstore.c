/* libFuzzer: sigstore attachment manifests and cosign payloads.  The
 * first byte chooses: even -> attachment manifest parser (then each
 * layer's digest check against the rest of the input), odd -> cosign
 * payload parser, then identity matching of what parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/sigstore.h"
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
	crisp_err_t err = CRISP_ERR_INIT;

	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		struct sigstore_attachment a;
		if (sigstore_attachment_parse(data + 1, size - 1, &a, &err) != 0) {
			if (err.code != CRISP_INVALID_ARGUMENT || a.n != 0)
				abort();
			return 0;
		}
		if (a.n > SIGSTORE_MAX_SIGS)
			abort();
		for (size_t i = 0; i < a.n; i++) {
			if ((a.v[i].problem == NULL) != (a.v[i].sig != NULL) || a.v[i].sig_len > SIGSTORE_SIG_MAX)
				abort();
			if (sigstore_payload_check(&a.v[i], data, size, &err) == 0 && a.v[i].size != size)
				abort();
		}
		sigstore_attachment_free(&a);
		return 0;
	}
	struct sig_payload pl;
	if (sig_payload_parse_kind(data + 1, size - 1, SIG_PAYLOAD_COSIGN, &pl, &err) != 0) {
		if (err.code != CRISP_INVALID_ARGUMENT || pl.docker_reference[0] != '\0')
			abort();
		return 0;
	}
	if (!dockerref_valid_digest(pl.manifest_digest, strlen(pl.manifest_digest)))
		abort();
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
		sink += sp_identity_matches(&rules[i], "quay.io/ns/app:v1", pl.docker_reference);
	return 0;
}
