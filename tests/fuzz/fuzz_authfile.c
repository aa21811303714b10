/*
 * libFuzzer: imaged's auth file (containers-auth.json) parser and lookups
 * on whatever parses.  Every result is freed: leaks fail.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/authfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const q[][2] = {
		{ "docker.io", "library/busybox" }, { "quay.io", "a/b/c" },
		{ "127.0.0.1:5000", "z" },          { "registry.example", "" },
	};
	struct authfile *af = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	if (authfile_parse((const char *)data, size, &af, &err) < 0) {
		if (af)
			abort();
		return 0;
	}
	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		const struct authfile_entry *e = authfile_lookup(af, q[i][0], q[i][1]);
		if (e && (!e->key || (e->username && strchr(e->username, ':'))))
			abort();
		if (e && !e->username && !e->identity_token && e->password)
			abort();
	}
	authfile_free(af);
	return 0;
}
