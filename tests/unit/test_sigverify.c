/* Simple-signing verification with real keys (gpg --batch) and real
 * signatures (skopeo standalone-sign, skopeo copy --sign-by), the payload
 * parser, and lookaside paths.  Exits 77 (skip) when gpg or skopeo is
 * missing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "imaged/lookaside.h"
#include "imaged/sigverify.h"
#include "policy/sigpolicy.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define REF "registry.example.com/ns/app:v1"

static char T[64];          /* scratch root */
static char STORE[128];     /* tmp_parent handed to the verifier */
static char FA[64], FB[64]; /* fingerprints of keys A and B */
static char D1[80], D2[80]; /* digests of m1.json, m2.json */
static char DCOPY[80];      /* digest of out/manifest.json (skopeo copy) */
static bool have_copy;

struct buf {
	uint8_t *p;
	size_t n;
};
static struct buf sigA, sigB, sigA2, sigCopy, pubA, sigAplain;

static const char FIXTURE[] =
	"set -eu\n"
	"T=$1\n"
	"export GNUPGHOME=$T/gnupg\n"
	"mkdir -m 700 $GNUPGHOME\n"
	"gpg -q --batch --passphrase '' --quick-gen-key 'Signer A <a@example.invalid>' ed25519 sign never 2>/dev/null\n"
	"gpg -q --batch --passphrase '' --quick-gen-key 'Signer B <b@example.invalid>' ed25519 sign never 2>/dev/null\n"
	"gpg --list-keys --with-colons 2>/dev/null | awk -F: '/^fpr/{print $10}' > $T/fprs\n"
	"FA=$(sed -n 1p $T/fprs); FB=$(sed -n 2p $T/fprs)\n"
	"gpg --export $FA > $T/a.pub; gpg --export $FB > $T/b.pub\n"
	"C='\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:'\n"
	"H='{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",'\n"
	"printf '%s%s%s\",\"size\":2},\"layers\":[]}' \"$H\" \"$C\" $(printf '{}' | sha256sum | cut -d' ' -f1) > $T/m1.json\n"
	"printf '%s%s%s\",\"size\":3},\"layers\":[]}' \"$H\" \"$C\" $(printf '{ }' | sha256sum | cut -d' ' -f1) > $T/m2.json\n"
	"R=" REF "\n"
	"skopeo standalone-sign $T/m1.json $R $FA -o $T/sigA\n"
	"skopeo standalone-sign $T/m1.json $R $FB -o $T/sigB\n"
	"skopeo standalone-sign $T/m2.json $R $FA -o $T/sigA2\n"
	/* the same payload in an uncompressed signed message, so a test can
	 * flip a byte of the payload itself */
	"gpg -q --batch -d $T/sigA > $T/payloadA 2>/dev/null\n"
	"gpg -q --batch -u $FA --compress-algo none -o $T/sigAplain --sign $T/payloadA\n"
	"if command -v umoci >/dev/null; then\n"
	"  (cd $T && umoci init --layout oci && umoci new --image oci:img) >/dev/null 2>&1\n"
	"  echo '{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}' > $T/accept.json\n"
	"  skopeo --policy $T/accept.json copy -q --sign-by $FA --sign-identity $R oci:$T/oci:img dir:$T/out\n"
	"fi\n"
	"gpgconf --homedir $GNUPGHOME --kill gpg-agent\n";

static bool in_path(const char *prog)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

static struct buf slurp(const char *dir, const char *name)
{
	char path[256];
	struct buf b = { 0 };
	FILE *f;
	long n;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (f == NULL)
		return b;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b.p = malloc((size_t)n + 1);
	b.n = fread(b.p, 1, (size_t)n, f);
	fclose(f);
	return b;
}

static void digest_of(const char *name, char out[80])
{
	struct buf b = slurp(T, name);
	uint8_t h[32];
	char hex[65];

	if (b.p == NULL) {
		out[0] = '\0';
		return;
	}
	crypto_hash_sha256(h, b.p, b.n);
	sodium_bin2hex(hex, sizeof hex, h, sizeof h);
	snprintf(out, 80, "sha256:%s", hex);
	free(b.p);
}

static int setup_all(void **state)
{
	char path[128], cmd[256];
	struct buf fprs;
	FILE *f;

	(void)state;
	strcpy(T, "/tmp/crisp-sigverify-XXXXXX");
	if (mkdtemp(T) == NULL)
		return -1;
	snprintf(STORE, sizeof STORE, "%s/store", T);
	if (mkdir(STORE, 0700) != 0)
		return -1;
	snprintf(path, sizeof path, "%s/fixture.sh", T);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(FIXTURE, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "sh %s %s", path, T);
	if (system(cmd) != 0) {
		fprintf(stderr, "fixture script failed\n");
		return -1;
	}
	fprs = slurp(T, "fprs");
	if (fprs.p == NULL || fprs.n < 82)
		return -1;
	memcpy(FA, fprs.p, 40);
	memcpy(FB, fprs.p + 41, 40);
	free(fprs.p);
	digest_of("m1.json", D1);
	digest_of("m2.json", D2);
	sigA = slurp(T, "sigA");
	sigB = slurp(T, "sigB");
	sigA2 = slurp(T, "sigA2");
	pubA = slurp(T, "a.pub");
	sigAplain = slurp(T, "sigAplain");
	sigCopy = slurp(T, "out/signature-1");
	digest_of("out/manifest.json", DCOPY);
	have_copy = sigCopy.p != NULL && DCOPY[0] != '\0';
	return sigA.p && sigB.p && sigA2.p && pubA.p && sigAplain.p ? 0 : -1;
}

static int teardown_all(void **state)
{
	char cmd[128];
	(void)state;
	free(sigA.p);
	free(sigB.p);
	free(sigA2.p);
	free(sigCopy.p);
	free(pubA.p);
	free(sigAplain.p);
	if (T[0] != '\0') {
		snprintf(cmd, sizeof cmd, "rm -rf %s", T);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static struct sp_policy *policy(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static struct sp_policy *policy(const char *fmt, ...)
{
	char req[8192], json[9000];
	struct sp_policy *p = NULL;
	crisp_err_t err = CRISP_ERR_INIT;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req, sizeof req, fmt, ap);
	va_end(ap);
	snprintf(json, sizeof json, "{\"default\":[%s]}", req);
	if (sp_policy_parse(json, strlen(json), &p, &err) != 0)
		fail_msg("policy: %s\n%s", err.msg, json);
	return p;
}

static struct sp_policy *policy_keypath(const char *key, const char *identity)
{
	if (identity == NULL)
		return policy("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"%s/%s\"}", T, key);
	return policy("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"%s/%s\","
		      "\"signedIdentity\":%s}",
		      T, key, identity);
}

static int verify(const struct sp_policy *p, const char *image, const char *digest, const struct buf *sigs,
		  size_t n, struct sig_verified *out, crisp_err_t *err)
{
	struct sig_blob b[4];
	for (size_t i = 0; i < n; i++) {
		b[i].data = sigs[i].p;
		b[i].len = sigs[i].n;
	}
	return sig_verify_gpg(STORE, &p->def.v[0], image, digest, b, n, out, err);
}

static void expect_ok(const struct sp_policy *p, const char *image, const char *digest, struct buf sig,
		      const char *fpr)
{
	struct sig_verified v;
	crisp_err_t err = CRISP_ERR_INIT;

	if (verify(p, image, digest, &sig, 1, &v, &err) != 0)
		fail_msg("refused %s: %s", image, err.msg);
	assert_string_equal(v.fingerprint, fpr);
	assert_string_equal(v.payload.manifest_digest, digest);
}

static void expect_refused(const struct sp_policy *p, const char *image, const char *digest, struct buf sig,
			   const char *want)
{
	struct sig_verified v;
	crisp_err_t err = CRISP_ERR_INIT;

	if (verify(p, image, digest, &sig, 1, &v, &err) == 0)
		fail_msg("accepted %s (want refusal '%s')", image, want);
	assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
	if (getenv("CRISP_TEST_VERBOSE") != NULL)
		fprintf(stderr, "  refused %s: %s\n", image, err.msg);
	if (want != NULL && strstr(err.msg, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err.msg, want);
}

static size_t count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* ---- GPG verification --------------------------------------------------- */

static void test_good(void **state)
{
	struct sp_policy *p = policy_keypath("a.pub", NULL);
	struct sig_verified v;
	crisp_err_t err = CRISP_ERR_INIT;
	(void)state;

	assert_int_equal(verify(p, REF, D1, &sigA, 1, &v, &err), 0);
	assert_string_equal(v.fingerprint, FA);
	assert_string_equal(v.payload.docker_reference, REF);
	assert_true(v.payload.has_creator);
	assert_true(v.payload.has_timestamp);
	assert_true(v.payload.timestamp > 1600000000);
	/* the ephemeral homedir is gone */
	assert_int_equal(count_entries(STORE), 0);
	sp_policy_free(p);
}

static void test_skopeo_copy_signature(void **state)
{
	struct sp_policy *p;
	(void)state;

	if (!have_copy)
		skip(); /* reason: the skopeo-copy fixture needs umoci, which was missing */
	p = policy_keypath("a.pub", NULL);
	expect_ok(p, REF, DCOPY, sigCopy, FA);
	expect_refused(p, REF, D1, sigCopy, "does not match");
	sp_policy_free(p);
}

static void test_unsigned(void **state)
{
	struct sp_policy *p = policy_keypath("a.pub", NULL);
	struct sig_verified v;
	crisp_err_t err = CRISP_ERR_INIT;
	(void)state;

	assert_int_equal(verify(p, REF, D1, NULL, 0, &v, &err), -1);
	assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
	assert_non_null(strstr(err.msg, "no signature exists"));
	sp_policy_free(p);
}

static void test_garbage(void **state)
{
	struct sp_policy *p = policy_keypath("a.pub", NULL);
	struct buf g = { (uint8_t *)"not an OpenPGP message", 22 };
	struct buf e = { (uint8_t *)"", 0 };
	(void)state;

	expect_refused(p, REF, D1, g, NULL);
	expect_refused(p, REF, D1, e, "empty");
	/* a public key is not a signature */
	expect_refused(p, REF, D1, pubA, NULL);
	sp_policy_free(p);
}

/* Every flipped byte of skopeo's (compressed) signature is refused, or (an
 * unhashed field, deflate padding) still yields exactly the signed content
 * from the right key.  In an uncompressed signed message, a flip in the
 * payload or in the signature value must fail. */
static void test_flipped_bytes(void **state)
{
	struct sp_policy *p = policy_keypath("a.pub", NULL);
	struct buf m = { malloc(sigA.n), sigA.n };
	size_t refused = 0, tried = 0;
	(void)state;

	for (size_t i = 0; i < sigA.n; i += 7) {
		struct sig_verified v;
		crisp_err_t err = CRISP_ERR_INIT;
		memcpy(m.p, sigA.p, sigA.n);
		m.p[i] ^= 0x01;
		tried++;
		if (verify(p, REF, D1, &m, 1, &v, &err) != 0) {
			assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
			refused++;
		} else {
			assert_string_equal(v.payload.docker_reference, REF);
			assert_string_equal(v.payload.manifest_digest, D1);
			assert_string_equal(v.fingerprint, FA);
		}
	}
	if (getenv("CRISP_TEST_VERBOSE") != NULL)
		fprintf(stderr, "  flips: %zu tried, %zu refused\n", tried, refused);
	assert_true(refused * 10 >= tried * 8); /* nearly all */
	free(m.p);

	/* the payload itself, in an uncompressed signed message */
	expect_ok(p, REF, D1, sigAplain, FA);
	m.n = sigAplain.n;
	m.p = malloc(m.n);
	{
		static const char needle[] = "ns/app:v1";
		uint8_t *hit = memmem(sigAplain.p, sigAplain.n, needle, strlen(needle));
		assert_non_null(hit);
		memcpy(m.p, sigAplain.p, m.n);
		m.p[hit - sigAplain.p + 7] = '2'; /* :v1 -> :v2 */
		expect_refused(p, REF, D1, m, "Bad signature");
		expect_refused(p, "registry.example.com/ns/app:v2", D1, m, "Bad signature");
		hit = memmem(sigAplain.p, sigAplain.n, D1 + 7, 64);
		assert_non_null(hit);
		memcpy(m.p, sigAplain.p, m.n);
		m.p[hit - sigAplain.p] ^= 0x01;
		expect_refused(p, REF, D1, m, "Bad signature");
		/* the last byte: the signature value (in skopeo's compressed
		 * form the last bytes are deflate padding, which may not matter) */
		memcpy(m.p, sigAplain.p, m.n);
		m.p[m.n - 1] ^= 0x40;
		expect_refused(p, REF, D1, m, NULL);
	}
	free(m.p);
	assert_int_equal(count_entries(STORE), 0);
	sp_policy_free(p);
}

static void test_other_key(void **state)
{
	struct sp_policy *pa = policy_keypath("a.pub", NULL);
	struct sp_policy *pb = policy_keypath("b.pub", NULL);
	(void)state;

	expect_refused(pa, REF, D1, sigB, NULL);
	expect_ok(pb, REF, D1, sigB, FB);
	expect_refused(pb, REF, D1, sigA, NULL);
	sp_policy_free(pa);
	sp_policy_free(pb);
}

static void test_other_digest(void **state)
{
	struct sp_policy *p = policy_keypath("a.pub", NULL);
	(void)state;

	expect_refused(p, REF, D1, sigA2, "does not match");
	expect_ok(p, REF, D2, sigA2, FA);
	expect_refused(p, REF, "sha256:" D64, sigA, "does not match");
	sp_policy_free(p);
}

static void test_identity_rules(void **state)
{
	char bydig[200];
	struct sp_policy *p;
	(void)state;

	snprintf(bydig, sizeof bydig, "registry.example.com/ns/app@%s", D1);

	p = policy_keypath("a.pub", "{\"type\":\"matchExact\"}");
	expect_ok(p, REF, D1, sigA, FA);
	expect_refused(p, "registry.example.com/ns/app:v2", D1, sigA, "identity");
	expect_refused(p, bydig, D1, sigA, "identity");
	sp_policy_free(p);

	p = policy_keypath("a.pub", NULL); /* matchRepoDigestOrExact */
	expect_ok(p, REF, D1, sigA, FA);
	expect_ok(p, bydig, D1, sigA, FA);
	expect_refused(p, "registry.example.com/ns/app:v2", D1, sigA, "identity");
	expect_refused(p, "registry.example.com/ns/other:v1", D1, sigA, "identity");
	sp_policy_free(p);

	p = policy_keypath("a.pub", "{\"type\":\"matchRepository\"}");
	expect_ok(p, "registry.example.com/ns/app:v2", D1, sigA, FA);
	expect_ok(p, bydig, D1, sigA, FA);
	expect_refused(p, "registry.example.com/ns/other:v1", D1, sigA, "identity");
	expect_refused(p, "mirror.example.net/ns/app:v1", D1, sigA, "identity");
	sp_policy_free(p);

	p = policy_keypath("a.pub", "{\"type\":\"exactReference\",\"dockerReference\":\"" REF "\"}");
	expect_ok(p, "mirror.example.net/anything:else", D1, sigA, FA);
	sp_policy_free(p);

	p = policy_keypath("a.pub", "{\"type\":\"remapIdentity\",\"prefix\":\"mirror.example.net/vendor\","
				    "\"signedPrefix\":\"registry.example.com/ns\"}");
	expect_ok(p, "mirror.example.net/vendor/app:v1", D1, sigA, FA);
	expect_ok(p, REF, D1, sigA, FA); /* outside the prefix: unchanged */
	expect_refused(p, "mirror.example.net/vendor/app:v2", D1, sigA, "identity");
	expect_refused(p, "mirror.example.net/other/app:v1", D1, sigA, "identity");
	sp_policy_free(p);
}

static void test_keydata_and_keypaths(void **state)
{
	char *b64;
	size_t b64len = sodium_base64_encoded_len(pubA.n, sodium_base64_VARIANT_ORIGINAL);
	struct sp_policy *p;
	struct sig_verified v;
	crisp_err_t err = CRISP_ERR_INIT;
	struct buf two[2];
	(void)state;

	b64 = malloc(b64len);
	sodium_bin2base64(b64, b64len, pubA.p, pubA.n, sodium_base64_VARIANT_ORIGINAL);
	p = policy("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"%s\"}", b64);
	expect_ok(p, REF, D1, sigA, FA);
	expect_refused(p, REF, D1, sigB, NULL);
	sp_policy_free(p);
	free(b64);

	p = policy("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":[\"%s/b.pub\",\"%s/a.pub\"]}", T,
		   T);
	expect_ok(p, REF, D1, sigA, FA);
	expect_ok(p, REF, D1, sigB, FB);
	sp_policy_free(p);

	/* several signatures: one good one is enough, the index says which */
	p = policy_keypath("a.pub", NULL);
	two[0] = sigB;
	two[1] = sigA;
	assert_int_equal(verify(p, REF, D1, two, 2, &v, &err), 0);
	assert_int_equal(v.index, 1);
	two[1] = sigA2;
	assert_int_equal(verify(p, REF, D1, two, 2, &v, &err), -1);
	assert_non_null(strstr(err.msg, "none of the 2 signatures"));
	assert_non_null(strstr(err.msg, "[signature-2]"));
	sp_policy_free(p);

	/* keys that are not keys, or not there */
	p = policy("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"%s/m1.json\"}", T);
	assert_int_equal(verify(p, REF, D1, &sigA, 1, &v, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	sp_policy_free(p);
	p = policy("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"%s/nope.pub\"}", T);
	assert_int_equal(verify(p, REF, D1, &sigA, 1, &v, &err), -1);
	assert_int_equal(err.code, CRISP_FAILED_PRECONDITION);
	sp_policy_free(p);

	/* not a signedBy requirement */
	p = policy("{\"type\":\"insecureAcceptAnything\"}");
	assert_int_equal(verify(p, REF, D1, &sigA, 1, &v, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	sp_policy_free(p);
	assert_int_equal(count_entries(STORE), 0);
}

/* Last: no gpg-agent (or anything else) runs on our homedirs. */
static void test_no_agent_left(void **state)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	(void)state;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char path[300], cmd[4096];
		ssize_t n;
		int fd;
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, cmd, sizeof cmd - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (ssize_t i = 0; i < n; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		cmd[n] = '\0';
		if (strstr(cmd, "gpg-agent") != NULL && strstr(cmd, T) != NULL)
			fail_msg("left running: pid %s: %s", e->d_name, cmd);
	}
	closedir(d);
	assert_int_equal(count_entries(STORE), 0);
}

/* ---- payload parser ----------------------------------------------------- */

#define CRIT(dig, ref) "{\"type\":\"atomic container signature\",\"image\":{\"docker-manifest-digest\":\"" dig \
	"\"},\"identity\":{\"docker-reference\":\"" ref "\"}}"
#define GOODCRIT CRIT("sha256:" D64, "quay.io/a/b:c")

static void pl_ok(const char *json, struct sig_payload *out)
{
	crisp_err_t err = CRISP_ERR_INIT;
	if (sig_payload_parse((const uint8_t *)json, strlen(json), out, &err) != 0)
		fail_msg("refused: %s\n%s", err.msg, json);
}

static void pl_bad(const char *json, const char *want)
{
	struct sig_payload out;
	crisp_err_t err = CRISP_ERR_INIT;
	if (sig_payload_parse((const uint8_t *)json, strlen(json), &out, &err) == 0)
		fail_msg("accepted:\n%s", json);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	if (strstr(err.msg, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err.msg, want);
	assert_string_equal(out.docker_reference, "");
}

static void test_payload(void **state)
{
	struct sig_payload pl;
	(void)state;

	pl_ok("{\"critical\":" GOODCRIT ",\"optional\":{}}", &pl);
	assert_string_equal(pl.manifest_digest, "sha256:" D64);
	assert_string_equal(pl.docker_reference, "quay.io/a/b:c");
	assert_false(pl.has_creator);
	assert_false(pl.has_timestamp);
	pl_ok("{\"optional\":{\"creator\":\"atomic 5.23.1\",\"timestamp\":1795862156,\"x\":[1,{\"y\":null}]},"
	      "\"critical\":" GOODCRIT "}",
	      &pl);
	assert_true(pl.has_creator);
	assert_string_equal(pl.creator, "atomic 5.23.1");
	assert_int_equal(pl.timestamp, 1795862156);
	pl_ok("{\"critical\":" GOODCRIT ",\"optional\":{\"timestamp\":1.5e3}}", &pl);
	assert_int_equal(pl.timestamp, 1500);
	/* the identity is not validated here (matching does that) */
	pl_ok("{\"critical\":" CRIT("sha256:" D64, "Not A Reference") ",\"optional\":{}}", &pl);

	pl_bad("", "invalid JSON");
	pl_bad("[]", "JSON object expected");
	pl_bad("{\"critical\":" GOODCRIT "}", "\"optional\" missing");
	pl_bad("{\"optional\":{}}", "\"critical\" missing");
	pl_bad("{\"critical\":" GOODCRIT ",\"optional\":{},\"extra\":1}", "unknown key");
	pl_bad("{\"critical\":" GOODCRIT ",\"optional\":null}", "optional");
	pl_bad("{\"critical\":" GOODCRIT ",\"optional\":{},\"optional\":{}}", "duplicate");
	pl_bad("{\"critical\":" GOODCRIT ",\"optional\":{}} x", "invalid JSON");
	pl_bad("{\"critical\":" GOODCRIT ",\"optional\":{\"timestamp\":1.5}}", "not an integer");
	pl_bad("{\"critical\":" GOODCRIT ",\"optional\":{\"timestamp\":1e300}}", "not an integer");
	pl_bad("{\"critical\":" GOODCRIT ",\"optional\":{\"timestamp\":\"1\"}}", "number expected");
	pl_bad("{\"critical\":" GOODCRIT ",\"optional\":{\"creator\":7}}", "string expected");
	pl_bad("{\"critical\":" GOODCRIT ",\"optional\":{\"x\":1,\"x\":2}}", "duplicate");
	pl_bad("{\"critical\":{\"type\":\"atomic container signature\",\"image\":{\"docker-manifest-digest\":"
	       "\"sha256:" D64 "\"},\"identity\":{\"docker-reference\":\"a/b\"},\"new\":1},\"optional\":{}}",
	       "unknown key \"new\"");
	pl_bad("{\"critical\":{\"type\":\"atomic container signature\",\"image\":{\"docker-manifest-digest\":"
	       "\"sha256:" D64 "\"}},\"optional\":{}}",
	       "\"identity\" missing");
	pl_bad("{\"critical\":{\"type\":\"other\",\"image\":{\"docker-manifest-digest\":\"sha256:" D64
	       "\"},\"identity\":{\"docker-reference\":\"a/b\"}},\"optional\":{}}",
	       "unrecognized signature type");
	pl_bad("{\"critical\":{\"type\":1,\"image\":{\"docker-manifest-digest\":\"sha256:" D64
	       "\"},\"identity\":{\"docker-reference\":\"a/b\"}},\"optional\":{}}",
	       "critical.type: string expected");
	pl_bad("{\"critical\":" CRIT("sha256:" D64 "0", "a/b") ",\"optional\":{}}", "docker-manifest-digest");
	pl_bad("{\"critical\":" CRIT("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
				     "a/b") ",\"optional\":{}}",
	       "docker-manifest-digest");
	pl_bad("{\"critical\":" CRIT("md5:0123", "a/b") ",\"optional\":{}}", "docker-manifest-digest");
	pl_bad("{\"critical\":{\"type\":\"atomic container signature\",\"image\":{\"docker-manifest-digest\":"
	       "\"sha256:" D64 "\",\"x\":1},\"identity\":{\"docker-reference\":\"a/b\"}},\"optional\":{}}",
	       "critical.image: unknown key");
	pl_bad("{\"critical\":{\"type\":\"atomic container signature\",\"image\":{\"docker-manifest-digest\":"
	       "\"sha256:" D64 "\"},\"identity\":{\"docker-reference\":null}},\"optional\":{}}",
	       "string expected");
	pl_bad("{\"critical\":{\"type\":\"atomic container signature\",\"image\":{\"docker-manifest-digest\":"
	       "\"sha256:" D64 "\"},\"identity\":{\"docker-reference\":\"a\\u0000b\"}},\"optional\":{}}",
	       "invalid JSON");
	pl_bad("{\"critical\":{\"type\":\"atomic container signature\",\"image\":[],"
	       "\"identity\":{\"docker-reference\":\"a/b\"}},\"optional\":{}}",
	       "critical.image: JSON object expected");
	{
		/* a reference longer than any valid one */
		size_t n = DOCKERREF_STR_MAX + 10;
		char *big = malloc(n + 300), *ref = malloc(n + 1);
		memset(ref, 'a', n);
		ref[n] = '\0';
		snprintf(big, n + 300,
			 "{\"critical\":{\"type\":\"atomic container signature\",\"image\":{\"docker-manifest-"
			 "digest\":\"sha256:" D64 "\"},\"identity\":{\"docker-reference\":\"%s\"}},\"optional\":{}}",
			 ref);
		pl_bad(big, "too long");
		free(big);
		free(ref);
	}
}

/* ---- lookaside ---------------------------------------------------------- */

static void url_is(const char *base, const char *ref, const char *dig, unsigned n, const char *want)
{
	char out[LOOKASIDE_URL_MAX];
	crisp_err_t err = CRISP_ERR_INIT;
	if (lookaside_sig_url(base, ref, dig, n, out, sizeof out, &err) != 0)
		fail_msg("%s %s: %s", base, ref, err.msg);
	assert_string_equal(out, want);
}

static void url_bad(const char *base, const char *ref, const char *dig, unsigned n)
{
	char out[LOOKASIDE_URL_MAX];
	crisp_err_t err = CRISP_ERR_INIT;
	if (lookaside_sig_url(base, ref, dig, n, out, sizeof out, &err) == 0)
		fail_msg("accepted %s %s: %s", base, ref, out);
}

static void test_lookaside_url(void **state)
{
	(void)state;
	/* c/image: <base>/<reference.Path>@<alg>=<hex>/signature-<index+1> */
	url_is("file:///var/lib/containers/sigstore", "busybox", "sha256:" D64, 1,
	       "file:///var/lib/containers/sigstore/library/busybox@sha256=" D64 "/signature-1");
	url_is("https://sigstore.example.com", "quay.io/ns/app:v1", "sha256:" D64, 2,
	       "https://sigstore.example.com/ns/app@sha256=" D64 "/signature-2");
	url_is("http://127.0.0.1:5002/sigs", "127.0.0.1:5001/signed/busybox@sha256:" D64, "sha256:" D64, 10,
	       "http://127.0.0.1:5002/sigs/signed/busybox@sha256=" D64 "/signature-10");
	url_is("https://s.example.com/", "localhost:5000/a/b/c:t", "sha256:" D64, 1,
	       "https://s.example.com//a/b/c@sha256=" D64 "/signature-1");
	url_is("http://s.example.com", "index.docker.io/x/y", "sha256:" D64, 3,
	       "http://s.example.com/x/y@sha256=" D64 "/signature-3");

	url_bad("ftp://x.example.com", "busybox", "sha256:" D64, 1);
	url_bad("file://host/path", "busybox", "sha256:" D64, 1);
	url_bad("file:relative", "busybox", "sha256:" D64, 1);
	url_bad("https://", "busybox", "sha256:" D64, 1);
	url_bad("https://u:p@x.example.com", "busybox", "sha256:" D64, 1);
	url_bad("https://x.example.com/a?b", "busybox", "sha256:" D64, 1);
	url_bad("https://x.example.com/a%2e", "busybox", "sha256:" D64, 1);
	url_bad("https://x.example.com/a b", "busybox", "sha256:" D64, 1);
	url_bad("https://x.example.com", "Busybox", "sha256:" D64, 1);
	url_bad("https://x.example.com", "busybox", "sha256:xyz", 1);
	url_bad("https://x.example.com", "busybox", "sha256:" D64, 0);
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void test_lookaside_read(void **state)
{
	char base[200], dir[300], path[400], cmd[400];
	struct lookaside_sigs s;
	crisp_err_t err = CRISP_ERR_INIT;
	struct sp_policy *p;
	struct sig_verified v;
	struct sig_blob blobs[LOOKASIDE_MAX_SIGS];
	(void)state;

	snprintf(base, sizeof base, "file://%s/lookaside", T);
	/* nothing there at all: no signatures, not an error */
	assert_int_equal(lookaside_read_file(base, REF, D1, &s, &err), 0);
	assert_int_equal(s.n, 0);

	snprintf(dir, sizeof dir, "%s/lookaside/ns/app@sha256=%s", T, D1 + 7);
	snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof path, "%s/signature-1", dir);
	write_file(path, sigB.p, sigB.n);
	snprintf(path, sizeof path, "%s/signature-2", dir);
	write_file(path, sigA.p, sigA.n);
	snprintf(path, sizeof path, "%s/signature-4", dir); /* after a gap: never read */
	write_file(path, sigA.p, sigA.n);

	assert_int_equal(lookaside_read_file(base, REF, D1, &s, &err), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.v[1].len, sigA.n);
	assert_memory_equal(s.v[1].data, sigA.p, sigA.n);
	/* and through the verifier */
	p = policy_keypath("a.pub", NULL);
	for (size_t i = 0; i < s.n; i++) {
		blobs[i].data = s.v[i].data;
		blobs[i].len = s.v[i].len;
	}
	assert_int_equal(sig_verify_gpg(STORE, &p->def.v[0], REF, D1, blobs, s.n, &v, &err), 0);
	assert_int_equal(v.index, 1);
	assert_string_equal(v.fingerprint, FA);
	sp_policy_free(p);
	lookaside_sigs_free(&s);

	/* too big */
	snprintf(path, sizeof path, "%s/signature-3", dir);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, LOOKASIDE_SIG_MAX + 1), 0);
		close(fd);
	}
	assert_int_equal(lookaside_read_file(base, REF, D1, &s, &err), -1);
	assert_int_equal(err.code, CRISP_RESOURCE_EXHAUSTED);
	lookaside_sigs_free(&s);
	/* not a regular file */
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(lookaside_read_file(base, REF, D1, &s, &err), -1);
	lookaside_sigs_free(&s);
	rmdir(path);

	/* 33 signatures */
	for (unsigned i = 3; i <= LOOKASIDE_MAX_SIGS + 1; i++) {
		snprintf(path, sizeof path, "%s/signature-%u", dir, i);
		write_file(path, "x", 1);
	}
	assert_int_equal(lookaside_read_file(base, REF, D1, &s, &err), -1);
	assert_int_equal(err.code, CRISP_RESOURCE_EXHAUSTED);
	lookaside_sigs_free(&s);
	snprintf(path, sizeof path, "%s/signature-%u", dir, LOOKASIDE_MAX_SIGS + 1);
	unlink(path);
	assert_int_equal(lookaside_read_file(base, REF, D1, &s, &err), 0);
	assert_int_equal(s.n, LOOKASIDE_MAX_SIGS);
	lookaside_sigs_free(&s);

	/* http bases are not read here */
	assert_int_equal(lookaside_read_file("https://x.example.com", REF, D1, &s, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_payload),
		cmocka_unit_test(test_lookaside_url),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_skopeo_copy_signature),
		cmocka_unit_test(test_unsigned),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_flipped_bytes),
		cmocka_unit_test(test_other_key),
		cmocka_unit_test(test_other_digest),
		cmocka_unit_test(test_identity_rules),
		cmocka_unit_test(test_keydata_and_keypaths),
		cmocka_unit_test(test_lookaside_read),
		cmocka_unit_test(test_no_agent_left),
	};

	if (!in_path("gpg") || !in_path("skopeo") || !in_path("gpgconf")) {
		fprintf(stderr, "test_sigverify: gpg or skopeo missing, skipped\n");
		return 77;
	}
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
