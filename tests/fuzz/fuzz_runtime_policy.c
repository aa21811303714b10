/* libFuzzer: the runtime admission policy parser and its checks. */
#include <stdint.h>
#include <string.h>

#include "policy/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rp_policy p;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *caps[] = { "NET_ADMIN" }, *paths[] = { "/var/lib/kubelet//x/" };

	if (size > (1 << 20) || rp_parse((const char *)data, size, &p, &err) < 0)
		return 0;
	struct rp_pod pod = { .ns = "kube-system", .host_network = true, .runtime_handler = "" };
	struct rp_container c = { .ns = "web", .privileged = true, .add_caps = caps, .nadd_caps = 1,
				  .host_paths = paths, .nhost_paths = 1, .ndevices = 1 };
	(void)rp_check_pod(&p, &pod, &err);
	(void)rp_check_container(&p, &c, &err);
	rp_free(&p);
	return 0;
}
