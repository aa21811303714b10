/*
 * libFuzzer: imaged's manifest, index and image-config parser.
 *
 * The first byte picks what the rest is parsed as: a manifest served with
 * one of several Content-Types (none, each supported type, a vague one,
 * schema 1, an unknown one), or an image config.  Whatever parses is then
 * driven through platform selection, child parsing (which must fail the
 * digest check) and the config checks.  Every result is freed: leaks fail.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaged/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const content_types[] = {
	NULL,
	MF_MT_OCI_MANIFEST,
	MF_MT_OCI_INDEX,
	MF_MT_DOCKER_MANIFEST,
	MF_MT_DOCKER_LIST,
	"application/json; charset=utf-8",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"text/html",
};
#define NCT (sizeof content_types / sizeof content_types[0])

static const char *const nodes[][3] = {
	{ "linux", "amd64", NULL },
	{ "linux", "arm64", "v8" },
	{ "linux", "arm", NULL },
	{ "linux", "s390x", "" },
};

static void drive_manifest(const struct mf_manifest *m, const uint8_t *buf, size_t len)
{
	crisp_err_t err = CRISP_ERR_INIT;
	const struct mf_descriptor *d;
	char dg[MF_DIGEST_SIZE];

	if (!mf_valid_digest(m->digest))
		abort();
	mf_digest(buf, len, dg);
	if (strcmp(dg, m->digest) != 0)
		abort();
	if (m->kind == MF_MANIFEST) {
		if (m->nlayers > MF_MAX_LAYERS || m->config.type != MF_DESC_CONFIG)
			abort();
		(void)mf_verify_blob(&m->config, buf, len, &err);
		return;
	}
	for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
		if (mf_select_platform(m, nodes[i][0], nodes[i][1], nodes[i][2], &d, &err) == 0) {
			struct mf_manifest child;
			if (d < m->manifests || d >= m->manifests + m->nmanifests)
				abort();
			/* The same bytes cannot hash to the entry's digest (bar a
			 * sha256 collision): this must fail, and cleanly. */
			if (mf_parse_child(m, d, NULL, buf, len, &child, &err) == 0)
				mf_manifest_free(&child);
		} else if (err.code != CRISP_NOT_FOUND) {
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	crisp_err_t err = CRISP_ERR_INIT;
	unsigned mode;

	if (size < 1)
		return 0;
	mode = data[0] % (NCT + 2);
	data++;
	size--;
	if (mode < NCT) {
		struct mf_manifest m;
		if (mf_parse(content_types[mode], data, size, &m, &err) == 0)
			drive_manifest(&m, data, size);
		else if (err.code == CRISP_OK || err.msg[0] == '\0')
			abort();
		mf_manifest_free(&m);
	} else {
		struct mf_config c;
		if (mf_config_parse(data, size, &c, &err) == 0) {
			struct mf_manifest fake;
			memset(&fake, 0, sizeof fake);
			fake.kind = MF_MANIFEST;
			fake.nlayers = c.ndiff_ids;
			if (mf_config_check_layers(&c, &fake, &err) != 0)
				abort();
			(void)mf_config_check_platform(&c, "linux", "amd64", NULL, &err);
			(void)mf_config_check_platform(&c, c.platform.os, c.platform.arch, c.platform.variant, &err);
		} else if (err.code == CRISP_OK || err.msg[0] == '\0') {
			abort();
		}
		mf_config_free(&c);
	}
	return 0;
}
