/* libFuzzer: netd's CNI result and error parsers (plugin stdout). */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "netd/cni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cni_result res;
	crisp_err_t err = CRISP_ERR_INIT;
	unsigned code = 0;
	char msg[400];

	if (size > CNI_DEFAULT_MAX_STDOUT)
		return 0;
	if (cni_result_parse((const char *)data, size, &res, &err) == 0) {
		/* Everything the caller reads must be within bounds and terminated. */
		if (res.nips > CNI_MAX_IPS)
			__builtin_trap();
		for (size_t i = 0; i < res.nips; i++)
			if (strlen(res.ips[i].addr) == 0 || res.ips[i].iface >= (int)res.ninterfaces ||
			    (res.ips[i].family == AF_INET && res.ips[i].prefix > 32) || res.ips[i].prefix > 128)
				__builtin_trap();
		(void)cni_result_ip(&res, AF_INET);
		(void)cni_result_ip(&res, AF_INET6);
		cni_result_free(&res);
	}
	if (cni_error_parse((const char *)data, size, &code, msg, sizeof msg) == 0 && strlen(msg) >= sizeof msg)
		__builtin_trap();
	return 0;
}
