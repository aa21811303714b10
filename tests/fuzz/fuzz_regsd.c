/* libFuzzer: the registries.d YAML subset, merged twice into one
 * configuration (the second merge must find every scope a duplicate),
 * then lookups. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/regsd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const refs[] = {
		"quay.io/ns/app:v1",
		("registry.example.com:5000/a/b@sha256:"
		 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
		"busybox",
		"a.b.example.org/x",
	};
	struct regsd *c = regsd_new();
	crisp_err_t err = CRISP_ERR_INIT;
	struct regsd_result r;

	if (c == NULL)
		return 0;
	if (regsd_parse(c, "fuzz.yaml", data, size, &err) != 0) {
		if (err.code != CRISP_INVALID_ARGUMENT || strncmp(err.msg, "fuzz.yaml", 9) != 0 || c->n != 0 ||
		    c->has_default)
			abort();
		regsd_free(c);
		return 0;
	}
	size_t n = c->n;
	if (n > 0 || c->has_default) {
		if (regsd_parse(c, "again.yaml", data, size, &err) == 0 || c->n != n)
			abort();
	}
	for (size_t i = 0; i < n; i++)
		if (i > 0 && strcmp(c->scopes[i - 1].scope, c->scopes[i].scope) >= 0)
			abort();
	for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
		if (regsd_lookup(c, refs[i], &r, &err) != 0)
			abort();
		sink += (r.lookaside != NULL ? strlen(r.lookaside) : 0) + r.use_attachments;
	}
	regsd_free(c);
	return 0;
}
