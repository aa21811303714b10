/*
 * crispd: configuration.  INI syntax parsed by libinih (no hand-rolled
 * tokenizer); every key is declared once in the schema table in config.c
 * with its type and bounds.  Layers, later wins:
 *
 *   embedded default  <  /etc/crisp/crisp.conf  <  /etc/crisp/crisp.conf.d/NAME.conf
 *   (lexical order)   <  command-line flags
 *
 * An unknown section or key, or a bad value, is an error naming the file,
 * the line and the key.  The result is a cipc Config message: the same
 * structure crispd hands to every role over ipc.
 */
#ifndef CRISPD_CONFIG_H
#define CRISPD_CONFIG_H

#include <stdbool.h>

#include "common/err.h"
#include "proto/ipc.pb-c.h"

#define CRISP_DEFAULT_CONFIG "/etc/crisp/crisp.conf"

/* Everything crispd itself needs beyond the shared Config message. */
struct crisp_config {
	Cipc__Config *c;     /* handed to roles */
	char *frontd_user;   /* system users the unprivileged roles run as */
	char *imaged_user;
	bool sandbox_debug;  /* seccomp traps and names the syscall instead of killing */
};

struct crisp_flags {
	const char *config;   /* NULL: the default path, absent is fine */
	bool config_given;    /* --config: the file must exist */
	const char *root, *runroot, *listen, *log_level;
};

/* Load the layers above into *out (freshly allocated). */
int config_load(const struct crisp_flags *f, struct crisp_config *out, crisp_err_t *err);
void config_free(struct crisp_config *cfg);

/* Parse one INI text as a layer on top of cfg (used by config_load, tests
 * and the fuzzer).  name is what error messages call the source. */
int config_parse_string(struct crisp_config *cfg, const char *text, const char *name, crisp_err_t *err);

/* Start from the embedded default. */
int config_defaults(struct crisp_config *cfg, crisp_err_t *err);

/* Checks across keys once every layer is in (paths absolute, etc.). */
int config_validate(const struct crisp_config *cfg, crisp_err_t *err);

/* The embedded default, as text (printed by `crispd --print-default-config`). */
extern const char config_default_text[];

#endif
