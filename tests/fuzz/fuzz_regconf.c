/*
 * libFuzzer: imaged's registries.conf parser and the source resolution on
 * whatever parses.  Every result is freed: leaks fail.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/regconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {
		"docker.io/library/busybox", "registry.k8s.io/pause", "a.b.example/x/y",
		"127.0.0.1:5000/z", "gcr.io/a/b/c",
	};
	struct regconf_source src[REGCONF_MAX_MIRRORS + 1];
	struct regconf *c = NULL;
	crisp_err_t err = CRISP_ERR_INIT;
	char out[2048];
	size_t n;

	if (regconf_parse((const char *)data, size, &c, &err) < 0)
		return 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		regconf_sources(c, names[i], false, src, REGCONF_MAX_MIRRORS + 1, &n, &err);
		regconf_sources(c, names[i], true, src, REGCONF_MAX_MIRRORS + 1, &n, &err);
	}
	regconf_qualify(c, "busybox", out, sizeof out, &err);
	regconf_free(c);
	return 0;
}
