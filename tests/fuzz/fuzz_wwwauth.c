/*
 * libFuzzer: what a registry says about authentication and errors, parsed
 * by imaged/registry_auth.c.  The first byte picks the parser: a
 * WWW-Authenticate value, an OCI error document, or a token endpoint
 * answer.  Results are checked for the invariants the client relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0: {
		struct reg_challenge ch;
		/* not NUL-terminated on purpose: the parser takes a length */
		char *v = malloc(size - 1 ? size - 1 : 1);
		memcpy(v, data + 1, size - 1);
		if (reg_parse_challenge(v, size - 1, &ch, &err) == 0) {
			if (ch.scheme != REG_CHAL_BASIC && ch.scheme != REG_CHAL_BEARER)
				abort();
			if (ch.scheme == REG_CHAL_BEARER && ch.realm[0] == '\0')
				abort();
			if (memchr(ch.realm, '\0', sizeof ch.realm) == NULL ||
			    memchr(ch.service, '\0', sizeof ch.service) == NULL ||
			    memchr(ch.scope, '\0', sizeof ch.scope) == NULL)
				abort();
			for (const char *p = ch.realm; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					abort();
		}
		free(v);
		break;
	}
	case 1: {
		char out[300];
		if (reg_parse_oci_error(data + 1, size - 1, out, sizeof out) == 0) {
			if (out[0] == '\0')
				abort();
			for (const char *p = out; *p; p++)
				if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
					abort();
		}
		break;
	}
	default: {
		char *tok = malloc(REG_MAX_TOKEN + 1);
		long exp;
		if (reg_parse_token(data + 1, size - 1, tok, &exp, &err) == 0) {
			size_t n = strlen(tok);
			if (n == 0 || n > REG_MAX_TOKEN || exp < 0 || exp > 86400)
				abort();
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)tok[i] < 0x21 || (unsigned char)tok[i] > 0x7e)
					abort();
		}
		free(tok);
		break;
	}
	}
	return 0;
}
