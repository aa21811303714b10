/*
 * imaged/manifest: real documents of every supported media type (built
 * offline with umoci from busybox-static and converted with skopeo: OCI
 * layout, zstd recompression, Docker v2s2 and manifest list), platform
 * selection, schema 1 refusal, duplicate keys, and one failing example per
 * validation rule, each checked for the JSON path in its message.  Ends
 * with a deterministic mutation pass over every real document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imaged/manifest.h"

/* ---- real documents (file name in the layout = sha256 of these bytes) ---- */

/* config_amd64.json */
static const char CONFIG_AMD64[] =
	"{\"created\":\"2026-11-28T12:17:23.384762953Z\",\"architecture\":\"amd64\",\"os\":\"linux\","
	"\"config\":{\"User\":\"1000:1000\",\"ExposedPorts\":{\"80/tcp\":{}},\"Env\":[\"PATH=/bin\"],\"C"
	"md\":[\"/bin/sh\"],\"WorkingDir\":\"/\",\"Labels\":{\"org.example.a\":\"b\"}},\"rootfs\":{\"type"
	"\":\"layers\",\"diff_ids\":[\"sha256:2c8be36338dc3c8971b4d61f9d511b1373ad59a2de9993ecd"
	"f685dbaf4faac9d\"]},\"history\":[{\"created\":\"2026-11-28T12:17:23.474267959Z\",\"creat"
	"ed_by\":\"umoci insert\"},{\"created\":\"2026-11-28T12:17:23.656652403Z\",\"created_by\":"
	"\"umoci config\",\"empty_layer\":true}]}\n"
	;
/* config_arm64.json */
static const char CONFIG_ARM64[] =
	"{\"created\":\"2026-11-28T12:17:23.384762953Z\",\"architecture\":\"arm64\",\"os\":\"linux\","
	"\"config\":{\"User\":\"1000:1000\",\"ExposedPorts\":{\"80/tcp\":{}},\"Env\":[\"PATH=/bin\"],\"C"
	"md\":[\"/bin/sh\"],\"WorkingDir\":\"/\",\"Labels\":{\"org.example.a\":\"b\"}},\"rootfs\":{\"type"
	"\":\"layers\",\"diff_ids\":[\"sha256:2c8be36338dc3c8971b4d61f9d511b1373ad59a2de9993ecd"
	"f685dbaf4faac9d\"]},\"history\":[{\"created\":\"2026-11-28T12:17:23.474267959Z\",\"creat"
	"ed_by\":\"umoci insert\"},{\"created\":\"2026-11-28T12:17:23.656652403Z\",\"created_by\":"
	"\"umoci config\",\"empty_layer\":true},{\"created\":\"2026-11-28T12:17:32.946665312Z\",\""
	"created_by\":\"umoci config\",\"empty_layer\":true}]}\n"
	;
/* docker_list.json */
static const char DOCKER_LIST[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.lis"
	"t.v2+json\",\"manifests\":[{\"mediaType\":\"application/vnd.docker.distribution.manife"
	"st.v2+json\",\"size\":427,\"digest\":\"sha256:f755a365fcc9a333bac361bf584319285db27a99"
	"a2010dcf49b226d3e5b078b0\",\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"varia"
	"nt\":\"v8\"}},{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\""
	"size\":427,\"digest\":\"sha256:a3cc02d09aec89d4d612a9ce83c733ed84783937317dcd04102ef"
	"35b667e0718\",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}"
	;
/* docker_manifest.json */
static const char DOCKER_MANIFEST[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+"
	"json\",\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"si"
	"ze\":517,\"digest\":\"sha256:8e85f0e18bb5ecda8a4d1f883430ef41e66cc8cd375809f625f0b03"
	"7b4aa0601\"},\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar"
	".gzip\",\"size\":1083999,\"digest\":\"sha256:0ebf64e77afd60f2356c063435f00ad92ed92badd"
	"3fbc4fb7053bc3f64effa16\"}]}"
	;
/* layout_index.json */
static const char LAYOUT_INDEX[] =
	"{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"application/vnd.oci.image.mani"
	"fest.v1+json\", \"digest\": \"sha256:00af84e72b56a127bffcfcadd22bb1f4ef97af303f71fce"
	"17337e61b45992364\", \"size\": 349, \"annotations\": {\"org.opencontainers.image.ref.n"
	"ame\": \"busybox\"}}, {\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \""
	"digest\": \"sha256:5673108408ce97ac3aa52f91fad7da895073ec978eeaf5d9aa541f58ab43568"
	"2\", \"size\": 349, \"annotations\": {\"org.opencontainers.image.ref.name\": \"arm64\"}},"
	" {\"mediaType\": \"application/vnd.oci.image.index.v1+json\", \"digest\": \"sha256:01da"
	"af4054e0643127d4adb774a4ad58441fc855d252640578b0bcea716d24ce\", \"size\": 506, \"ann"
	"otations\": {\"org.opencontainers.image.ref.name\": \"multi\"}}]}"
	;
/* oci_index.json */
static const char OCI_INDEX[] =
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manife"
	"sts\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256"
	":5673108408ce97ac3aa52f91fad7da895073ec978eeaf5d9aa541f58ab435682\",\"size\":349,\"p"
	"latform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},{\"mediaType\":\"app"
	"lication/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:00af84e72b56a127bffcfc"
	"add22bb1f4ef97af303f71fce17337e61b45992364\",\"size\":349,\"platform\":{\"architecture"
	"\":\"amd64\",\"os\":\"linux\"}}]}"
	;
/* oci_manifest.json */
static const char OCI_MANIFEST[] =
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+js"
	"on\",\"digest\":\"sha256:8e85f0e18bb5ecda8a4d1f883430ef41e66cc8cd375809f625f0b037b4a"
	"a0601\",\"size\":517},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.ta"
	"r+gzip\",\"digest\":\"sha256:0ebf64e77afd60f2356c063435f00ad92ed92badd3fbc4fb7053bc3"
	"f64effa16\",\"size\":1083999}]}\n"
	;
/* oci_manifest_nolayers.json */
static const char OCI_MANIFEST_NOLAYERS[] =
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+js"
	"on\",\"digest\":\"sha256:4158a98c612156d256e2a4680e7b3dcd144e663507a05eec4f638d8d740"
	"5c2ee\",\"size\":134},\"layers\":[]}\n"
	;
/* oci_manifest_zstd.json */
static const char OCI_MANIFEST_ZSTD[] =
	"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+js"
	"on\",\"digest\":\"sha256:8e85f0e18bb5ecda8a4d1f883430ef41e66cc8cd375809f625f0b037b4a"
	"a0601\",\"size\":517},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.ta"
	"r+zstd\",\"digest\":\"sha256:45b43a75dd669eff81d8a689e6d832f2fe70baeb672f9c9e19db01c"
	"0a6db4ab1\",\"size\":1089523}]}"
	;

#define D_OCI_MANIFEST "sha256:00af84e72b56a127bffcfcadd22bb1f4ef97af303f71fce17337e61b45992364"
#define D_ARM_MANIFEST "sha256:5673108408ce97ac3aa52f91fad7da895073ec978eeaf5d9aa541f58ab435682"
#define D_OCI_ZSTD "sha256:d023395cc3e1dd4b11d5661c3146d7bab33a48d0d68b18c16dbcfcd069fb345c"
#define D_OCI_NOLAYERS "sha256:b2768adb83d5284af3478d021a59c373d6de2bba1921b36dc09650d7c470a093"
#define D_OCI_INDEX "sha256:01daaf4054e0643127d4adb774a4ad58441fc855d252640578b0bcea716d24ce"
#define D_LAYOUT_INDEX "sha256:31017dc99cf3ebbae3e3010b0f6e06d5671baa4913953e31e69892591cccb55b"
#define D_DOCKER_MANIFEST "sha256:a3cc02d09aec89d4d612a9ce83c733ed84783937317dcd04102ef35b667e0718"
#define D_DOCKER_ARM "sha256:f755a365fcc9a333bac361bf584319285db27a99a2010dcf49b226d3e5b078b0"
#define D_DOCKER_LIST "sha256:0556f58c0180823b3103079f55653f7e9a48a9f7d0684511c2794a58cc3cc913"
#define D_CONFIG_AMD64 "sha256:8e85f0e18bb5ecda8a4d1f883430ef41e66cc8cd375809f625f0b037b4aa0601"
#define D_CONFIG_ARM64 "sha256:fc468e6c80230a8aaa96d730cc929db61d986811c0ceb01826e260dbbe50507e"
#define D_LAYER "sha256:0ebf64e77afd60f2356c063435f00ad92ed92badd3fbc4fb7053bc3f64effa16"
#define D_DIFF "sha256:2c8be36338dc3c8971b4d61f9d511b1373ad59a2de9993ecdf685dbaf4faac9d"
#define D_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

#define CT_OCI_M MF_MT_OCI_MANIFEST
#define CT_OCI_I MF_MT_OCI_INDEX
#define CT_DOCKER_M MF_MT_DOCKER_MANIFEST
#define CT_DOCKER_L MF_MT_DOCKER_LIST
#define SCHEMA1 "schema 1 manifests are not supported: re-push the image with a current client"

/* ---- helpers ---- */

static const uint8_t *B(const char *s)
{
	return (const uint8_t *)s;
}

/* printf, then ' -> " so that JSON reads well in C. */
static char *J(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *J(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	for (char *p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	return s;
}

static void must_contain(const crisp_err_t *err, const char *want)
{
	if (strstr(err->msg, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", err->msg, want);
}

static void parse_ok(const char *ct, const char *doc, struct mf_manifest *m)
{
	crisp_err_t err = CRISP_ERR_INIT;

	if (mf_parse(ct, B(doc), strlen(doc), m, &err) != 0)
		fail_msg("parse failed: %s", err.msg);
}

/* Parse doc (owned, freed here) and expect failure with code and message. */
static void parse_fails(const char *ct, char *doc, int code, const char *want)
{
	struct mf_manifest m;
	crisp_err_t err = CRISP_ERR_INIT;

	if (mf_parse(ct, B(doc), strlen(doc), &m, &err) == 0)
		fail_msg("parse of %s succeeded, wanted '%s'", doc, want);
	must_contain(&err, want);
	assert_int_equal(err.code, code);
	assert_int_equal(m.nlayers + m.nmanifests, 0); /* left empty */
	assert_null(m.layers);
	mf_manifest_free(&m);
	free(doc);
}

static void config_fails(char *doc, const char *want)
{
	struct mf_config c;
	crisp_err_t err = CRISP_ERR_INIT;

	if (mf_config_parse(B(doc), strlen(doc), &c, &err) == 0)
		fail_msg("config %s parsed, wanted '%s'", doc, want);
	must_contain(&err, want);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_null(c.env.v);
	mf_config_free(&c);
	free(doc);
}

#define CFG_OK "{'mediaType':'" MF_MT_OCI_CONFIG "','digest':'" D_CONFIG_AMD64 "','size':517}"
#define LAYER_OK "{'mediaType':'application/vnd.oci.image.layer.v1.tar+gzip','digest':'" D_LAYER "','size':1083999}"

/* An OCI manifest whose second layer is `layer`. */
static void layer_fails(const char *layer, const char *want)
{
	parse_fails(CT_OCI_M,
		    J("{'schemaVersion':2,'mediaType':'%s','config':%s,'layers':[%s,%s]}", CT_OCI_M, CFG_OK, LAYER_OK,
		      layer),
		    CRISP_INVALID_ARGUMENT, want);
}

static void config_desc_fails(const char *cfg, const char *want)
{
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'%s','config':%s,'layers':[%s]}", CT_OCI_M, cfg, LAYER_OK),
		    CRISP_INVALID_ARGUMENT, want);
}

/* An OCI index whose first entry is `entry`. */
static void entry_fails(const char *entry, const char *want)
{
	parse_fails(CT_OCI_I, J("{'schemaVersion':2,'mediaType':'%s','manifests':[%s]}", CT_OCI_I, entry),
		    CRISP_INVALID_ARGUMENT, want);
}

/* ---- digests ---- */

static void test_digest(void **state)
{
	static const struct {
		const char *doc, *digest;
	} t[] = {
		{ OCI_MANIFEST, D_OCI_MANIFEST },   { OCI_MANIFEST_ZSTD, D_OCI_ZSTD },
		{ OCI_MANIFEST_NOLAYERS, D_OCI_NOLAYERS }, { OCI_INDEX, D_OCI_INDEX },
		{ LAYOUT_INDEX, D_LAYOUT_INDEX },   { DOCKER_MANIFEST, D_DOCKER_MANIFEST },
		{ DOCKER_LIST, D_DOCKER_LIST },     { CONFIG_AMD64, D_CONFIG_AMD64 },
		{ CONFIG_ARM64, D_CONFIG_ARM64 },   { "", D_EMPTY },
	};
	char d[MF_DIGEST_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		assert_int_equal(mf_digest(B(t[i].doc), strlen(t[i].doc), d), 0);
		assert_string_equal(d, t[i].digest);
		assert_true(mf_valid_digest(d));
	}
	assert_int_equal(mf_digest(NULL, 0, d), 0);
	assert_string_equal(d, D_EMPTY);

	assert_false(mf_valid_digest(NULL));
	assert_false(mf_valid_digest(""));
	assert_false(mf_valid_digest("sha256:"));
	assert_false(mf_valid_digest("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	assert_false(mf_valid_digest(D_EMPTY "0"));
	assert_false(mf_valid_digest("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
	assert_false(mf_valid_digest("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g"));
	assert_false(mf_valid_digest("SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	assert_false(mf_valid_digest("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	assert_false(mf_valid_digest(" sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
}

/* ---- the real documents ---- */

static void test_oci_manifest(void **state)
{
	struct mf_manifest m;
	crisp_err_t err = CRISP_ERR_INIT;
	/* umoci writes no mediaType: Content-Type, or the shape, decides. */
	const char *cts[] = { CT_OCI_M, NULL, "", "application/json", "application/octet-stream",
			      " Application/VND.oci.image.manifest.v1+JSON ; charset=utf-8" };

	(void)state;
	for (size_t i = 0; i < sizeof cts / sizeof cts[0]; i++) {
		parse_ok(cts[i], OCI_MANIFEST, &m);
		assert_int_equal(m.kind, MF_MANIFEST);
		assert_string_equal(m.media_type, CT_OCI_M);
		assert_false(m.docker);
		assert_string_equal(m.digest, D_OCI_MANIFEST);
		assert_int_equal(m.size, strlen(OCI_MANIFEST));
		assert_int_equal(m.depth, 0);
		assert_int_equal(m.config.type, MF_DESC_CONFIG);
		assert_string_equal(m.config.media_type, MF_MT_OCI_CONFIG);
		assert_string_equal(m.config.digest, D_CONFIG_AMD64);
		assert_int_equal(m.config.size, 517);
		assert_int_equal(m.nlayers, 1);
		assert_int_equal(m.layers[0].type, MF_DESC_LAYER);
		assert_string_equal(m.layers[0].digest, D_LAYER);
		assert_int_equal(m.layers[0].size, 1083999);
		assert_int_equal(m.layers[0].comp, MF_COMP_GZIP);
		assert_false(m.layers[0].foreign);
		assert_int_equal(m.nmanifests, 0);
		mf_manifest_free(&m);
		assert_null(m.layers);
	}
	/* Content-Type says index: the manifest's fields betray it. */
	assert_int_equal(mf_parse(CT_OCI_I, B(OCI_MANIFEST), strlen(OCI_MANIFEST), &m, &err), -1);
	must_contain(&err, "index.config: an image manifest field in an index");
	/* Content-Type says Docker: Docker documents must carry mediaType. */
	assert_int_equal(mf_parse(CT_DOCKER_M, B(OCI_MANIFEST), strlen(OCI_MANIFEST), &m, &err), -1);
	must_contain(&err, "manifest.mediaType: missing (required in Docker schema 2 documents)");

	parse_ok(NULL, OCI_MANIFEST_ZSTD, &m);
	assert_string_equal(m.digest, D_OCI_ZSTD);
	assert_int_equal(m.layers[0].comp, MF_COMP_ZSTD);
	mf_manifest_free(&m);

	parse_ok(CT_OCI_M, OCI_MANIFEST_NOLAYERS, &m);
	assert_int_equal(m.nlayers, 0);
	assert_null(m.layers);
	mf_manifest_free(&m);

	/* With mediaType, annotations and an uncompressed layer. */
	char *doc = J("{'schemaVersion':2,'mediaType':'%s','config':%s,'layers':[{'mediaType':"
		      "'application/vnd.oci.image.layer.v1.tar','digest':'%s','size':10240,'annotations':{'a':'b'}}],"
		      "'annotations':{'org.opencontainers.image.created':'2024-01-01T00:00:00Z','x':''},"
		      "'unknown':{'ignored':[1,2,3]}}",
		      CT_OCI_M, CFG_OK, D_DIFF);
	parse_ok("application/vnd.oci.image.manifest.v1+json", doc, &m);
	assert_int_equal(m.layers[0].comp, MF_COMP_NONE);
	assert_int_equal(m.layers[0].nannotations, 1);
	assert_string_equal(m.layers[0].annotations[0].key, "a");
	assert_string_equal(m.layers[0].annotations[0].value, "b");
	assert_int_equal(m.nannotations, 2);
	mf_manifest_free(&m);
	free(doc);
}

static void test_docker_manifest(void **state)
{
	struct mf_manifest m;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	parse_ok(CT_DOCKER_M, DOCKER_MANIFEST, &m);
	assert_int_equal(m.kind, MF_MANIFEST);
	assert_true(m.docker);
	assert_string_equal(m.media_type, CT_DOCKER_M);
	assert_string_equal(m.digest, D_DOCKER_MANIFEST);
	assert_string_equal(m.config.media_type, MF_MT_DOCKER_CONFIG);
	assert_string_equal(m.config.digest, D_CONFIG_AMD64);
	assert_int_equal(m.nlayers, 1);
	assert_int_equal(m.layers[0].comp, MF_COMP_GZIP);
	assert_string_equal(m.layers[0].media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip");
	mf_manifest_free(&m);

	parse_ok(NULL, DOCKER_MANIFEST, &m);
	assert_true(m.docker);
	mf_manifest_free(&m);

	/* Content-Type and mediaType disagree. */
	assert_int_equal(mf_parse(CT_OCI_M, B(DOCKER_MANIFEST), strlen(DOCKER_MANIFEST), &m, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	must_contain(&err, "manifest.mediaType: '" CT_DOCKER_M "' does not match the Content-Type '" CT_OCI_M "'");
	assert_int_equal(mf_parse(CT_DOCKER_L, B(DOCKER_MANIFEST), strlen(DOCKER_MANIFEST), &m, &err), -1);
	must_contain(&err, "does not match the Content-Type");
}

static void test_oci_index(void **state)
{
	struct mf_manifest m;
	const struct mf_descriptor *d;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	parse_ok(CT_OCI_I, OCI_INDEX, &m);
	assert_int_equal(m.kind, MF_INDEX);
	assert_string_equal(m.media_type, CT_OCI_I);
	assert_string_equal(m.digest, D_OCI_INDEX);
	assert_int_equal(m.nmanifests, 2);
	assert_int_equal(m.nlayers, 0);
	assert_int_equal(m.manifests[0].type, MF_DESC_MANIFEST);
	assert_true(m.manifests[0].has_platform);
	assert_string_equal(m.manifests[0].platform.arch, "arm64");
	assert_string_equal(m.manifests[0].platform.variant, "v8");
	assert_string_equal(m.manifests[1].platform.arch, "amd64");
	assert_string_equal(m.manifests[1].platform.os, "linux");
	assert_string_equal(m.manifests[1].platform.variant, "");

	/* amd64 + arm64 index picks amd64 (the second entry). */
	assert_int_equal(mf_select_platform(&m, "linux", "amd64", NULL, &d, &err), 0);
	assert_ptr_equal(d, &m.manifests[1]);
	assert_string_equal(d->digest, D_OCI_MANIFEST);
	assert_int_equal(mf_select_platform(&m, "linux", "x86_64", "", &d, &err), 0);
	assert_ptr_equal(d, &m.manifests[1]);
	/* arm64: no variant, v8, aarch64 all mean arm64/v8. */
	assert_int_equal(mf_select_platform(&m, "linux", "arm64", NULL, &d, &err), 0);
	assert_ptr_equal(d, &m.manifests[0]);
	assert_int_equal(mf_select_platform(&m, "linux", "aarch64", "v8", &d, &err), 0);
	assert_ptr_equal(d, &m.manifests[0]);
	assert_int_equal(mf_select_platform(&m, "Linux", "ARM64", "8", &d, &err), 0);
	assert_ptr_equal(d, &m.manifests[0]);
	/* No match. */
	assert_int_equal(mf_select_platform(&m, "linux", "arm", NULL, &d, &err), -1);
	assert_null(d);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_string_equal(err.msg, "no image for linux/arm/v7 in index (available: linux/arm64/v8, linux/amd64)");
	assert_int_equal(mf_select_platform(&m, "linux", "arm64", "v9", &d, &err), -1);
	must_contain(&err, "no image for linux/arm64/v9 in index");
	assert_int_equal(mf_select_platform(&m, "windows", "amd64", NULL, &d, &err), -1);
	must_contain(&err, "no image for windows/amd64 in index");
	/* A manifest is not an index. */
	{
		struct mf_manifest man;
		parse_ok(NULL, OCI_MANIFEST, &man);
		assert_int_equal(mf_select_platform(&man, "linux", "amd64", NULL, &d, &err), -1);
		assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
		mf_manifest_free(&man);
	}
	mf_manifest_free(&m);

	/* Without a Content-Type the document's mediaType decides. */
	parse_ok(NULL, OCI_INDEX, &m);
	assert_int_equal(m.kind, MF_INDEX);
	mf_manifest_free(&m);
	assert_int_equal(mf_parse(CT_OCI_M, B(OCI_INDEX), strlen(OCI_INDEX), &m, &err), -1);
	must_contain(&err, "does not match the Content-Type");
}

static void test_docker_list(void **state)
{
	struct mf_manifest m;
	const struct mf_descriptor *d;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	parse_ok(CT_DOCKER_L, DOCKER_LIST, &m);
	assert_int_equal(m.kind, MF_INDEX);
	assert_true(m.docker);
	assert_string_equal(m.digest, D_DOCKER_LIST);
	assert_int_equal(m.nmanifests, 2);
	assert_int_equal(m.manifests[1].type, MF_DESC_MANIFEST);
	assert_string_equal(m.manifests[1].media_type, CT_DOCKER_M);
	assert_int_equal(mf_select_platform(&m, "linux", "amd64", NULL, &d, &err), 0);
	assert_string_equal(d->digest, D_DOCKER_MANIFEST);
	assert_int_equal(mf_select_platform(&m, "linux", "arm64", NULL, &d, &err), 0);
	assert_string_equal(d->digest, D_DOCKER_ARM);

	/* The selected child, verified against its entry. */
	{
		struct mf_manifest child;
		const struct mf_descriptor *amd;
		assert_int_equal(mf_select_platform(&m, "linux", "amd64", NULL, &amd, &err), 0);
		assert_int_equal(mf_parse_child(&m, amd, CT_DOCKER_M, B(DOCKER_MANIFEST), strlen(DOCKER_MANIFEST),
						&child, &err),
				 0);
		assert_int_equal(child.depth, 1);
		assert_string_equal(child.digest, amd->digest);
		mf_manifest_free(&child);
		/* No Content-Type: the entry's media type stands in. */
		assert_int_equal(mf_parse_child(&m, amd, NULL, B(DOCKER_MANIFEST), strlen(DOCKER_MANIFEST), &child,
						&err),
				 0);
		mf_manifest_free(&child);
		/* The bytes of another image: digest mismatch (same size). */
		assert_int_equal(mf_parse_child(&m, d, CT_DOCKER_M, B(DOCKER_MANIFEST), strlen(DOCKER_MANIFEST),
						&child, &err),
				 -1);
		assert_int_equal(err.code, CRISP_DATA_LOSS);
		must_contain(&err, "blob " D_DOCKER_ARM ": content has digest " D_DOCKER_MANIFEST);
		/* Truncated. */
		assert_int_equal(mf_parse_child(&m, amd, CT_DOCKER_M, B(DOCKER_MANIFEST), 100, &child, &err), -1);
		assert_int_equal(err.code, CRISP_DATA_LOSS);
		must_contain(&err, "100 bytes, but its descriptor says 427");
		/* Not an entry of this index. */
		assert_int_equal(mf_parse_child(&m, &m.config, NULL, B(DOCKER_MANIFEST), strlen(DOCKER_MANIFEST),
						&child, &err),
				 -1);
		assert_int_equal(err.code, CRISP_INTERNAL);
	}
	mf_manifest_free(&m);
}

static void test_layout_index(void **state)
{
	struct mf_manifest m;
	const struct mf_descriptor *d;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	/* An OCI layout's index.json: no mediaType, no platforms. */
	parse_ok(NULL, LAYOUT_INDEX, &m);
	assert_int_equal(m.kind, MF_INDEX);
	assert_string_equal(m.media_type, CT_OCI_I);
	assert_int_equal(m.nmanifests, 3);
	assert_int_equal(m.manifests[2].type, MF_DESC_INDEX);
	assert_false(m.manifests[0].has_platform);
	assert_int_equal(m.manifests[0].nannotations, 1);
	assert_string_equal(m.manifests[0].annotations[0].key, "org.opencontainers.image.ref.name");
	assert_string_equal(m.manifests[0].annotations[0].value, "busybox");
	assert_int_equal(mf_select_platform(&m, "linux", "amd64", NULL, &d, &err), -1);
	assert_int_equal(err.code, CRISP_NOT_FOUND);
	assert_string_equal(err.msg, "no image for linux/amd64 in index (available: none)");

	/* Its nested index ("multi") is the real OCI index above. */
	{
		struct mf_manifest child;
		assert_int_equal(mf_parse_child(&m, &m.manifests[2], NULL, B(OCI_INDEX), strlen(OCI_INDEX), &child,
						&err),
				 0);
		assert_int_equal(child.kind, MF_INDEX);
		assert_int_equal(child.depth, 1);
		assert_int_equal(mf_select_platform(&child, "linux", "amd64", NULL, &d, &err), 0);
		assert_string_equal(d->digest, D_OCI_MANIFEST);
		mf_manifest_free(&child);
		/* Asking for an index where the entry says manifest. */
		assert_int_equal(mf_parse_child(&m, &m.manifests[0], NULL, B(OCI_INDEX), strlen(OCI_INDEX), &child,
						&err),
				 -1);
		assert_int_equal(err.code, CRISP_DATA_LOSS);
	}
	mf_manifest_free(&m);
}

/* Index -> index -> index: the third level is refused; child type checks. */
static void test_nesting(void **state)
{
	char d_leaf[MF_DIGEST_SIZE], d_mid[MF_DIGEST_SIZE], d_inner[MF_DIGEST_SIZE];
	char *inner, *mid, *top, *lie;
	struct mf_manifest t, mi, in, leaf;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	mf_digest(B(OCI_MANIFEST), strlen(OCI_MANIFEST), d_leaf);
	inner = J("{'schemaVersion':2,'mediaType':'%s','manifests':[{'mediaType':'%s','digest':'%s','size':%zu,"
		  "'platform':{'os':'linux','architecture':'amd64'}}]}",
		  CT_OCI_I, CT_OCI_M, d_leaf, strlen(OCI_MANIFEST));
	mf_digest(B(inner), strlen(inner), d_inner);
	mid = J("{'schemaVersion':2,'mediaType':'%s','manifests':[{'mediaType':'%s','digest':'%s','size':%zu,"
		"'platform':{'os':'linux','architecture':'amd64'}}]}",
		CT_OCI_I, CT_OCI_I, d_inner, strlen(inner));
	mf_digest(B(mid), strlen(mid), d_mid);
	top = J("{'schemaVersion':2,'mediaType':'%s','manifests':[{'mediaType':'%s','digest':'%s','size':%zu,"
		"'platform':{'os':'linux','architecture':'amd64'}}]}",
		CT_OCI_I, CT_OCI_I, d_mid, strlen(mid));

	parse_ok(CT_OCI_I, top, &t);
	assert_int_equal(t.manifests[0].type, MF_DESC_INDEX);
	assert_int_equal(mf_parse_child(&t, &t.manifests[0], CT_OCI_I, B(mid), strlen(mid), &mi, &err), 0);
	assert_int_equal(mi.depth, 1);
	assert_int_equal(mf_parse_child(&mi, &mi.manifests[0], CT_OCI_I, B(inner), strlen(inner), &in, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	must_contain(&err, "index: nested more than 2 deep");
	assert_null(in.manifests);
	/* A manifest under a nested index is fine. */
	{
		char *mid2 = J("{'schemaVersion':2,'mediaType':'%s','manifests':[{'mediaType':'%s','digest':'%s',"
			       "'size':%zu,'platform':{'os':'linux','architecture':'amd64'}}]}",
			       CT_OCI_I, CT_OCI_M, d_leaf, strlen(OCI_MANIFEST));
		struct mf_manifest m2;
		parse_ok(NULL, mid2, &m2);
		m2.depth = 1; /* as if parsed under an index */
		assert_int_equal(
			mf_parse_child(&m2, &m2.manifests[0], NULL, B(OCI_MANIFEST), strlen(OCI_MANIFEST), &leaf, &err),
			0);
		assert_int_equal(leaf.depth, 2);
		assert_int_equal(leaf.kind, MF_MANIFEST);
		mf_manifest_free(&leaf);
		mf_manifest_free(&m2);
		free(mid2);
	}
	/* The entry says Docker, the (matching-digest) document is OCI. */
	lie = J("{'schemaVersion':2,'mediaType':'%s','manifests':[{'mediaType':'%s','digest':'%s','size':%zu}]}",
		CT_DOCKER_L, CT_DOCKER_M, d_leaf, strlen(OCI_MANIFEST));
	{
		struct mf_manifest l;
		parse_ok(NULL, lie, &l);
		assert_int_equal(mf_parse_child(&l, &l.manifests[0], NULL, B(OCI_MANIFEST), strlen(OCI_MANIFEST), &leaf,
						&err),
				 -1);
		must_contain(&err, "manifest.mediaType: missing (required in Docker schema 2 documents)");
		assert_int_equal(mf_parse_child(&l, &l.manifests[0], CT_OCI_M, B(OCI_MANIFEST), strlen(OCI_MANIFEST),
						&leaf, &err),
				 -1);
		must_contain(&err, "manifest.mediaType: '" CT_OCI_M "' does not match the index entry's '" CT_DOCKER_M "'");
		mf_manifest_free(&l);
	}
	mf_manifest_free(&mi);
	mf_manifest_free(&t);
	free(inner);
	free(mid);
	free(top);
	free(lie);
}

static void test_platform_selection(void **state)
{
	struct mf_manifest m;
	const struct mf_descriptor *d;
	crisp_err_t err = CRISP_ERR_INIT;
	char *doc;

	(void)state;
	/* Entry order: arm/v6, arm (no variant = v7), amd64/v3, attestation,
	 * unknown type claiming amd64, amd64, arm64 without variant. */
	doc = J("{'schemaVersion':2,'mediaType':'%s','manifests':["
		"{'mediaType':'%s','digest':'sha256:%064d','size':1,'platform':{'os':'linux','architecture':'arm','variant':'v6'}},"
		"{'mediaType':'%s','digest':'sha256:%064d','size':2,'platform':{'os':'linux','architecture':'arm'}},"
		"{'mediaType':'%s','digest':'sha256:%064d','size':3,'platform':{'os':'linux','architecture':'amd64','variant':'v3'}},"
		"{'mediaType':'%s','digest':'sha256:%064d','size':4,'platform':{'os':'unknown','architecture':'unknown'},"
		"'annotations':{'vnd.docker.reference.type':'attestation-manifest'}},"
		"{'mediaType':'application/vnd.example.thing+json','digest':'sha256:%064d','size':5,"
		"'platform':{'os':'linux','architecture':'amd64'}},"
		"{'mediaType':'%s','digest':'sha256:%064d','size':6,'platform':{'os':'linux','architecture':'amd64',"
		"'os.version':'10.0','os.features':['x']}},"
		"{'mediaType':'%s','digest':'sha256:%064d','size':7,'platform':{'os':'linux','architecture':'arm64'}}]}",
		CT_OCI_I, CT_OCI_M, 1, CT_OCI_M, 2, CT_OCI_M, 3, CT_OCI_M, 4, 5, CT_OCI_M, 6, CT_OCI_M, 7);
	parse_ok(NULL, doc, &m);
	assert_int_equal(m.nmanifests, 7);
	assert_int_equal(m.manifests[4].type, MF_DESC_OTHER);

	assert_int_equal(mf_select_platform(&m, "linux", "amd64", NULL, &d, &err), 0);
	assert_int_equal(d->size, 6); /* not v3, not the unknown type */
	assert_int_equal(mf_select_platform(&m, "linux", "amd64", "v3", &d, &err), 0);
	assert_int_equal(d->size, 3);
	assert_int_equal(mf_select_platform(&m, "linux", "x86_64", "v1", &d, &err), 0);
	assert_int_equal(d->size, 6);
	assert_int_equal(mf_select_platform(&m, "linux", "arm", NULL, &d, &err), 0);
	assert_int_equal(d->size, 2);
	assert_int_equal(mf_select_platform(&m, "linux", "arm", "v7", &d, &err), 0);
	assert_int_equal(d->size, 2);
	assert_int_equal(mf_select_platform(&m, "linux", "armhf", NULL, &d, &err), 0);
	assert_int_equal(d->size, 2);
	assert_int_equal(mf_select_platform(&m, "linux", "arm", "6", &d, &err), 0);
	assert_int_equal(d->size, 1);
	assert_int_equal(mf_select_platform(&m, "linux", "armel", NULL, &d, &err), 0);
	assert_int_equal(d->size, 1);
	assert_int_equal(mf_select_platform(&m, "linux", "arm64", "v8", &d, &err), 0);
	assert_int_equal(d->size, 7);
	assert_int_equal(mf_select_platform(&m, "linux", "aarch64", NULL, &d, &err), 0);
	assert_int_equal(d->size, 7);
	assert_int_equal(mf_select_platform(&m, "linux", "s390x", NULL, &d, &err), -1);
	assert_string_equal(err.msg, "no image for linux/s390x in index (available: linux/arm/v6, linux/arm/v7, "
				     "linux/amd64/v3, unknown/unknown, linux/amd64, linux/arm64/v8)");
	assert_int_equal(mf_select_platform(&m, "linux", NULL, NULL, &d, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	mf_manifest_free(&m);
	free(doc);

	/* A long list of distinct platforms is cut, not overflowed. */
	{
		char *entries = calloc(1, 200000), *p = entries;
		for (int i = 0; i < 200; i++)
			p += sprintf(p, "%s{'mediaType':'%s','digest':'sha256:%064d','size':1,'platform':{'os':'linux',"
					"'architecture':'arch%d'}}",
				     i ? "," : "", CT_OCI_M, i, i);
		doc = J("{'schemaVersion':2,'manifests':[%s]}", entries);
		parse_ok(CT_OCI_I, doc, &m);
		assert_int_equal(mf_select_platform(&m, "linux", "amd64", NULL, &d, &err), -1);
		must_contain(&err, "(available: linux/arch0, linux/arch1, ");
		must_contain(&err, ", ...)");
		mf_manifest_free(&m);
		free(doc);
		free(entries);
	}
}

static void test_platform_normalize(void **state)
{
	static const struct {
		const char *os, *arch, *variant, *want;
	} t[] = {
		{ "linux", "amd64", NULL, "linux/amd64/" },     { "linux", "x86_64", NULL, "linux/amd64/" },
		{ "linux", "x86-64", "v1", "linux/amd64/" },    { "linux", "amd64", "v2", "linux/amd64/v2" },
		{ "linux", "aarch64", NULL, "linux/arm64/v8" }, { "linux", "arm64", "", "linux/arm64/v8" },
		{ "linux", "arm64", "8", "linux/arm64/v8" },    { "linux", "arm64", "v8.0", "linux/arm64/v8" },
		{ "linux", "arm64", "9", "linux/arm64/v9" },    { "linux", "arm", NULL, "linux/arm/v7" },
		{ "linux", "arm", "7", "linux/arm/v7" },        { "linux", "arm", "6", "linux/arm/v6" },
		{ "linux", "arm", "v5", "linux/arm/v5" },       { "linux", "armhf", NULL, "linux/arm/v7" },
		{ "linux", "armel", NULL, "linux/arm/v6" },     { "linux", "i386", "x", "linux/386/" },
		{ "LINUX", "AMD64", NULL, "linux/amd64/" },     { "macos", "arm64", NULL, "darwin/arm64/v8" },
		{ "linux", "ppc64le", NULL, "linux/ppc64le/" }, { "linux", "riscv64", NULL, "linux/riscv64/" },
	};
	struct mf_platform p;
	char got[128];

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		mf_platform_normalize(t[i].os, t[i].arch, t[i].variant, &p);
		snprintf(got, sizeof got, "%s/%s/%s", p.os, p.arch, p.variant);
		assert_string_equal(got, t[i].want);
	}
	mf_platform_default(&p);
	assert_string_equal(p.os, "linux");
#if defined(__x86_64__)
	assert_string_equal(p.arch, "amd64");
	assert_string_equal(p.variant, "");
#endif
}

/* ---- refusals ---- */

static void test_schema1(void **state)
{
	static const char v1[] =
		"{\"schemaVersion\":1,\"name\":\"library/busybox\",\"tag\":\"latest\",\"architecture\":\"amd64\","
		"\"fsLayers\":[{\"blobSum\":\"" D_LAYER "\"}],\"history\":[{\"v1Compatibility\":\"{}\"}],"
		"\"signatures\":[{\"header\":{\"alg\":\"ES256\"},\"signature\":\"x\",\"protected\":\"y\"}]}";
	const char *cts[] = { NULL, "application/json", "application/vnd.docker.distribution.manifest.v1+json",
			      "application/vnd.docker.distribution.manifest.v1+prettyjws" };

	(void)state;
	for (size_t i = 0; i < sizeof cts / sizeof cts[0]; i++)
		parse_fails(cts[i], strdup(v1), CRISP_INVALID_ARGUMENT, "manifest: " SCHEMA1);
	/* The Content-Type alone is enough, whatever the body. */
	parse_fails("application/vnd.docker.distribution.manifest.v1+prettyjws", strdup(DOCKER_MANIFEST),
		    CRISP_INVALID_ARGUMENT, SCHEMA1);
	parse_fails("application/vnd.docker.distribution.manifest.v1+json; charset=utf-8", strdup("not json"),
		    CRISP_INVALID_ARGUMENT, SCHEMA1);
	/* A schema 2 document claiming a schema 1 type, or carrying its fields. */
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'application/vnd.docker.distribution.manifest.v1+json'}"),
		    CRISP_INVALID_ARGUMENT, SCHEMA1);
	parse_fails(NULL, J("{'schemaVersion':2,'config':%s,'layers':[],'fsLayers':[]}", CFG_OK),
		    CRISP_INVALID_ARGUMENT, "manifest.fsLayers: a schema 1 field in a schema 2 document");
}

static void test_duplicates(void **state)
{
	(void)state;
	parse_fails(NULL, J("{'schemaVersion':2,'schemaVersion':2,'config':%s,'layers':[]}", CFG_OK),
		    CRISP_INVALID_ARGUMENT, "duplicate object key");
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'%s','mediaType':'%s','manifests':[]}", CT_OCI_I, CT_OCI_M),
		    CRISP_INVALID_ARGUMENT, "duplicate object key");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_DIFF "','digest':'" D_LAYER
		    "','size':1}",
		    "duplicate object key");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_DIFF
		    "','size':1,'annotations':{'a':'1','a':'2'}}",
		    "duplicate object key");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Cmd':['a'],'Cmd':['b']},"
		       "'rootfs':{'type':'layers','diff_ids':[]}}"),
		     "duplicate object key");
	/* Keys a case-insensitive (Go) decoder would read as ours. */
	parse_fails(NULL, J("{'schemaVersion':2,'config':%s,'layers':[],'Layers':[%s]}", CFG_OK, LAYER_OK),
		    CRISP_INVALID_ARGUMENT, "manifest: key \"Layers\" differs only in case from \"layers\"");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_DIFF
		    "','size':1,'Digest':'" D_LAYER "'}",
		    "manifest.layers[1]: key \"Digest\" differs only in case from \"digest\"");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Cmd':['a'],'cmd':['b']},"
		       "'rootfs':{'type':'layers','diff_ids':[]}}"),
		     "config.config: key \"cmd\" differs only in case from \"Cmd\"");
	/* U+212A KELVIN SIGN folds to 'k' in Go: "Wor\u212AingDir". */
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Wor\\u212AingDir':'/'},"
		       "'rootfs':{'type':'layers','diff_ids':[]}}"),
		     "differs only in case from \"WorkingDir\"");
	/* U+017F LATIN SMALL LETTER LONG S folds to 's'. */
	config_fails(J("{'architecture':'amd64','o\\u017F':'linux','os':'linux',"
		       "'rootfs':{'type':'layers','diff_ids':[]}}"),
		     "differs only in case from \"os\"");
}

static void test_document_errors(void **state)
{
	struct mf_manifest m;
	crisp_err_t err = CRISP_ERR_INIT;
	char *big;

	(void)state;
	parse_fails(NULL, strdup(""), CRISP_INVALID_ARGUMENT, "manifest: empty document");
	parse_fails(NULL, strdup("{"), CRISP_INVALID_ARGUMENT, "manifest: invalid JSON at line 1");
	parse_fails(NULL, strdup("[]"), CRISP_INVALID_ARGUMENT, "manifest: not a JSON object");
	parse_fails(NULL, strdup("2"), CRISP_INVALID_ARGUMENT, "manifest: invalid JSON");
	parse_fails(NULL, J("{'schemaVersion':2,'manifests':[]} x"), CRISP_INVALID_ARGUMENT, "invalid JSON");
	parse_fails(NULL, J("{'schemaVersion':2,'manifests':[],'annotations':{'a':'x\\u0000y'}}"),
		    CRISP_INVALID_ARGUMENT, "invalid JSON");
	parse_fails(NULL, strdup("{\"schemaVersion\":2,\"manifests\":[],\"x\":\"\xff\"}"), CRISP_INVALID_ARGUMENT,
		    "invalid JSON");
	parse_fails(NULL, J("{'manifests':[]}"), CRISP_INVALID_ARGUMENT, "manifest.schemaVersion: missing");
	parse_fails(NULL, J("{'schemaVersion':'2','manifests':[]}"), CRISP_INVALID_ARGUMENT,
		    "manifest.schemaVersion: not an integer");
	parse_fails(NULL, J("{'schemaVersion':2.0,'manifests':[]}"), CRISP_INVALID_ARGUMENT,
		    "manifest.schemaVersion: not an integer");
	parse_fails(NULL, J("{'schemaVersion':3,'manifests':[]}"), CRISP_INVALID_ARGUMENT,
		    "manifest.schemaVersion: 3 is not supported (only 2)");
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':7,'manifests':[]}"), CRISP_INVALID_ARGUMENT,
		    "manifest.mediaType: not a string");
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'application/vnd.oci.artifact.manifest.v1+json'}"),
		    CRISP_INVALID_ARGUMENT,
		    "manifest.mediaType: unsupported media type 'application/vnd.oci.artifact.manifest.v1+json'");
	parse_fails("text/html", J("{'schemaVersion':2,'manifests':[]}"), CRISP_INVALID_ARGUMENT,
		    "manifest: unsupported media type 'text/html' (Content-Type)");
	parse_fails(NULL, J("{'schemaVersion':2}"), CRISP_INVALID_ARGUMENT,
		    "manifest: no mediaType, and its fields are those of neither an image manifest nor an index");
	parse_fails(NULL, J("{'schemaVersion':2,'manifests':[],'layers':[]}"), CRISP_INVALID_ARGUMENT,
		    "manifest: no mediaType");
	/* Type confusion. */
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'%s','config':%s,'layers':[],'manifests':[]}", CT_OCI_M,
			    CFG_OK),
		    CRISP_INVALID_ARGUMENT, "manifest.manifests: an index field in an image manifest");
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'%s','manifests':[],'layers':[]}", CT_DOCKER_L),
		    CRISP_INVALID_ARGUMENT, "index.layers: an image manifest field in an index");
	parse_fails(CT_OCI_I, J("{'schemaVersion':2,'config':%s,'layers':[]}", CFG_OK), CRISP_INVALID_ARGUMENT,
		    "index.config: an image manifest field in an index");
	parse_fails(CT_OCI_M, J("{'schemaVersion':2,'manifests':[]}"), CRISP_INVALID_ARGUMENT,
		    "manifest.manifests: an index field in an image manifest");
	parse_fails(CT_DOCKER_L, J("{'schemaVersion':2,'manifests':[]}"), CRISP_INVALID_ARGUMENT,
		    "manifest.mediaType: missing (required in Docker schema 2 documents)");
	/* Size bound: 4 MiB. */
	big = malloc(MF_MAX_MANIFEST_SIZE + 2);
	memset(big, ' ', MF_MAX_MANIFEST_SIZE + 1);
	big[MF_MAX_MANIFEST_SIZE + 1] = '\0';
	memcpy(big, "{\"schemaVersion\":2,\"manifests\":[]}", 34);
	parse_fails(NULL, big, CRISP_INVALID_ARGUMENT, "manifest: 4194305 bytes is larger than the 4 MiB limit");
	big = malloc(MF_MAX_MANIFEST_SIZE + 1);
	memset(big, ' ', MF_MAX_MANIFEST_SIZE);
	big[MF_MAX_MANIFEST_SIZE] = '\0';
	memcpy(big, "{\"schemaVersion\":2,\"manifests\":[]}", 34);
	parse_ok(NULL, big, &m);
	mf_manifest_free(&m);
	free(big);
	assert_int_equal(mf_parse(NULL, NULL, 5, &m, &err), -1);
}

static void test_manifest_errors(void **state)
{
	char *many;

	(void)state;
	/* config */
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'%s','layers':[]}", CT_OCI_M), CRISP_INVALID_ARGUMENT,
		    "manifest.config: missing");
	config_desc_fails("'x'", "manifest.config: not an object");
	config_desc_fails("{'mediaType':'application/vnd.cncf.helm.config.v1+json','digest':'" D_DIFF "','size':1}",
			  "manifest.config.mediaType: not a container image (config media type "
			  "'application/vnd.cncf.helm.config.v1+json')");
	config_desc_fails("{'mediaType':'application/vnd.oci.empty.v1+json','digest':'" D_DIFF "','size':2}",
			  "not a container image");
	config_desc_fails("{'mediaType':'" MF_MT_OCI_CONFIG "','digest':'" D_DIFF "','size':8388609}",
			  "manifest.config.size: 8388609 is larger than the 8 MiB limit");
	config_desc_fails("{'mediaType':'" MF_MT_OCI_CONFIG "','digest':'md5:abc','size':1}",
			  "manifest.config.digest: digest algorithm 'md5' is not supported (only sha256:<64 lowercase "
			  "hex> is accepted)");
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'%s','artifactType':'application/vnd.example+json',"
			    "'config':%s,'layers':[]}",
			    CT_OCI_M, CFG_OK),
		    CRISP_INVALID_ARGUMENT,
		    "manifest.artifactType: not a container image (artifact type 'application/vnd.example+json')");
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'%s','config':%s,'layers':[],'subject':"
			    "{'mediaType':'%s','digest':'sha256:1','size':1}}",
			    CT_OCI_M, CFG_OK, CT_OCI_M),
		    CRISP_INVALID_ARGUMENT, "manifest.subject.digest: not a sha256 digest");
	/* layers */
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'%s','config':%s}", CT_OCI_M, CFG_OK),
		    CRISP_INVALID_ARGUMENT, "manifest.layers: missing");
	parse_fails(NULL, J("{'schemaVersion':2,'mediaType':'%s','config':%s,'layers':{}}", CT_OCI_M, CFG_OK),
		    CRISP_INVALID_ARGUMENT, "manifest.layers: not an array");
	layer_fails("'" D_LAYER "'", "manifest.layers[1]: not an object");
	layer_fails("{'digest':'" D_LAYER "','size':1}", "manifest.layers[1].mediaType: missing");
	layer_fails("{'mediaType':'tar','digest':'" D_LAYER "','size':1}",
		    "manifest.layers[1].mediaType: 'tar' is not a valid media type");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar+bzip2','digest':'" D_LAYER "','size':1}",
		    "manifest.layers[1].mediaType: unsupported layer media type "
		    "'application/vnd.oci.image.layer.v1.tar+bzip2'");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar+gzip+encrypted','digest':'" D_LAYER
		    "','size':1}",
		    "manifest.layers[1].mediaType: encrypted layers are not supported");
	layer_fails("{'mediaType':'" MF_MT_OCI_CONFIG "','digest':'" D_LAYER "','size':1}",
		    "manifest.layers[1].mediaType: unsupported layer media type");
	{
		char mt[400], *l;
		memset(mt, 'a', 300);
		memcpy(mt, "application/", 12);
		mt[300] = '\0';
		l = J("{'mediaType':'%s','digest':'%s','size':1}", mt, D_LAYER);
		layer_fails(l, "manifest.layers[1].mediaType: longer than 255 bytes");
		free(l);
	}
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','size':1}", "manifest.layers[1].digest: missing");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':7,'size':1}",
		    "manifest.layers[1].digest: not a string");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'sha512:"
		    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e',"
		    "'size':1}",
		    "manifest.layers[1].digest: digest algorithm 'sha512' is not supported (only sha256:<64 lowercase "
		    "hex> is accepted)");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':"
		    "'sha256:0EBF64E77AFD60F2356C063435F00AD92ED92BADD3FBC4FB7053BC3F64EFFA16','size':1}",
		    "manifest.layers[1].digest: not a sha256 digest (only sha256:<64 lowercase hex> is accepted)");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'sha256:abc','size':1}",
		    "manifest.layers[1].digest: not a sha256 digest");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER "'}",
		    "manifest.layers[1].size: missing");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER "','size':-1}",
		    "manifest.layers[1].size: negative");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER "','size':'1'}",
		    "manifest.layers[1].size: not an integer");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER "','size':1.5}",
		    "manifest.layers[1].size: not an integer");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER
		    "','size':68719476737}",
		    "manifest.layers[1].size: 68719476737 is larger than the 64 GiB limit");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER
		    "','size':99999999999999999999999}",
		    "invalid JSON"); /* jansson: too big integer */
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER
		    "','size':1,'urls':['https://example.com/layer']}",
		    "manifest.layers[1].urls: blobs served from external URLs are not supported");
	layer_fails("{'mediaType':'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip','digest':'" D_LAYER
		    "','size':1,'urls':['https://mcr.microsoft.com/x']}",
		    "manifest.layers[1].urls: blobs served from external URLs are not supported (crisp fetches every "
		    "blob from the registry by digest)");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER "','size':1,'urls':'x'}",
		    "manifest.layers[1].urls: not an array");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER
		    "','size':1,'annotations':[]}",
		    "manifest.layers[1].annotations: not an object");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER
		    "','size':1,'annotations':{'k':1}}",
		    "manifest.layers[1].annotations[\"k\"]: not a string");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER
		    "','size':1,'annotations':{'':'v'}}",
		    "manifest.layers[1].annotations: empty key");
	layer_fails("{'mediaType':'application/vnd.oci.image.layer.v1.tar','digest':'" D_LAYER
		    "','size':1,'data':5}",
		    "manifest.layers[1].data: not a string");
	/* Manifest annotations bound (256) and the layer count bound. */
	{
		char *ann = calloc(1, 20000), *p = ann;
		for (int i = 0; i < MF_MAX_ANNOTATIONS + 1; i++)
			p += sprintf(p, "%s'k%d':'v'", i ? "," : "", i);
		parse_fails(NULL, J("{'schemaVersion':2,'config':%s,'layers':[],'annotations':{%s}}", CFG_OK, ann),
			    CRISP_INVALID_ARGUMENT, "manifest.annotations: 257 entries is more than the limit of 256");
		free(ann);
	}
	many = calloc(1, (MF_MAX_LAYERS + 1) * 200);
	for (int i = 0; i < MF_MAX_LAYERS; i++)
		strcat(strcat(many, i ? "," : ""), LAYER_OK);
	{
		struct mf_manifest m;
		char *doc = J("{'schemaVersion':2,'config':%s,'layers':[%s]}", CFG_OK, many);
		parse_ok(CT_OCI_M, doc, &m);
		assert_int_equal(m.nlayers, MF_MAX_LAYERS);
		mf_manifest_free(&m);
		free(doc);
	}
	strcat(strcat(many, ","), LAYER_OK);
	parse_fails(CT_OCI_M, J("{'schemaVersion':2,'config':%s,'layers':[%s]}", CFG_OK, many), CRISP_INVALID_ARGUMENT,
		    "manifest.layers: 257 entries is more than the limit of 256");
	free(many);
}

static void test_layer_types(void **state)
{
	static const struct {
		const char *mt;
		enum mf_compression comp;
		bool foreign;
	} t[] = {
		{ "application/vnd.oci.image.layer.v1.tar", MF_COMP_NONE, false },
		{ "application/vnd.oci.image.layer.v1.tar+gzip", MF_COMP_GZIP, false },
		{ "application/vnd.oci.image.layer.v1.tar+zstd", MF_COMP_ZSTD, false },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar", MF_COMP_NONE, true },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", MF_COMP_GZIP, true },
		{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", MF_COMP_ZSTD, true },
		{ "application/vnd.docker.image.rootfs.diff.tar.gzip", MF_COMP_GZIP, false },
		{ "application/vnd.docker.image.rootfs.diff.tar", MF_COMP_NONE, false },
		{ "application/vnd.docker.image.rootfs.diff.tar.zstd", MF_COMP_ZSTD, false },
		{ "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", MF_COMP_GZIP, true },
		{ "application/vnd.docker.image.rootfs.foreign.diff.tar", MF_COMP_NONE, true },
	};
	struct mf_manifest m;

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		/* Also: urls: [] is harmless, and the 64 GiB bound is inclusive. */
		char *doc = J("{'schemaVersion':2,'mediaType':'%s','config':{'mediaType':'%s','digest':'%s','size':1},"
			      "'layers':[{'mediaType':'%s','digest':'%s','size':68719476736,'urls':[]}]}",
			      CT_DOCKER_M, MF_MT_DOCKER_CONFIG, D_DIFF, t[i].mt, D_LAYER);
		parse_ok(NULL, doc, &m);
		assert_int_equal(m.layers[0].comp, t[i].comp);
		assert_int_equal(m.layers[0].foreign, t[i].foreign);
		assert_int_equal(m.layers[0].size, 68719476736ull);
		mf_manifest_free(&m);
		free(doc);
	}
}

static void test_index_errors(void **state)
{
	char *many;

	(void)state;
	parse_fails(CT_OCI_I, J("{'schemaVersion':2,'mediaType':'%s'}", CT_OCI_I), CRISP_INVALID_ARGUMENT,
		    "index.manifests: missing");
	parse_fails(CT_OCI_I, J("{'schemaVersion':2,'mediaType':'%s','manifests':{}}", CT_OCI_I),
		    CRISP_INVALID_ARGUMENT, "index.manifests: not an array");
	entry_fails("{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER "','size':4194305}",
		    "index.manifests[0].size: 4194305 is larger than the 4 MiB limit");
	entry_fails("{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER "','size':1,'platform':{'os':'linux'}}",
		    "index.manifests[0].platform.architecture: missing");
	entry_fails("{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER "','size':1,'platform':{'architecture':'amd64'}}",
		    "index.manifests[0].platform.os: missing");
	entry_fails("{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER
		    "','size':1,'platform':{'os':'linux','architecture':'amd 64'}}",
		    "index.manifests[0].platform.architecture: 'amd 64' is not a valid platform name");
	entry_fails("{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER
		    "','size':1,'platform':{'os':'linux','architecture':'amd64','variant':'"
		    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv'}}",
		    "index.manifests[0].platform.variant: 'vvvvvvvv");
	entry_fails("{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER
		    "','size':1,'platform':{'os':'linux','architecture':'amd64','os.features':'x'}}",
		    "index.manifests[0].platform.os.features: not an array");
	entry_fails("{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER "','size':1,'platform':'linux/amd64'}",
		    "index.manifests[0].platform: not an object");
	entry_fails("{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER "','size':1,'urls':['http://x']}",
		    "index.manifests[0].urls: blobs served from external URLs are not supported");
	entry_fails("{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER
		    "','size':1,'platform':{'os':'linux','Architecture':'amd64','architecture':'amd64'}}",
		    "index.manifests[0].platform: key \"Architecture\" differs only in case from \"architecture\"");
	many = calloc(1, (MF_MAX_INDEX_ENTRIES + 1) * 200);
	for (int i = 0; i <= MF_MAX_INDEX_ENTRIES; i++)
		strcat(strcat(many, i ? "," : ""), "{'mediaType':'" CT_OCI_M "','digest':'" D_LAYER "','size':1}");
	parse_fails(CT_OCI_I, J("{'schemaVersion':2,'manifests':[%s]}", many), CRISP_INVALID_ARGUMENT,
		    "index.manifests: 1025 entries is more than the limit of 1024");
	free(many);
}

/* ---- image config ---- */

static void test_config(void **state)
{
	struct mf_config c;
	struct mf_manifest m;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	assert_int_equal(mf_config_parse(B(CONFIG_AMD64), strlen(CONFIG_AMD64), &c, &err), 0);
	assert_string_equal(c.platform.arch, "amd64");
	assert_string_equal(c.platform.os, "linux");
	assert_string_equal(c.platform.variant, "");
	assert_string_equal(c.user, "1000:1000");
	assert_int_equal(c.env.n, 1);
	assert_string_equal(c.env.v[0], "PATH=/bin");
	assert_null(c.env.v[1]);
	assert_null(c.entrypoint.v);
	assert_int_equal(c.cmd.n, 1);
	assert_string_equal(c.cmd.v[0], "/bin/sh");
	assert_string_equal(c.working_dir, "/");
	assert_int_equal(c.nlabels, 1);
	assert_string_equal(c.labels[0].key, "org.example.a");
	assert_string_equal(c.labels[0].value, "b");
	assert_int_equal(c.exposed_ports.n, 1);
	assert_string_equal(c.exposed_ports.v[0], "80/tcp");
	assert_null(c.volumes.v);
	assert_null(c.stop_signal);
	assert_int_equal(c.ndiff_ids, 1);
	assert_string_equal(c.diff_ids[0], D_DIFF);

	/* Against its manifests. */
	parse_ok(NULL, OCI_MANIFEST, &m);
	assert_int_equal(mf_verify_blob(&m.config, B(CONFIG_AMD64), strlen(CONFIG_AMD64), &err), 0);
	assert_int_equal(mf_verify_blob(&m.config, B(CONFIG_ARM64), strlen(CONFIG_ARM64), &err), -1);
	assert_int_equal(err.code, CRISP_DATA_LOSS);
	assert_int_equal(mf_config_check_layers(&c, &m, &err), 0);
	mf_manifest_free(&m);
	parse_ok(NULL, OCI_MANIFEST_NOLAYERS, &m);
	assert_int_equal(mf_config_check_layers(&c, &m, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_string_equal(err.msg, "config.rootfs.diff_ids: 1 entries, but the manifest has 0 layers");
	mf_manifest_free(&m);
	parse_ok(NULL, OCI_INDEX, &m);
	assert_int_equal(mf_config_check_layers(&c, &m, &err), -1);
	mf_manifest_free(&m);

	assert_int_equal(mf_config_check_platform(&c, "linux", "amd64", NULL, &err), 0);
	assert_int_equal(mf_config_check_platform(&c, "linux", "x86_64", NULL, &err), 0);
	assert_int_equal(mf_config_check_platform(&c, "linux", "arm64", NULL, &err), -1);
	assert_string_equal(err.msg, "config: image is for linux/amd64, not linux/arm64/v8");
	mf_config_free(&c);
	assert_null(c.user);

	assert_int_equal(mf_config_parse(B(CONFIG_ARM64), strlen(CONFIG_ARM64), &c, &err), 0);
	assert_int_equal(mf_config_check_platform(&c, "linux", "arm64", "v8", &err), 0);
	assert_int_equal(mf_config_check_platform(&c, "linux", "aarch64", NULL, &err), 0);
	assert_int_equal(mf_config_check_platform(&c, "linux", "amd64", NULL, &err), -1);
	mf_config_free(&c);

	/* Docker-style nulls, explicit empty Entrypoint, Volumes, StopSignal, variant. */
	{
		char *doc = J("{'architecture':'arm','variant':'v6','os':'linux','config':{'Hostname':'','User':'',"
			      "'Env':null,'Entrypoint':[],'Cmd':null,'Volumes':{'/data':{},'/var/log':null},"
			      "'StopSignal':'SIGQUIT','Labels':null,'OnBuild':null,'ExposedPorts':null},"
			      "'rootfs':{'type':'layers','diff_ids':['%s','%s']},'container_config':{'Cmd':['x']}}",
			      D_DIFF, D_LAYER);
		assert_int_equal(mf_config_parse(B(doc), strlen(doc), &c, &err), 0);
		assert_string_equal(c.user, "");
		assert_null(c.env.v);
		assert_non_null(c.entrypoint.v);
		assert_int_equal(c.entrypoint.n, 0);
		assert_null(c.entrypoint.v[0]);
		assert_null(c.cmd.v);
		assert_int_equal(c.volumes.n, 2);
		assert_string_equal(c.stop_signal, "SIGQUIT");
		assert_int_equal(c.ndiff_ids, 2);
		assert_int_equal(mf_config_check_platform(&c, "linux", "arm", "v6", &err), 0);
		assert_int_equal(mf_config_check_platform(&c, "linux", "arm", NULL, &err), -1);
		must_contain(&err, "image is for linux/arm/v6, not linux/arm/v7");
		mf_config_free(&c);
		free(doc);
	}
	/* No config object at all is allowed. */
	{
		char *doc = J("{'architecture':'amd64','os':'linux','rootfs':{'type':'layers','diff_ids':[]}}");
		assert_int_equal(mf_config_parse(B(doc), strlen(doc), &c, &err), 0);
		assert_null(c.user);
		assert_int_equal(c.ndiff_ids, 0);
		mf_config_free(&c);
		free(doc);
	}
}

#define ROOTFS "'rootfs':{'type':'layers','diff_ids':[]}"

static void test_config_errors(void **state)
{
	char *big, *many;
	struct mf_config c;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	config_fails(strdup(""), "config: empty document");
	config_fails(strdup("{"), "config: invalid JSON");
	config_fails(strdup("[]"), "config: not a JSON object");
	config_fails(J("{'os':'linux'," ROOTFS "}"), "config.architecture: missing");
	config_fails(J("{'architecture':'amd64'," ROOTFS "}"), "config.os: missing");
	config_fails(J("{'architecture':1,'os':'linux'," ROOTFS "}"), "config.architecture: not a string");
	config_fails(J("{'architecture':'amd64/x','os':'linux'," ROOTFS "}"),
		     "config.architecture: 'amd64/x' is not a valid platform name");
	config_fails(J("{'architecture':'amd64','os':'linux'}"), "config.rootfs: missing");
	config_fails(J("{'architecture':'amd64','os':'linux','rootfs':[]}"), "config.rootfs: not an object");
	config_fails(J("{'architecture':'amd64','os':'linux','rootfs':{'diff_ids':[]}}"), "config.rootfs.type: missing");
	config_fails(J("{'architecture':'amd64','os':'linux','rootfs':{'type':'layer','diff_ids':[]}}"),
		     "config.rootfs.type: 'layer' is not supported (only \"layers\")");
	config_fails(J("{'architecture':'amd64','os':'linux','rootfs':{'type':'layers'}}"),
		     "config.rootfs.diff_ids: missing");
	config_fails(J("{'architecture':'amd64','os':'linux','rootfs':{'type':'layers','diff_ids':{}}}"),
		     "config.rootfs.diff_ids: not an array");
	config_fails(J("{'architecture':'amd64','os':'linux','rootfs':{'type':'layers','diff_ids':['%s','sha256:00']}}",
		       D_DIFF),
		     "config.rootfs.diff_ids[1]: not a sha256 digest");
	config_fails(J("{'architecture':'amd64','os':'linux','rootfs':{'type':'layers','diff_ids':['sha384:00']}}"),
		     "config.rootfs.diff_ids[0]: digest algorithm 'sha384' is not supported");
	config_fails(J("{'architecture':'amd64','os':'linux','config':[]," ROOTFS "}"), "config.config: not an object");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'User':5}," ROOTFS "}"),
		     "config.config.User: not a string");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Env':['A=1','FOO']}," ROOTFS "}"),
		     "config.config.Env[1]: 'FOO' is not KEY=value");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Env':['=x']}," ROOTFS "}"),
		     "config.config.Env[0]: '=x' is not KEY=value");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Env':'A=1'}," ROOTFS "}"),
		     "config.config.Env: not an array");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Cmd':'/bin/sh'}," ROOTFS "}"),
		     "config.config.Cmd: not an array");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Entrypoint':['/bin/sh',1]}," ROOTFS "}"),
		     "config.config.Entrypoint[1]: not a string");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'WorkingDir':[]}," ROOTFS "}"),
		     "config.config.WorkingDir: not a string");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Labels':{'a':1}}," ROOTFS "}"),
		     "config.config.Labels[\"a\"]: not a string");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'ExposedPorts':['80/tcp']}," ROOTFS "}"),
		     "config.config.ExposedPorts: not an object");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'ExposedPorts':{'80/tcp':1}}," ROOTFS "}"),
		     "config.config.ExposedPorts[\"80/tcp\"]: not an object");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Volumes':{'':{}}}," ROOTFS "}"),
		     "config.config.Volumes[\"\"]: key is empty");
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'StopSignal':'SIGSIGSIGSIGSIGSIGSIGSIGSIGSIGSIGSIG'}," ROOTFS "}"),
		     "config.config.StopSignal: longer than 32 bytes");
	/* Bounded counts. */
	many = calloc(1, (MF_MAX_ENV + 1) * 16);
	for (int i = 0; i <= MF_MAX_ENV; i++)
		sprintf(many + strlen(many), "%s'E%d=1'", i ? "," : "", i);
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Env':[%s]}," ROOTFS "}", many),
		     "config.config.Env: 1025 entries is more than the limit of 1024");
	free(many);
	many = calloc(1, (MF_MAX_LAYERS + 1) * 80);
	for (int i = 0; i <= MF_MAX_LAYERS; i++)
		sprintf(many + strlen(many), "%s'%s'", i ? "," : "", D_DIFF);
	config_fails(J("{'architecture':'amd64','os':'linux','rootfs':{'type':'layers','diff_ids':[%s]}}", many),
		     "config.rootfs.diff_ids: 257 entries is more than the limit of 256");
	free(many);
	/* An argument longer than the kernel takes. */
	big = malloc(MF_MAX_ARG_LEN + 10);
	memset(big, 'x', MF_MAX_ARG_LEN + 1);
	big[MF_MAX_ARG_LEN + 1] = '\0';
	config_fails(J("{'architecture':'amd64','os':'linux','config':{'Cmd':['%s']}," ROOTFS "}", big),
		     "config.config.Cmd[0]: longer than 131072 bytes");
	free(big);
	/* 8 MiB bound. */
	big = malloc(MF_MAX_CONFIG_SIZE + 2);
	memset(big, ' ', MF_MAX_CONFIG_SIZE + 1);
	big[MF_MAX_CONFIG_SIZE + 1] = '\0';
	config_fails(big, "config: 8388609 bytes is larger than the 8 MiB limit");
	assert_int_equal(mf_config_parse(NULL, 3, &c, &err), -1);
}

/* ---- deterministic mutation: every real document, every byte, a few values ---- */

static void test_mutations(void **state)
{
	static const struct {
		const char *doc, *ct;
	} docs[] = {
		{ OCI_MANIFEST, CT_OCI_M }, { OCI_MANIFEST_ZSTD, NULL }, { OCI_INDEX, CT_OCI_I },
		{ LAYOUT_INDEX, NULL },     { DOCKER_MANIFEST, CT_DOCKER_M }, { DOCKER_LIST, CT_DOCKER_L },
		{ CONFIG_AMD64, "config" }, { CONFIG_ARM64, "config" },
	};
	static const uint8_t vals[] = { 0, '"', '{', '}', '[', ']', ',', ':', '1', '-', 'A', '\\', 0x80, 0xff };
	size_t parsed = 0, refused = 0;

	(void)state;
	for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
		size_t len = strlen(docs[d].doc);
		uint8_t *buf = malloc(len);
		for (size_t i = 0; i < len; i++) {
			for (size_t v = 0; v < sizeof vals; v++) {
				crisp_err_t err = CRISP_ERR_INIT;
				int r;
				memcpy(buf, docs[d].doc, len);
				buf[i] = vals[v];
				if (docs[d].ct != NULL && strcmp(docs[d].ct, "config") == 0) {
					struct mf_config c;
					r = mf_config_parse(buf, len, &c, &err);
					if (r == 0)
						assert_int_equal(c.ndiff_ids <= MF_MAX_LAYERS, 1);
					mf_config_free(&c);
				} else {
					struct mf_manifest m;
					r = mf_parse(docs[d].ct, buf, len, &m, &err);
					if (r == 0) {
						assert_true(mf_valid_digest(m.digest));
						for (size_t k = 0; k < m.nlayers; k++)
							assert_true(mf_valid_digest(m.layers[k].digest));
						for (size_t k = 0; k < m.nmanifests; k++)
							assert_true(mf_valid_digest(m.manifests[k].digest));
					}
					mf_manifest_free(&m);
				}
				if (r == 0) {
					parsed++;
				} else {
					refused++;
					assert_int_not_equal(err.code, CRISP_OK);
					assert_true(err.msg[0] != '\0');
				}
			}
		}
		free(buf);
	}
	assert_true(parsed > 0);
	assert_true(refused > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_oci_manifest),
		cmocka_unit_test(test_docker_manifest),
		cmocka_unit_test(test_oci_index),
		cmocka_unit_test(test_docker_list),
		cmocka_unit_test(test_layout_index),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_platform_selection),
		cmocka_unit_test(test_platform_normalize),
		cmocka_unit_test(test_schema1),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_document_errors),
		cmocka_unit_test(test_manifest_errors),
		cmocka_unit_test(test_layer_types),
		cmocka_unit_test(test_index_errors),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
