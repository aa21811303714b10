/* libFuzzer: netd's CNI network configuration parser. */
#include <stdint.h>
#include <string.h>

#include "netd/cniconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cni_net net;
	crisp_err_t err = CRISP_ERR_INIT;

	if (size == 0 || size > CNI_MAX_CONF_SIZE)
		return 0;
	memset(&net, 0, sizeof net);
	/* The first byte picks .conflist or .conf parsing. */
	(void)cni_conf_parse((const char *)data + 1, size - 1, data[0] & 1, &net, &err);
	return 0;
}
