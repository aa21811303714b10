/*
 * execd/ctr_podstats: a pod's network counters, read from its network
 * namespace (see ctr_podstats.c).
 */
#ifndef CRISP_EXECD_CTR_PODSTATS_H
#define CRISP_EXECD_CTR_PODSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define PODNET_IFS_MAX 64          /* interfaces reported per pod */
#define PODNET_DEV_MAX (64 * 1024) /* bytes of /proc/net/dev read */
#define PODNET_TIMEOUT_MS 1000     /* the reading child's deadline */

struct podnet_if {
	char name[16]; /* IFNAMSIZ */
	uint64_t rx_bytes, rx_errors, tx_bytes, tx_errors;
};

/*
 * Parse the text of /proc/net/dev: every interface but "lo", at most max.
 * Lines that do not parse (bad name, missing counters) are skipped.
 * Returns the count, or -1 when the header is not /proc/net/dev's.
 */
int podnet_parse(const char *buf, size_t len, struct podnet_if *out, size_t max);

/*
 * The counters of every interface (but lo) of the network namespace pinned
 * at netns_path: a short-lived child joins it and reads /proc/self/net/dev
 * (execd itself never changes namespace); killed after PODNET_TIMEOUT_MS.
 * Returns the count, or -1 with err.
 */
int podnet_read(const char *netns_path, struct podnet_if *out, size_t max, crisp_err_t *err);

#endif
