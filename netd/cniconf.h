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

#include <jansson.h>

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
 * can act on) when no usable configuration exists.  Cheap when nothing
 * changed: the answer is cached, keyed by a fingerprint of the directory
 * and its files (names, inodes, sizes, times), so NetworkReady can ask on
 * every call and still see a directory that appears or changes at once. */
int cni_conf_find(const char *dir, const char *want_name, struct cni_net *net, crisp_err_t *err);

struct cni_conf_stats {
	unsigned long lookups; /* cni_conf_find calls */
	unsigned long hits;    /* answered from the cache */
	unsigned long scans;   /* files read and parsed */
};
void cni_conf_get_stats(struct cni_conf_stats *st);
/* Forget the cached answer (tests; a fingerprint change does it anyway). */
void cni_conf_cache_drop(void);

/*
 * A parsed network list that keeps each plugin's JSON, so the per-plugin
 * stdin configuration can be built (netd/cni.h).  A single-plugin .conf is
 * turned into a list of one.  root and plugins are owned.
 */
struct cni_list {
	char name[256];
	char cni_version[32];
	int disable_check;
	json_t *root;    /* the configuration as loaded (for the cache) */
	json_t *plugins; /* array of plugin objects */
};

/* Parse (strictly: duplicate keys refused) and validate as cni_conf_parse
 * does.  l is overwritten; free it with cni_list_free. */
int cni_list_parse(const char *text, size_t len, int is_list, struct cni_list *l, crisp_err_t *err);
/* Rebuild a list from a JSON value previously held in l->root (the cache),
 * is_list telling which form it has.  Takes its own reference. */
int cni_list_from_json(json_t *root, int is_list, struct cni_list *l, crisp_err_t *err);
/* Load the file a cni_net names (cni_conf_find's answer). */
int cni_list_load(const struct cni_net *net, struct cni_list *l, crisp_err_t *err);
void cni_list_free(struct cni_list *l);

#endif
