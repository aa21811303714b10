/*
 * crisp: libFuzzer target for frontd's CRI request decoding and validation
 * (cri_decode_request).
 *
 * Input: [selector][protobuf bytes].  The selector picks one of the 33
 * request messages (cri_request_descriptors[selector % 33]); the rest is
 * decoded and validated as that request.  A request that is accepted must
 * also pass cri_validate() and survive a pack/decode round trip unchanged
 * in size: anything else is a bug, reported with a trap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontd/validate.h"

#ifndef CRISP_FUZZING
#error "build with -DCRISP_FUZZING=1 (make fuzz)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d;
	crisp_err_t err = CRISP_ERR_INIT;
	ProtobufCMessage *m, *again;
	uint8_t *buf;
	size_t n;

	if (size < 1 || size > (1u << 20))
		return 0;
	d = cri_request_descriptors[data[0] % CRI_NREQUESTS];
	m = cri_decode_request(d, data + 1, size - 1, &err);
	if (m == NULL) {
		/* Refusals are the client's fault, never ours. */
		if (err.code != CRISP_INVALID_ARGUMENT || err.msg[0] == '\0')
			__builtin_trap();
		return 0;
	}
	if (cri_validate(m, &err) != 0)
		__builtin_trap();
	n = protobuf_c_message_get_packed_size(m);
	buf = malloc(n ? n : 1);
	if (buf != NULL) {
		if (protobuf_c_message_pack(m, buf) != n)
			__builtin_trap();
		again = cri_decode_request(d, buf, n, &err);
		if (again == NULL || protobuf_c_message_get_packed_size(again) != n)
			__builtin_trap();
		protobuf_c_message_free_unpacked(again, NULL);
		free(buf);
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
