/* libFuzzer: containers-policy.json parser, then scope lookup and
 * signedIdentity matching on whatever parsed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/sigpolicy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char *const refs[] = {
	"busybox",
	"quay.io/ns/repo:v1",
	("reg.example.com:5000/ns/sub/repo@sha256:" D64),
	"a.b.example.com/x/y:latest",
	"private-mirror:5000/vendor-mirror/producta/image1:latest",
};

static const char *const sigrefs[] = {
	"docker.io/library/busybox:latest",
	"quay.io/ns/repo",
	"vendor.example.com/producta/image1:latest",
	"reg.example.com:5000/ns/sub/repo:v2",
};

static void check_list(const struct sp_reqlist *l, const struct dockerref *img)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct sp_requirement *r = &l->v[i];
		if (r->type != SP_REQ_SIGNED_BY && r->type != SP_REQ_SIGSTORE_SIGNED)
			continue;
		for (size_t k = 0; k < sizeof sigrefs / sizeof sigrefs[0]; k++)
			(void)sp_identity_matches_ref(&r->identity, img, sigrefs[k]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sp_policy *p = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	if (sp_policy_parse(data, size, &p, &err) != 0)
		return 0;
	for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
		struct sp_match m;
		if (sp_policy_evaluate(p, refs[i], "sha256:" D64, &m, &err) != 0)
			abort(); /* every fixed reference is valid */
		check_list(m.reqs, &m.ref);
	}
	/* and the identity rules with the policy's own scopes as references */
	for (size_t i = 0; i < p->n_scopes; i++) {
		struct dockerref img;
		crisp_err_t e2 = CRISP_ERR_INIT;
		if (dockerref_parse_pull(p->scopes[i].scope, &img, &e2) == 0)
			check_list(&p->scopes[i].reqs, &img);
	}
	sp_policy_free(p);
	return 0;
}
