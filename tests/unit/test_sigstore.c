/* sigstore: attachment manifests, and verification with real keys and
 * signatures made here by openssl (ECDSA P-256, Ed25519), refusals of
 * other key types, wrong key, flipped byte, wrong digest, wrong identity.
 * Exits 77 (skip) when openssl is missing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "imaged/sigstore.h"
#include "imaged/sigverify.h"
#include "policy/sigpolicy.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define MD "sha256:" D64
#define REF "registry.example.com/ns/app:v1"

static char T[64];

struct buf {
	uint8_t *p;
	size_t n;
};

static const char FIXTURE[] =
	"set -eu\n"
	"cd $1\n"
	"openssl ecparam -genkey -name prime256v1 -noout -out a.key 2>/dev/null\n"
	"openssl ec -in a.key -pubout -out a.pub 2>/dev/null\n"
	"openssl ecparam -genkey -name prime256v1 -noout -out b.key 2>/dev/null\n"
	"openssl ec -in b.key -pubout -out b.pub 2>/dev/null\n"
	"openssl genpkey -algorithm ed25519 -out e.key 2>/dev/null\n"
	"openssl pkey -in e.key -pubout -out e.pub 2>/dev/null\n"
	"openssl ecparam -genkey -name secp384r1 -noout -out p384.key 2>/dev/null\n"
	"openssl ec -in p384.key -pubout -out p384.pub 2>/dev/null\n"
	"openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out rsa.key 2>/dev/null\n"
	"openssl pkey -in rsa.key -pubout -out rsa.pub 2>/dev/null\n"
	"for p in good otherdigest otherref nullopt; do\n"
	"  openssl dgst -sha256 -sign a.key -out $p.sig.a $p.json\n"
	"  openssl pkeyutl -sign -inkey e.key -rawin -in $p.json -out $p.sig.e\n"
	"done\n";

static void write_str(const char *name, const char *s)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", T, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

static struct buf slurp(const char *name)
{
	char path[256];
	struct buf b = { 0 };
	snprintf(path, sizeof path, "%s/%s", T, name);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return b;
	b.p = malloc(1 << 16);
	b.n = fread(b.p, 1, 1 << 16, f);
	fclose(f);
	return b;
}

static const char *payload_json(const char *digest, const char *ref, const char *opt)
{
	static char buf[1024];
	snprintf(buf, sizeof buf,
		 "{\"critical\":{\"identity\":{\"docker-reference\":\"%s\"},\"image\":{\"docker-manifest-digest\":"
		 "\"%s\"},\"type\":\"cosign container image signature\"},\"optional\":%s}",
		 ref, digest, opt);
	return buf;
}

static int setup(void **state)
{
	(void)state;
	if (system("command -v openssl >/dev/null 2>&1") != 0) {
		print_message("openssl not found: skipping\n");
		exit(77);
	}
	snprintf(T, sizeof T, "/tmp/crisp-sigstore-XXXXXX");
	if (mkdtemp(T) == NULL)
		return -1;
	write_str("good.json", payload_json(MD, REF, "{\"creator\":\"cosign\",\"timestamp\":1700000000}"));
	write_str("otherdigest.json", payload_json("sha256:" "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
						    REF, "{}"));
	write_str("otherref.json", payload_json(MD, "registry.example.com/other/app:v1", "{}"));
	write_str("nullopt.json", payload_json(MD, REF, "null"));
	write_str("fixture.sh", FIXTURE);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "sh %s/fixture.sh %s", T, T);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", T);
	return system(cmd) == 0 ? 0 : -1;
}

/* A policy requiring sigstoreSigned with the given key field JSON. */
static struct sp_policy *policy(const char *keyfield, const char *identity)
{
	char json[4096];
	struct sp_policy *p = NULL;
	crisp_err_t err = CRISP_ERR_INIT;
	snprintf(json, sizeof json,
		 "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"registry.example.com\":"
		 "[{\"type\":\"sigstoreSigned\",%s%s}]}}}",
		 keyfield, identity ? identity : "");
	if (sp_policy_parse(json, strlen(json), &p, &err) != 0)
		fail_msg("policy: %s", err.msg);
	return p;
}

static struct sp_policy *policy_keypath(const char *key)
{
	char f[256];
	snprintf(f, sizeof f, "\"keyPath\":\"%s/%s\"", T, key);
	return policy(f, NULL);
}

static const struct sp_requirement *req_of(const struct sp_policy *p)
{
	return &p->scopes[0].reqs.v[0];
}

/* Attachment manifest with one layer per payload, signatures base64. */
static char *manifest(size_t n, const struct buf *payloads, const struct buf *sigs)
{
	size_t cap = 65536;
	char *m = malloc(cap);
	size_t o = (size_t)snprintf(m, cap,
				    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
				    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":2,"
				    "\"digest\":\"sha256:" D64 "\"},\"layers\":[");
	for (size_t i = 0; i < n; i++) {
		uint8_t h[32];
		char hex[65], b64[1024];
		crypto_hash_sha256(h, payloads[i].p, payloads[i].n);
		sodium_bin2hex(hex, sizeof hex, h, sizeof h);
		sodium_bin2base64(b64, sizeof b64, sigs[i].p, sigs[i].n, sodium_base64_VARIANT_ORIGINAL);
		o += (size_t)snprintf(m + o, cap - o,
				      "%s{\"mediaType\":\"" SIGSTORE_MEDIA_TYPE "\",\"size\":%zu,\"digest\":\"sha256:%s\","
				      "\"annotations\":{\"" SIGSTORE_SIG_ANNOTATION "\":\"%s\"}}",
				      i ? "," : "", payloads[i].n, hex, b64);
	}
	snprintf(m + o, cap - o, "]}");
	return m;
}

/* Parse a manifest built from (payload, sig) pairs, then verify. */
static int run(const struct sp_requirement *req, const char *image_ref, const char *pname, const char *sname,
	       struct sigstore_verified *out, crisp_err_t *err)
{
	struct buf pl = slurp(pname), sg = slurp(sname);
	struct sigstore_attachment a;
	struct sigstore_sig s;
	assert_non_null(pl.p);
	assert_non_null(sg.p);
	char *m = manifest(1, &pl, &sg);
	crisp_err_t perr = CRISP_ERR_INIT;
	if (sigstore_attachment_parse((const uint8_t *)m, strlen(m), &a, &perr) != 0)
		fail_msg("attachment: %s", perr.msg);
	assert_int_equal(a.n, 1);
	s = (struct sigstore_sig){ .layer = &a.v[0], .payload = pl.p, .payload_len = pl.n };
	int rc = sig_verify_sigstore(req, image_ref, MD, &s, 1, out, err);
	sigstore_attachment_free(&a);
	free(m);
	free(pl.p);
	free(sg.p);
	return rc;
}

static void test_ecdsa(void **state)
{
	(void)state;
	struct sp_policy *p = policy_keypath("a.pub");
	struct sigstore_verified v;
	crisp_err_t err = CRISP_ERR_INIT;

	if (run(req_of(p), REF, "good.json", "good.sig.a", &v, &err) != 0)
		fail_msg("refused: %s", err.msg);
	assert_string_equal(v.key_type, "ecdsa-p256");
	assert_int_equal(strlen(v.key_fingerprint), 64);
	assert_string_equal(v.payload.manifest_digest, MD);
	assert_string_equal(v.payload.docker_reference, REF);
	assert_true(v.payload.has_timestamp);
	/* fingerprint: sha256 of the DER SubjectPublicKeyInfo */
	char cmd[512], fpr[80] = "";
	snprintf(cmd, sizeof cmd, "openssl pkey -pubin -in %s/a.pub -outform DER | sha256sum | cut -c1-64", T);
	FILE *f = popen(cmd, "r");
	assert_non_null(fgets(fpr, sizeof fpr, f));
	pclose(f);
	fpr[64] = '\0';
	assert_string_equal(v.key_fingerprint, fpr);

	/* "optional": null as cosign writes it */
	assert_int_equal(run(req_of(p), REF, "nullopt.json", "nullopt.sig.a", &v, &err), 0);

	/* wrong digest, wrong identity: verify cryptographically, then refused */
	assert_int_equal(run(req_of(p), REF, "otherdigest.json", "otherdigest.sig.a", &v, &err), -1);
	assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
	assert_non_null(strstr(err.msg, "signature is for digest sha256:1123"));
	assert_int_equal(run(req_of(p), REF, "otherref.json", "otherref.sig.a", &v, &err), -1);
	assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
	assert_non_null(strstr(err.msg, "does not match"));

	/* the signature of another payload */
	assert_int_equal(run(req_of(p), REF, "good.json", "otherref.sig.a", &v, &err), -1);
	assert_non_null(strstr(err.msg, "does not verify"));
	/* an ed25519 signature against an ECDSA key */
	assert_int_equal(run(req_of(p), REF, "good.json", "good.sig.e", &v, &err), -1);
	assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
	sp_policy_free(p);

	/* wrong key */
	p = policy_keypath("b.pub");
	assert_int_equal(run(req_of(p), REF, "good.json", "good.sig.a", &v, &err), -1);
	assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
	assert_non_null(strstr(err.msg, "does not verify with any key"));
	sp_policy_free(p);

	/* keyPaths: the second key verifies */
	char f2[512];
	snprintf(f2, sizeof f2, "\"keyPaths\":[\"%s/b.pub\",\"%s/a.pub\"]", T, T);
	p = policy(f2, NULL);
	assert_int_equal(run(req_of(p), REF, "good.json", "good.sig.a", &v, &err), 0);
	sp_policy_free(p);

	/* matchRepository accepts the other tag */
	p = policy(f2, ",\"signedIdentity\":{\"type\":\"matchRepository\"}");
	assert_int_equal(run(req_of(p), "registry.example.com/ns/app:v2", "good.json", "good.sig.a", &v, &err), 0);
	sp_policy_free(p);
	p = policy(f2, NULL);
	assert_int_equal(run(req_of(p), "registry.example.com/ns/app:v2", "good.json", "good.sig.a", &v, &err), -1);
	sp_policy_free(p);
}

static void test_ed25519_and_keydata(void **state)
{
	(void)state;
	struct buf pub = slurp("e.pub");
	char b64[1024], f[1200];
	struct sigstore_verified v;
	crisp_err_t err = CRISP_ERR_INIT;
	sodium_bin2base64(b64, sizeof b64, pub.p, pub.n, sodium_base64_VARIANT_ORIGINAL);
	snprintf(f, sizeof f, "\"keyData\":\"%s\"", b64);
	struct sp_policy *p = policy(f, NULL);
	if (run(req_of(p), REF, "good.json", "good.sig.e", &v, &err) != 0)
		fail_msg("refused: %s", err.msg);
	assert_string_equal(v.key_type, "ed25519");
	assert_int_equal(run(req_of(p), REF, "good.json", "good.sig.a", &v, &err), -1);
	assert_int_equal(run(req_of(p), REF, "otherdigest.json", "otherdigest.sig.e", &v, &err), -1);
	sp_policy_free(p);
	free(pub.p);
}

static void test_flipped(void **state)
{
	(void)state;
	struct sp_policy *p = policy_keypath("a.pub");
	const struct sp_requirement *req = req_of(p);
	struct buf pl = slurp("good.json"), sg = slurp("good.sig.a");
	struct sigstore_verified v;
	crisp_err_t err = CRISP_ERR_INIT;

	/* every byte of the signature and of the payload, flipped in turn:
	 * never accepted (the payload through the raw primitive, so the layer
	 * digest check does not hide the signature check) */
	struct buf pem = slurp("a.pub");
	assert_int_equal(sigstore_verify_raw(pem.p, pem.n, pl.p, pl.n, sg.p, sg.n, NULL, NULL, &err), 0);
	for (size_t i = 0; i < sg.n; i++) {
		sg.p[i] ^= 0x01;
		assert_int_equal(sigstore_verify_raw(pem.p, pem.n, pl.p, pl.n, sg.p, sg.n, NULL, NULL, &err), -1);
		sg.p[i] ^= 0x01;
	}
	for (size_t i = 0; i < pl.n; i += 7) {
		pl.p[i] ^= 0x20;
		assert_int_equal(sigstore_verify_raw(pem.p, pem.n, pl.p, pl.n, sg.p, sg.n, NULL, NULL, &err), -1);
		assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
		pl.p[i] ^= 0x20;
	}
	/* trailing garbage after the DER signature */
	uint8_t longer[256];
	memcpy(longer, sg.p, sg.n);
	longer[sg.n] = 0;
	assert_int_equal(sigstore_verify_raw(pem.p, pem.n, pl.p, pl.n, longer, sg.n + 1, NULL, NULL, &err), -1);

	/* payload changed after the manifest was made: layer digest check */
	char *m = manifest(1, &pl, &sg);
	struct sigstore_attachment a;
	assert_int_equal(sigstore_attachment_parse((const uint8_t *)m, strlen(m), &a, &err), 0);
	pl.p[10] ^= 0x01;
	struct sigstore_sig s = { .layer = &a.v[0], .payload = pl.p, .payload_len = pl.n };
	assert_int_equal(sig_verify_sigstore(req, REF, MD, &s, 1, &v, &err), -1);
	assert_non_null(strstr(err.msg, "does not match layer digest"));
	s.payload_len--;
	assert_int_equal(sig_verify_sigstore(req, REF, MD, &s, 1, &v, &err), -1);
	assert_non_null(strstr(err.msg, "the layer says"));
	s.payload = NULL;
	s.fetch_error = "blob unknown";
	assert_int_equal(sig_verify_sigstore(req, REF, MD, &s, 1, &v, &err), -1);
	assert_non_null(strstr(err.msg, "blob unknown"));
	/* no signatures at all */
	assert_int_equal(sig_verify_sigstore(req, REF, MD, NULL, 0, &v, &err), -1);
	assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
	assert_non_null(strstr(err.msg, "no signature exists"));
	sigstore_attachment_free(&a);
	free(m);
	free(pl.p);
	free(sg.p);
	free(pem.p);
	sp_policy_free(p);
}

static void test_bad_keys(void **state)
{
	(void)state;
	struct sigstore_verified v;
	crisp_err_t err = CRISP_ERR_INIT;
	static const char *const bad[] = { "rsa.pub", "p384.pub", "a.key", "missing.pub" };
	static const char *const why[] = { "rsaEncryption public keys are not supported", "curve secp384r1",
					   "not a PEM \"PUBLIC KEY\"", "opening key file" };
	for (size_t i = 0; i < 4; i++) {
		struct sp_policy *p = policy_keypath(bad[i]);
		assert_int_equal(run(req_of(p), REF, "good.json", "good.sig.a", &v, &err), -1);
		assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
		if (strstr(err.msg, why[i]) == NULL)
			fail_msg("%s: \"%s\" lacks \"%s\"", bad[i], err.msg, why[i]);
		sp_policy_free(p);
	}
	/* two keys in one keyData */
	struct buf a = slurp("a.pub"), b = slurp("b.pub");
	uint8_t two[2048];
	memcpy(two, a.p, a.n);
	memcpy(two + a.n, b.p, b.n);
	struct buf pl = slurp("good.json"), sg = slurp("good.sig.a");
	assert_int_equal(sigstore_verify_raw(two, a.n + b.n, pl.p, pl.n, sg.p, sg.n, NULL, NULL, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, "one key per"));
	free(a.p);
	free(b.p);
	free(pl.p);
	free(sg.p);

	/* fulcio: refused as unsupported */
	struct sp_policy *p = policy("\"fulcio\":{\"caPath\":\"/x/ca.pem\",\"oidcIssuer\":\"https://o.example.com\","
				     "\"subjectEmail\":\"a@example.com\"},\"rekorPublicKeyPath\":\"/x/rekor.pub\"",
				     NULL);
	assert_int_equal(run(req_of(p), REF, "good.json", "good.sig.a", &v, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, "fulcio/rekor verification is not supported on this node"));
	sp_policy_free(p);
	char f[512];
	snprintf(f, sizeof f, "\"keyPath\":\"%s/a.pub\",\"rekorPublicKeyPath\":\"/x/rekor.pub\"", T);
	p = policy(f, NULL);
	assert_int_equal(run(req_of(p), REF, "good.json", "good.sig.a", &v, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	sp_policy_free(p);
}

static void bad_manifest(const char *m, const char *needle)
{
	struct sigstore_attachment a;
	crisp_err_t err = CRISP_ERR_INIT;
	if (sigstore_attachment_parse((const uint8_t *)m, strlen(m), &a, &err) == 0)
		fail_msg("accepted %s", m);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	if (strstr(err.msg, needle) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", err.msg, needle);
	assert_int_equal(a.n, 0);
}

#define L(mt, extra) "{\"mediaType\":\"" mt "\",\"size\":10,\"digest\":\"sha256:" D64 "\"" extra "}"
#define SS SIGSTORE_MEDIA_TYPE
#define ANN(v) ",\"annotations\":{\"" SIGSTORE_SIG_ANNOTATION "\":\"" v "\"}"

static void test_manifest(void **state)
{
	(void)state;
	struct sigstore_attachment a;
	crisp_err_t err = CRISP_ERR_INIT;
	char tag[128];

	assert_int_equal(sigstore_attachment_tag(MD, tag, sizeof tag, &err), 0);
	assert_string_equal(tag, "sha256-" D64 ".sig");
	assert_int_equal(sigstore_attachment_tag("sha256:abc", tag, sizeof tag, &err), -1);
	assert_int_equal(sigstore_attachment_tag(MD, tag, 10, &err), -1);
	assert_int_equal(err.code, CRISP_OUT_OF_RANGE);

	const char *ok = "{\"schemaVersion\":2,\"layers\":[" L(SS, ANN("AAAA")) "," L("application/other", "") "," L(
		SS, "") "," L(SS, ANN("A===")) "," L(SS, ANN("")) "]}";
	assert_int_equal(sigstore_attachment_parse((const uint8_t *)ok, strlen(ok), &a, &err), 0);
	assert_int_equal(a.n, 4);
	assert_int_equal(a.n_ignored, 1);
	assert_null(a.v[0].problem);
	assert_int_equal(a.v[0].sig_len, 3);
	assert_non_null(strstr(a.v[1].problem, "missing"));
	assert_non_null(strstr(a.v[2].problem, "base64"));
	assert_non_null(a.v[3].problem);
	sigstore_attachment_free(&a);

	bad_manifest("[]", "object expected");
	bad_manifest("{\"schemaVersion\":2,\"schemaVersion\":2,\"layers\":[]}", "invalid JSON");
	bad_manifest("{\"schemaVersion\":1,\"layers\":[]}", "schemaVersion 2");
	bad_manifest("{\"schemaVersion\":2}", "layers array");
	bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"layers\":[]}",
		     "mediaType");
	bad_manifest("{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}", "index");
	bad_manifest("{\"schemaVersion\":2,\"layers\":[1]}", "layers[0]: JSON object");
	bad_manifest("{\"schemaVersion\":2,\"layers\":[{\"size\":1,\"digest\":\"sha256:" D64 "\"}]}", "mediaType");
	bad_manifest("{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"x\",\"size\":1,\"digest\":\"md5:00\"}]}",
		     "digest");
	bad_manifest("{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"x\",\"size\":-1,\"digest\":\"sha256:" D64 "\"}]}",
		     "size");
	bad_manifest("{\"schemaVersion\":2,\"layers\":[{\"mediaType\":\"" SS "\",\"size\":99999999,\"digest\":\"sha256:" D64
		     "\"}]}",
		     "exceeds");
	bad_manifest("{\"schemaVersion\":2,\"layers\":[" L(SS, ",\"annotations\":{\"a\":1}") "]}", "string expected");

	/* 33 signature layers */
	char *big = malloc(65536);
	size_t o = (size_t)sprintf(big, "{\"schemaVersion\":2,\"layers\":[");
	for (int i = 0; i < SIGSTORE_MAX_SIGS + 1; i++)
		o += (size_t)sprintf(big + o, "%s" L(SS, ANN("AAAA")), i ? "," : "");
	sprintf(big + o, "]}");
	bad_manifest(big, "more than 32");
	free(big);
}

/* Deterministic mutations of a valid attachment manifest: never a crash;
 * an error is INVALID_ARGUMENT and leaves nothing allocated. */
static void test_manifest_mutations(void **state)
{
	(void)state;
	static const char base[] = "{\"schemaVersion\":2,\"layers\":[" L(SS, ANN("MEUCIQD+")) "," L("x/y", "") "]}";
	static const char bytes[] = { '"', '{', '}', '[', ']', ',', ':', '0', 'A', '=', '\\', '\0' };
	char buf[sizeof base];
	for (size_t i = 0; i < sizeof base - 1; i++) {
		for (size_t b = 0; b < sizeof bytes; b++) {
			struct sigstore_attachment a;
			crisp_err_t err = CRISP_ERR_INIT;
			memcpy(buf, base, sizeof base);
			buf[i] = bytes[b];
			if (sigstore_attachment_parse((const uint8_t *)buf, sizeof base - 1, &a, &err) != 0) {
				assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
				assert_int_equal(a.n, 0);
				continue;
			}
			assert_true(a.n <= 1);
			sigstore_attachment_free(&a);
		}
	}
}

/* The cosign payload parser shares sigverify's: type and null optional. */
static void test_payload_kinds(void **state)
{
	(void)state;
	struct sig_payload pl;
	crisp_err_t err = CRISP_ERR_INIT;
	const char *c = payload_json(MD, REF, "null");
	assert_int_equal(sig_payload_parse_kind((const uint8_t *)c, strlen(c), SIG_PAYLOAD_COSIGN, &pl, &err), 0);
	assert_int_equal(sig_payload_parse_kind((const uint8_t *)c, strlen(c), SIG_PAYLOAD_SIMPLE_SIGNING, &pl, &err),
			 -1);
	c = payload_json(MD, REF, "{\"timestamp\":1.5}");
	assert_int_equal(sig_payload_parse_kind((const uint8_t *)c, strlen(c), SIG_PAYLOAD_COSIGN, &pl, &err), -1);
	c = payload_json(MD, REF, "[]");
	assert_int_equal(sig_payload_parse_kind((const uint8_t *)c, strlen(c), SIG_PAYLOAD_COSIGN, &pl, &err), -1);
	const char *simple = "{\"critical\":{\"identity\":{\"docker-reference\":\"" REF "\"},\"image\":{"
			     "\"docker-manifest-digest\":\"" MD "\"},\"type\":\"atomic container signature\"},"
			     "\"optional\":{}}";
	assert_int_equal(sig_payload_parse_kind((const uint8_t *)simple, strlen(simple), SIG_PAYLOAD_COSIGN, &pl, &err),
			 -1);
	assert_non_null(strstr(err.msg, "unrecognized signature type"));
	assert_int_equal(sig_payload_parse((const uint8_t *)simple, strlen(simple), &pl, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ecdsa),    cmocka_unit_test(test_ed25519_and_keydata),
		cmocka_unit_test(test_flipped),  cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_manifest), cmocka_unit_test(test_manifest_mutations),
		cmocka_unit_test(test_payload_kinds),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
