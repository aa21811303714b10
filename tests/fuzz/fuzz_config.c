/* libFuzzer: crispd's configuration parser (libinih + crisp's schema). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crispd/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct crisp_config c;
	crisp_err_t err = CRISP_ERR_INIT;
	char *text;

	if (size > 65536)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_defaults(&c, &err) == 0) {
		if (config_parse_string(&c, text, "fuzz", &err) == 0)
			(void)config_validate(&c, &err);
		config_free(&c);
	}
	free(text);
	return 0;
}
