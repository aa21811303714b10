/*
 * imaged: per-registry trust anchors the containers way:
 * <dir>/<host[:port]>/NAME.crt files (ca.crt among them), PEM.  When a registry
 * has such files, its trust anchors are the system bundle plus these (as
 * containers/image adds them to the system pool).  Client certificates
 * (NAME.cert, NAME.key) are not supported and are ignored.
 */
#ifndef CRISP_IMAGED_CERTSD_H
#define CRISP_IMAGED_CERTSD_H

#include <stddef.h>

#include "common/err.h"

#define CERTSD_MAX_FILES 32
#define CERTSD_MAX_BYTES (4u << 20) /* the bundle, system CAs included */
#define CERTSD_SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/*
 * The PEM bundle for host (host[:port]) below dir: 0 with *pem NULL when
 * dir is empty or holds nothing for host, 0 with *pem (malloc'd) and *len
 * set, or -1 (FAILED_PRECONDITION: unreadable, too large, not PEM).
 */
int certsd_bundle(const char *dir, const char *host, char **pem, size_t *len, crisp_err_t *err);

#endif
