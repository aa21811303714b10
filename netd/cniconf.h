/*
 * netd: finding the CNI network configuration (spec 1.0 and 0.4).
 * Files in the config directory, in lexical order: *.conflist first
 * considered as lists, *.conf and *.json as single-plugin networks.  The
 * default network is the one named by cni_default_network, else the first
 * valid file.
 */
#ifndef NETD_CNICONF_H
#define NETD_CNICONF_H

#include <stddef.h>

#include "common/err.h"

#define CNI_MAX_CONF_SIZE (1u << 20)

struct cni_net {
	char name[256];
	char cni_version[32];
	char file[4096];
	size_t nplugins;
};

/* Validate one configuration text (a .conflist when is_list, else a single
 * plugin .conf).  Fills net on success. */
int cni_conf_parse(const char *text, size_t len, int is_list, struct cni_net *net, crisp_err_t *err);

/* Find the default network in dir.  NOT_FOUND (with a message an operator
 * can act on) when no usable configuration exists. */
int cni_conf_find(const char *dir, const char *want_name, struct cni_net *net, crisp_err_t *err);

#endif
