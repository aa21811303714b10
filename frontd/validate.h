/*
 * frontd: decoding and validation of CRI v1 requests.
 *
 * Every request kubelet (or crictl, or critest) sends goes through
 * cri_decode_request() before frontd looks at it: protobuf-c unpacks it,
 * then three layers check it, each failure an INVALID_ARGUMENT whose
 * message names the field ("config.metadata.name: must be ..."):
 *
 *  1. a walk of the wire bytes, guided by the descriptors: every proto3
 *     `string` (at any depth, in repeated fields and map keys and values)
 *     is valid UTF-8 without NUL bytes.  protobuf-c checks neither, and
 *     after unpacking a string with a NUL in it is silently shorter, so
 *     this must look at the bytes.  `bytes` fields are exempt.  The total
 *     of string and bytes payload is bounded (CRI_MAX_STRING_BYTES);
 *  2. a walk of the unpacked message: nesting depth, items per repeated
 *     field and map, no duplicate map keys, every enum field one of its
 *     declared values (protobuf-c accepts any number for a proto3 enum);
 *  3. per-request rules: required ids and configs, names, paths, labels,
 *     annotations, addresses, ports, resources, security context.  The
 *     rules accept everything kubelet 1.26 and critest 1.26 legitimately
 *     send (see validate.c for each rule's reason).
 *
 * frontd's check is a first line only: execd re-checks meaning and policy
 * (SECURITY.md); nothing here resolves paths or looks at the host.
 *
 * No allocation except protobuf-c's own (and one small array for maps with
 * more than 32 entries, to find duplicate keys); no recursion deeper than
 * CRI_MAX_DEPTH.  Library code: never logs.
 */
#ifndef FRONTD_VALIDATE_H
#define FRONTD_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "common/err.h"

/* Bounds applied to every request. */
#define CRI_MAX_DEPTH 16                        /* nested messages (CRI needs 8) */
#define CRI_MAX_REPEATED 4096                   /* items per repeated field or map */
#define CRI_MAX_ENVS 65536                      /* ContainerConfig.envs (service links) */
#define CRI_MAX_STRING_BYTES (8u * 1024 * 1024) /* all string + bytes payload */

/* The 33 request messages of runtime.v1 RuntimeService and ImageService,
 * in the order of the .proto's rpcs.  cri_decode_request() accepts only
 * these descriptors. */
#define CRI_NREQUESTS 33
extern const ProtobufCMessageDescriptor *const cri_request_descriptors[CRI_NREQUESTS];

/* Unpack a request of descriptor d from buf and validate it.  Returns the
 * message (free it with protobuf_c_message_free_unpacked(m, NULL)), or NULL
 * with err filled: CRISP_INVALID_ARGUMENT for anything the client sent
 * (malformed protobuf included), CRISP_RESOURCE_EXHAUSTED when memory runs
 * out, CRISP_INTERNAL for a descriptor that is not a CRI request. */
ProtobufCMessage *cri_decode_request(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
				     crisp_err_t *err);

/* Validate an already unpacked (or hand-built) request: layers 2 and 3
 * plus UTF-8 of every string (a NUL inside a string cannot be seen here:
 * only cri_decode_request() catches it).  Dispatches on m->descriptor.
 * Returns 0, or -1 with err filled as above. */
int cri_validate(const ProtobufCMessage *m, crisp_err_t *err);

/* ---- field-level helpers (exported for the unit tests) ----
 * Each takes a NUL-terminated string (never NULL) and answers whether it
 * has the shape named; none allocates. */

/* s[0..len) is valid UTF-8 (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF) and holds no NUL byte. */
bool cri_valid_utf8(const char *s, size_t len);

/* 1..64 lowercase hex: a full container/sandbox id, or a prefix of one that
 * its owner resolves. */
bool cri_valid_id(const char *s);

/* Pod and container metadata names: 1..253 of [A-Za-z0-9._-], starting
 * with a letter or digit (critest uses upper case and names over 63). */
bool cri_valid_name(const char *s);

/* RFC 1123 label: 1..max of [a-z0-9-], alphanumeric at both ends. */
bool cri_valid_dns_label(const char *s, size_t max);

/* RFC 1123 host name, at most 64 (the kernel's limit): dot-separated labels
 * of [A-Za-z0-9-], alphanumeric at both ends, each 1..63. */
bool cri_valid_hostname(const char *s);

/* Kubernetes qualified name: [prefix/]name, name 1..63 of [A-Za-z0-9._-]
 * alphanumeric at both ends, prefix a DNS subdomain of at most 253 (lower
 * case for label keys; any case for annotation keys, as the API server
 * checks those lower-cased). */
bool cri_valid_label_key(const char *s);
bool cri_valid_annotation_key(const char *s);

/* Label value: empty, or 1..253 of [A-Za-z0-9._-] alphanumeric at both ends
 * (kubelet puts the pod name, a DNS subdomain of up to 253, in
 * io.kubernetes.pod.name). */
bool cri_valid_label_value(const char *s);

/* Paths.  abs: starts with '/', no ".." component (trailing and double
 * slashes allowed: kubelet passes users' mountPath/hostPath as written).
 * clean_abs: abs and also no empty or "." component and no trailing '/'
 * ("/" itself is clean).  clean_rel: non-empty, does not start with '/',
 * no empty, "." or ".." component, no trailing '/'. */
bool cri_valid_abs_path(const char *s);
bool cri_valid_clean_abs_path(const char *s);
bool cri_valid_clean_rel_path(const char *s);

/* An IPv4 or IPv6 literal (inet_pton); allow_zone accepts an IPv6 zone
 * ("fe80::1%eth0"), as resolv.conf nameservers may carry one. */
bool cri_valid_ip(const char *s, bool allow_zone);
/* ip/prefix with the prefix within the family's width. */
bool cri_valid_cidr(const char *s);
/* Empty, or 1..8 comma-separated CIDRs (dual stack "10.0.0.0/24,fd00::/64"). */
bool cri_valid_pod_cidr(const char *s);

/* cpuset list: empty, or "N" / "N-M" (N <= M) items separated by ','. */
bool cri_valid_cpuset(const char *s);
/* Huge page size as kubelet writes it: [1-9][0-9]* followed by B, KB, MB,
 * GB, TB or PB ("2MB", "1GB", "64KB"). */
bool cri_valid_hugepage_size(const char *s);
/* cgroup v2 file name for LinuxContainerResources.unified: 1..255 of
 * [A-Za-z0-9._-], starting with a letter, with a '.' and no "..". */
bool cri_valid_unified_key(const char *s);
/* Kubernetes sysctl name: segments [a-z0-9]([-_a-z0-9]*[a-z0-9])? joined
 * by '.' or '/', at most 253. */
bool cri_valid_sysctl_name(const char *s);
/* Capability: 1..64 of [A-Za-z0-9_] ("CAP_SYS_ADMIN", "NET_RAW", "ALL"). */
bool cri_valid_capability(const char *s);
/* Image reference or id: 1..4096 printable ASCII, no space. */
bool cri_valid_image_ref(const char *s);
/* LinuxPodSandboxConfig.cgroup_parent: empty, a clean absolute cgroupfs
 * path, or a systemd slice name ("kubepods-burstable-pod<uid>.slice"). */
bool cri_valid_cgroup_parent(const char *s);

#endif
