/* Signature policy (containers-policy.json): parsing, scope precedence,
 * signedIdentity rules, and errors that name the JSON path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/sigpolicy.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define E64 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define DIG "sha256:" D64
#define DIG2 "sha256:" E64

#define ACCEPT "[{\"type\":\"insecureAcceptAnything\"}]"
#define REJECT "[{\"type\":\"reject\"}]"

static struct sp_policy *parse_ok(const char *json)
{
	struct sp_policy *p = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	if (sp_policy_parse(json, strlen(json), &p, &err) != 0)
		fail_msg("policy did not parse: %s\n%s", err.msg, json);
	assert_non_null(p);
	return p;
}

static void expect_err(const char *json, const char *want)
{
	struct sp_policy *p = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	if (sp_policy_parse(json, strlen(json), &p, &err) == 0)
		fail_msg("policy parsed, expected error '%s':\n%s", want, json);
	assert_null(p);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	if (strstr(err.msg, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

/* A policy whose only requirement (default[0]) is req. */
static void expect_req_err(const char *req, const char *want)
{
	char json[4096];

	snprintf(json, sizeof json, "{\"default\":[%s]}", req);
	expect_err(json, want);
}

static const struct sp_requirement *only_req(const struct sp_policy *p)
{
	assert_int_equal(p->def.n, 1);
	return &p->def.v[0];
}

/* The label of the scope that applies to ref. */
static void expect_scope(const struct sp_policy *p, const char *ref, const char *digest, const char *label)
{
	struct sp_match m;
	crisp_err_t err = CRISP_ERR_INIT;

	if (sp_policy_evaluate(p, ref, digest != NULL ? digest : DIG, &m, &err) != 0)
		fail_msg("evaluate '%s': %s", ref, err.msg);
	if (strcmp(m.label, label) != 0)
		fail_msg("'%s' matched %s, want %s", ref, m.label, label);
	assert_non_null(m.reqs);
	assert_true(m.reqs->n > 0);
}

/* ---- real files ---------------------------------------------------------- */

/* /etc/containers/policy.json as Debian 12 ships it (golang-github-containers-common). */
static const char debian_policy[] = "{\n"
				    "    \"default\": [\n"
				    "        {\n"
				    "            \"type\": \"insecureAcceptAnything\"\n"
				    "        }\n"
				    "    ]\n"
				    "}\n";

/* Fedora/RHEL's containers-common default, with docker-daemon and keyPaths. */
static const char fedora_policy[] =
	"{\n"
	"    \"default\": [ { \"type\": \"insecureAcceptAnything\" } ],\n"
	"    \"transports\": {\n"
	"        \"docker\": {\n"
	"            \"registry.access.redhat.com\": [ { \"type\": \"signedBy\", \"keyType\": \"GPGKeys\",\n"
	"                \"keyPaths\": [\"/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release\", "
	"\"/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-beta\"] } ],\n"
	"            \"registry.redhat.io\": [ { \"type\": \"signedBy\", \"keyType\": \"GPGKeys\",\n"
	"                \"keyPaths\": [\"/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release\", "
	"\"/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-beta\"] } ]\n"
	"        },\n"
	"        \"docker-daemon\": { \"\": [ { \"type\": \"insecureAcceptAnything\" } ] }\n"
	"    }\n"
	"}\n";

/* containers-policy.json(5), "A reasonably locked-down system", made valid
 * JSON: comments removed, the trailing comma after rekorPublicKeyPath and
 * the missing one after subjectHostname fixed, the space removed from the
 * "...-fulcio-rekor- allows-..." scope (not a valid repository name). */
static const char manpage_policy[] =
	"{\n"
	"  \"default\": [{\"type\": \"reject\"}],\n"
	"  \"transports\": {\n"
	"    \"docker\": {\n"
	"      \"docker.io/openshift\": [{\"type\": \"insecureAcceptAnything\"}],\n"
	"      \"docker.io/library/busybox\": [{\"type\": \"insecureAcceptAnything\"}],\n"
	"      \"*.temporary-project.example.com\": [{\"type\": \"insecureAcceptAnything\"}],\n"
	"      \"hostname:5000/myns/sigstore-signed-with-full-references\": [\n"
	"        {\"type\": \"sigstoreSigned\", \"keyPath\": \"/path/to/sigstore-pubkey.pub\"}],\n"
	"      \"hostname:5000/myns/sigstore-signed-fulcio-rekor\": [\n"
	"        {\"type\": \"sigstoreSigned\",\n"
	"         \"fulcio\": {\"caPath\": \"/path/to/fulcio_v1.crt.pem\",\n"
	"                    \"oidcIssuer\": \"https://github.com/login/oauth\",\n"
	"                    \"subjectEmail\": \"test-user@example.com\"},\n"
	"         \"rekorPublicKeyPath\": \"/path/to/rekor.pub\"}],\n"
	"      \"hostname:5000/myns/sigstore-signed-byopki\": [\n"
	"        {\"type\": \"sigstoreSigned\",\n"
	"         \"pki\": {\"caRootsPath\": \"/path/to/pki_root_crts.pem\",\n"
	"                 \"caIntermediatesPath\": \"/path/to/pki_intermediate_crts.pem\",\n"
	"                 \"subjectHostname\": \"test-user.example.com\",\n"
	"                 \"subjectEmail\": \"test-user@example.com\"}}],\n"
	"      \"hostname:5000/myns/sigstore-signed-allows-malicious-tag-substitution\": [\n"
	"        {\"type\": \"sigstoreSigned\", \"keyPath\": \"/path/to/sigstore-pubkey.pub\",\n"
	"         \"signedIdentity\": {\"type\": \"matchRepository\"}}],\n"
	"      \"hostname:5000/myns/sigstore-signed-fulcio-rekor-allows-malicious-tag-substitution\": [\n"
	"        {\"type\": \"sigstoreSigned\",\n"
	"         \"fulcio\": {\"caPath\": \"/path/to/fulcio_v1.crt.pem\",\n"
	"                    \"oidcIssuer\": \"https://github.com/login/oauth\",\n"
	"                    \"subjectEmail\": \"test-user@example.com\"},\n"
	"         \"rekorPublicKeyPath\": \"/path/to/rekor.pub\",\n"
	"         \"signedIdentity\": { \"type\": \"matchRepository\" }}]\n"
	"    },\n"
	"    \"dir\": { \"\": [{\"type\": \"insecureAcceptAnything\"}] },\n"
	"    \"atomic\": {\n"
	"      \"hostname:5000/myns/official\": [\n"
	"        {\"type\": \"signedBy\", \"keyType\": \"GPGKeys\", \"keyPath\": \"/path/to/official-pubkey.gpg\"}],\n"
	"      \"hostname:5000/vendor/product\": [\n"
	"        {\"type\": \"signedBy\", \"keyType\": \"GPGKeys\", \"keyPath\": \"/path/to/vendor-pubkey.gpg\",\n"
	"         \"signedIdentity\": {\"type\": \"exactRepository\",\n"
	"                            \"dockerRepository\": \"vendor-hostname/product/repository\"}},\n"
	"        {\"type\": \"signedBy\", \"keyType\": \"GPGKeys\", \"keyPath\": \"/path/to/reviewer-pubkey.gpg\"}],\n"
	"      \"private-mirror:5000/vendor-mirror\": [\n"
	"        {\"type\": \"signedBy\", \"keyType\": \"GPGKeys\", \"keyPath\": \"/path/to/vendor-pubkey.gpg\",\n"
	"         \"signedIdentity\": {\"type\": \"remapIdentity\",\n"
	"                            \"prefix\": \"private-mirror:5000/vendor-mirror\",\n"
	"                            \"signedPrefix\": \"vendor.example.com\"}}]\n"
	"    }\n"
	"  }\n"
	"}\n";

static void test_debian_default(void **state)
{
	struct sp_policy *p = parse_ok(debian_policy);
	struct sp_match m;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	assert_int_equal(only_req(p)->type, SP_REQ_INSECURE_ACCEPT_ANYTHING);
	assert_string_equal(only_req(p)->where, "default[0]");
	assert_int_equal(p->n_scopes, 0);
	assert_false(p->has_docker_default);
	assert_int_equal(sp_policy_evaluate(p, "busybox", DIG, &m, &err), 0);
	assert_int_equal(m.kind, SP_MATCH_DEFAULT);
	assert_null(m.scope);
	assert_string_equal(m.label, "default");
	assert_string_equal(m.identity, "docker.io/library/busybox:latest");
	assert_string_equal(m.manifest_digest, DIG);
	assert_ptr_equal(m.reqs, &p->def);
	sp_policy_free(p);
}

static void test_fedora_default(void **state)
{
	struct sp_policy *p = parse_ok(fedora_policy);
	struct sp_match m;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	assert_int_equal(p->n_scopes, 2);
	assert_int_equal(p->n_ignored_transports, 1);
	assert_int_equal(sp_policy_evaluate(p, "registry.redhat.io/ubi9/ubi:9.3", DIG, &m, &err), 0);
	assert_int_equal(m.kind, SP_MATCH_SCOPE);
	assert_string_equal(m.scope, "registry.redhat.io");
	assert_int_equal(m.reqs->n, 1);
	const struct sp_requirement *r = &m.reqs->v[0];
	assert_int_equal(r->type, SP_REQ_SIGNED_BY);
	assert_string_equal(r->where, "transports.docker[\"registry.redhat.io\"][0]");
	assert_int_equal(r->keys.kind, SP_KEYS_PATHS);
	assert_string_equal(r->keys.field, "keyPaths");
	assert_int_equal(r->keys.n, 2);
	assert_string_equal(r->keys.paths[1], "/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-beta");
	assert_int_equal(r->identity.type, SP_ID_MATCH_REPO_DIGEST_OR_EXACT);
	expect_scope(p, "quay.io/x/y", NULL, "default");
	sp_policy_free(p);
}

static void test_manpage_examples(void **state)
{
	struct sp_policy *p;
	struct sp_match m;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	p = parse_ok(manpage_policy);
	assert_int_equal(p->n_scopes, 8);
	assert_int_equal(p->n_ignored_transports, 2);
	expect_scope(p, "openshift/hello-openshift", NULL, "transports.docker[\"docker.io/openshift\"]");
	expect_scope(p, "busybox:1.36", NULL, "transports.docker[\"docker.io/library/busybox\"]");
	expect_scope(p, "a.temporary-project.example.com/x", NULL,
		     "transports.docker[\"*.temporary-project.example.com\"]");
	expect_scope(p, "alpine", NULL, "default");
	/* "atomic" scopes never apply to docker pulls */
	expect_scope(p, "private-mirror:5000/vendor-mirror/a:1", NULL, "default");

	assert_int_equal(sp_policy_evaluate(p, "hostname:5000/myns/sigstore-signed-fulcio-rekor:v1", DIG, &m, &err), 0);
	const struct sp_requirement *r = &m.reqs->v[0];
	assert_int_equal(r->type, SP_REQ_SIGSTORE_SIGNED);
	assert_int_equal(r->trust, SP_SIGSTORE_FULCIO);
	assert_true(r->needs_cert_roots);
	assert_int_equal(r->fulcio.ca.kind, SP_KEYS_PATHS);
	assert_string_equal(r->fulcio.ca.paths[0], "/path/to/fulcio_v1.crt.pem");
	assert_string_equal(r->fulcio.oidc_issuer, "https://github.com/login/oauth");
	assert_string_equal(r->fulcio.subject_email, "test-user@example.com");
	assert_int_equal(r->rekor_keys.kind, SP_KEYS_PATHS);
	assert_string_equal(r->rekor_keys.field, "rekorPublicKeyPath");
	assert_int_equal(r->identity.type, SP_ID_MATCH_REPO_DIGEST_OR_EXACT);

	assert_int_equal(sp_policy_evaluate(p, "hostname:5000/myns/sigstore-signed-byopki", DIG, &m, &err), 0);
	r = &m.reqs->v[0];
	assert_int_equal(r->trust, SP_SIGSTORE_PKI);
	assert_true(r->needs_cert_roots);
	assert_string_equal(r->pki.ca_intermediates.paths[0], "/path/to/pki_intermediate_crts.pem");
	assert_string_equal(r->pki.subject_hostname, "test-user.example.com");
	assert_int_equal(r->rekor_keys.kind, SP_KEYS_NONE);

	assert_int_equal(sp_policy_evaluate(p,
					    "hostname:5000/myns/sigstore-signed-allows-malicious-tag-substitution:x",
					    DIG, &m, &err),
			 0);
	r = &m.reqs->v[0];
	assert_int_equal(r->trust, SP_SIGSTORE_KEYS);
	assert_false(r->needs_cert_roots);
	assert_string_equal(r->keys.paths[0], "/path/to/sigstore-pubkey.pub");
	assert_int_equal(r->identity.type, SP_ID_MATCH_REPOSITORY);
	sp_policy_free(p);

	/* "Completely disable security" */
	p = parse_ok("{\n    \"default\": [{\"type\": \"insecureAcceptAnything\"}]\n}");
	assert_int_equal(only_req(p)->type, SP_REQ_INSECURE_ACCEPT_ANYTHING);
	sp_policy_free(p);
}

/* ---- scopes ------------------------------------------------------------- */

static void test_precedence(void **state)
{
	(void)state;
	struct sp_policy *p = parse_ok("{\"default\":" REJECT ",\"transports\":{\"docker\":{"
				       "\"reg.example.com:5000/ns/repo:v1\":" ACCEPT ","
				       "\"reg.example.com:5000/ns/repo@" DIG "\":" ACCEPT ","
				       "\"reg.example.com:5000/ns/repo\":" ACCEPT ","
				       "\"reg.example.com:5000/ns\":" ACCEPT ","
				       "\"reg.example.com:5000\":" ACCEPT ","
				       "\"reg.example.com\":" ACCEPT ","
				       "\"*.sub.example.com\":" ACCEPT ","
				       "\"*.example.com\":" ACCEPT ","
				       "\"\":" ACCEPT "}}}");

	assert_int_equal(p->n_scopes, 8);
	assert_true(p->has_docker_default);
	/* exact tag > repository */
	expect_scope(p, "reg.example.com:5000/ns/repo:v1", NULL, "transports.docker[\"reg.example.com:5000/ns/repo:v1\"]");
	expect_scope(p, "reg.example.com:5000/ns/repo:v2", NULL, "transports.docker[\"reg.example.com:5000/ns/repo\"]");
	/* exact digest > repository */
	expect_scope(p, "reg.example.com:5000/ns/repo@" DIG, DIG,
		     "transports.docker[\"reg.example.com:5000/ns/repo@" DIG "\"]");
	expect_scope(p, "reg.example.com:5000/ns/repo@" DIG2, DIG2,
		     "transports.docker[\"reg.example.com:5000/ns/repo\"]");
	/* a bare name is :latest */
	expect_scope(p, "reg.example.com:5000/ns/repo", NULL, "transports.docker[\"reg.example.com:5000/ns/repo\"]");
	/* repository > namespace, at any depth */
	expect_scope(p, "reg.example.com:5000/ns/other", NULL, "transports.docker[\"reg.example.com:5000/ns\"]");
	expect_scope(p, "reg.example.com:5000/ns/deep/er/repo:1", NULL, "transports.docker[\"reg.example.com:5000/ns\"]");
	/* namespace > host:port */
	expect_scope(p, "reg.example.com:5000/x/y", NULL, "transports.docker[\"reg.example.com:5000\"]");
	/* host (no port) */
	expect_scope(p, "reg.example.com/ns/repo:v1", NULL, "transports.docker[\"reg.example.com\"]");
	/* c/image: a host scope without port does not cover another port of
	 * that host; the wildcard (port stripped) does */
	expect_scope(p, "reg.example.com:6000/a", NULL, "transports.docker[\"*.example.com\"]");
	/* *.sub.domain > *.domain */
	expect_scope(p, "a.sub.example.com/x", NULL, "transports.docker[\"*.sub.example.com\"]");
	expect_scope(p, "b.a.sub.example.com:443/x", NULL, "transports.docker[\"*.sub.example.com\"]");
	expect_scope(p, "sub.example.com/x", NULL, "transports.docker[\"*.example.com\"]");
	/* transport default > default */
	expect_scope(p, "example.com/x", NULL, "transports.docker[\"\"]");
	expect_scope(p, "busybox", NULL, "transports.docker[\"\"]");
	sp_policy_free(p);

	/* the same without "": the global default */
	p = parse_ok("{\"default\":" REJECT ",\"transports\":{\"docker\":{\"*.example.com\":" ACCEPT "}}}");
	expect_scope(p, "example.com/x", NULL, "default");
	expect_scope(p, "quay.io/x", NULL, "default");
	sp_policy_free(p);
}

static void test_reject_scope(void **state)
{
	struct sp_match m;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	struct sp_policy *p = parse_ok("{\"default\":" ACCEPT ",\"transports\":{\"docker\":{"
				       "\"docker.io/library/evil\":" REJECT ","
				       "\"quay.io/ok\":[{\"type\":\"insecureAcceptAnything\"},{\"type\":\"reject\"}]}}}");
	assert_int_equal(sp_policy_evaluate(p, "evil:1", DIG, &m, &err), 0);
	assert_int_equal(m.kind, SP_MATCH_SCOPE);
	assert_int_equal(m.reqs->n, 1);
	assert_int_equal(m.reqs->v[0].type, SP_REQ_REJECT);
	assert_string_equal(m.reqs->v[0].where, "transports.docker[\"docker.io/library/evil\"][0]");
	/* the whole list applies, in order */
	assert_int_equal(sp_policy_evaluate(p, "quay.io/ok/x", DIG, &m, &err), 0);
	assert_int_equal(m.reqs->n, 2);
	assert_int_equal(m.reqs->v[0].type, SP_REQ_INSECURE_ACCEPT_ANYTHING);
	assert_int_equal(m.reqs->v[1].type, SP_REQ_REJECT);
	assert_string_equal(m.reqs->v[1].where, "transports.docker[\"quay.io/ok\"][1]");
	expect_scope(p, "alpine", NULL, "default");
	sp_policy_free(p);
}

static void test_wildcards(void **state)
{
	(void)state;
	struct sp_policy *p =
		parse_ok("{\"default\":" REJECT ",\"transports\":{\"docker\":{\"*.example.com\":" ACCEPT "}}}");
	expect_scope(p, "a.example.com/x", NULL, "transports.docker[\"*.example.com\"]");
	expect_scope(p, "a.b.example.com/x", NULL, "transports.docker[\"*.example.com\"]");
	expect_scope(p, "a.example.com:5000/x", NULL, "transports.docker[\"*.example.com\"]");
	expect_scope(p, "example.com/x", NULL, "default");
	expect_scope(p, "aexample.com/x", NULL, "default");
	expect_scope(p, "a.example.com.evil.io/x", NULL, "default");
	expect_scope(p, "example.com.a.example.org/x", NULL, "default");
	sp_policy_free(p);
}

static void test_evaluate_errors(void **state)
{
	struct sp_match m;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	struct sp_policy *p = parse_ok(debian_policy);
	assert_int_equal(sp_policy_evaluate(p, "Bad/Ref", DIG, &m, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(sp_policy_evaluate(p, "quay.io/a:t@" DIG, DIG, &m, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	assert_int_equal(sp_policy_evaluate(p, "busybox", "sha256:abc", &m, &err), -1);
	assert_non_null(strstr(err.msg, "manifest digest"));
	assert_int_equal(sp_policy_evaluate(p, "busybox", NULL, &m, &err), -1);
	assert_int_equal(err.code, CRISP_INVALID_ARGUMENT);
	/* a by-digest reference must be the manifest pulled */
	assert_int_equal(sp_policy_evaluate(p, "busybox@" DIG, DIG2, &m, &err), -1);
	assert_int_equal(err.code, CRISP_PERMISSION_DENIED);
	assert_int_equal(sp_policy_evaluate(p, "busybox@" DIG, DIG, &m, &err), 0);
	sp_policy_free(p);
}

/* ---- requirements ------------------------------------------------------- */

static void test_key_sources(void **state)
{
	struct sp_policy *p;
	const struct sp_requirement *r;

	(void)state;
	p = parse_ok("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"aGVs\\nbG8=\"}]}");
	r = only_req(p);
	assert_int_equal(r->keys.kind, SP_KEYS_DATA);
	assert_string_equal(r->keys.field, "keyData");
	assert_int_equal(r->keys.n, 1);
	assert_int_equal(r->keys.data[0].len, 5);
	assert_memory_equal(r->keys.data[0].data, "hello", 5);
	assert_int_equal(r->identity.type, SP_ID_MATCH_REPO_DIGEST_OR_EXACT);
	sp_policy_free(p);

	p = parse_ok("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k.gpg\","
		     "\"signedIdentity\":{\"type\":\"matchExact\"}}]}");
	r = only_req(p);
	assert_int_equal(r->keys.kind, SP_KEYS_PATHS);
	assert_string_equal(r->keys.field, "keyPath");
	assert_string_equal(r->keys.paths[0], "/k.gpg");
	assert_int_equal(r->identity.type, SP_ID_MATCH_EXACT);
	sp_policy_free(p);

	p = parse_ok("{\"default\":[{\"type\":\"sigstoreSigned\",\"keyDatas\":[\"YQ==\",\"YmM=\"],"
		     "\"rekorPublicKeyDatas\":[\"ZA==\"]}]}");
	r = only_req(p);
	assert_int_equal(r->trust, SP_SIGSTORE_KEYS);
	assert_int_equal(r->keys.n, 2);
	assert_memory_equal(r->keys.data[1].data, "bc", 2);
	assert_int_equal(r->rekor_keys.kind, SP_KEYS_DATA);
	assert_memory_equal(r->rekor_keys.data[0].data, "d", 1);
	sp_policy_free(p);

	p = parse_ok("{\"default\":[{\"type\":\"sigstoreSigned\",\"fulcio\":{\"caData\":\"YQ==\",\"oidcIssuer\":"
		     "\"https://i\",\"subjectEmail\":\"a@b\"},\"rekorPublicKeyData\":\"YQ==\"}]}");
	r = only_req(p);
	assert_int_equal(r->trust, SP_SIGSTORE_FULCIO);
	assert_int_equal(r->fulcio.ca.kind, SP_KEYS_DATA);
	assert_true(r->needs_cert_roots);
	sp_policy_free(p);
}

/* ---- signedIdentity ----------------------------------------------------- */

static void test_identity_match_exact(void **state)
{
	struct sp_identity id = { .type = SP_ID_MATCH_EXACT };

	(void)state;
	assert_true(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/b:v1"));
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/b:v2"));
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/b"));
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/c:v1"));
	assert_true(sp_identity_matches(&id, "quay.io/a/b@" DIG, "quay.io/a/b@" DIG));
	assert_false(sp_identity_matches(&id, "quay.io/a/b@" DIG, "quay.io/a/b:v1"));
	/* both sides normalised */
	assert_true(sp_identity_matches(&id, "busybox", "docker.io/library/busybox:latest"));
	assert_true(sp_identity_matches(&id, "docker.io/library/busybox:1", "busybox:1"));
	/* unparsable signature identity */
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", "Quay.io/A/b:v1x/"));
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", ""));
	assert_false(sp_identity_matches(&id, "not a ref", "quay.io/a/b:v1"));
	assert_false(sp_identity_matches(NULL, "quay.io/a/b:v1", "quay.io/a/b:v1"));
}

static void test_identity_repo_digest_or_exact(void **state)
{
	struct sp_identity id = { .type = SP_ID_MATCH_REPO_DIGEST_OR_EXACT };

	(void)state;
	/* by tag: exact */
	assert_true(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/b:v1"));
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/b:v2"));
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/b@" DIG));
	/* by digest: same repository, any tag or digest */
	assert_true(sp_identity_matches(&id, "quay.io/a/b@" DIG, "quay.io/a/b:v7"));
	assert_true(sp_identity_matches(&id, "quay.io/a/b@" DIG, "quay.io/a/b@" DIG2));
	assert_false(sp_identity_matches(&id, "quay.io/a/b@" DIG, "quay.io/a/c:v7"));
	/* the signature must name a tag or digest */
	assert_false(sp_identity_matches(&id, "quay.io/a/b@" DIG, "quay.io/a/b"));
	/* a bare name as pulled is :latest */
	assert_true(sp_identity_matches(&id, "quay.io/a/b", "quay.io/a/b:latest"));
}

static void test_identity_match_repository(void **state)
{
	struct sp_identity id = { .type = SP_ID_MATCH_REPOSITORY };

	(void)state;
	assert_true(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/b"));
	assert_true(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/b:other"));
	assert_true(sp_identity_matches(&id, "quay.io/a/b@" DIG, "quay.io/a/b@" DIG2));
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a/c"));
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io/a"));
	assert_false(sp_identity_matches(&id, "quay.io/a/b:v1", "quay.io:443/a/b"));
	assert_true(sp_identity_matches(&id, "busybox", "index.docker.io/library/busybox"));
}

static void test_identity_exact_reference(void **state)
{
	struct sp_policy *p = parse_ok("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":"
				       "\"/k\",\"signedIdentity\":{\"type\":\"exactReference\",\"dockerReference\":"
				       "\"upstream.io/p/b:v1\"}}]}");
	const struct sp_identity *id = &only_req(p)->identity;

	(void)state;
	assert_int_equal(id->type, SP_ID_EXACT_REFERENCE);
	assert_string_equal(id->docker_reference, "upstream.io/p/b:v1");
	/* the image reference does not matter */
	assert_true(sp_identity_matches(id, "mirror.local/x/y:z", "upstream.io/p/b:v1"));
	assert_false(sp_identity_matches(id, "mirror.local/x/y:z", "upstream.io/p/b:v2"));
	assert_false(sp_identity_matches(id, "mirror.local/x/y:z", "upstream.io/p/b"));
	assert_false(sp_identity_matches(id, "upstream.io/p/b:v1", "upstream.io/p/c:v1"));
	sp_policy_free(p);

	/* normalised: "busybox:1" is docker.io/library/busybox:1 */
	p = parse_ok("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
		     "\"signedIdentity\":{\"type\":\"exactReference\",\"dockerReference\":\"busybox:1\"}}]}");
	assert_true(sp_identity_matches(&only_req(p)->identity, "m.io/b:2", "docker.io/library/busybox:1"));
	sp_policy_free(p);
}

static void test_identity_exact_repository(void **state)
{
	struct sp_policy *p = parse_ok("{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\","
				       "\"signedIdentity\":{\"type\":\"exactRepository\",\"dockerRepository\":"
				       "\"upstream.io/p/b\"}}]}");
	const struct sp_identity *id = &only_req(p)->identity;

	(void)state;
	assert_int_equal(id->type, SP_ID_EXACT_REPOSITORY);
	assert_true(sp_identity_matches(id, "mirror.local/x/y:z", "upstream.io/p/b:any"));
	assert_true(sp_identity_matches(id, "mirror.local/x/y:z", "upstream.io/p/b"));
	assert_true(sp_identity_matches(id, "mirror.local/x/y:z", "upstream.io/p/b@" DIG));
	assert_false(sp_identity_matches(id, "mirror.local/x/y:z", "upstream.io/p/c:v"));
	assert_false(sp_identity_matches(id, "upstream.io/p/b:v", "mirror.local/x/y:z"));
	sp_policy_free(p);
}

static void test_identity_remap(void **state)
{
	struct sp_policy *p = parse_ok(
		"{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
		"\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":\"private-mirror:5000/vendor-mirror\","
		"\"signedPrefix\":\"vendor.example.com\"}}]}");
	const struct sp_identity *id = &only_req(p)->identity;

	(void)state;
	assert_int_equal(id->type, SP_ID_REMAP_IDENTITY);
	assert_string_equal(id->prefix, "private-mirror:5000/vendor-mirror");
	assert_string_equal(id->signed_prefix, "vendor.example.com");
	/* the man page's example */
	assert_true(sp_identity_matches(id, "private-mirror:5000/vendor-mirror/producta/image1:latest",
					"vendor.example.com/producta/image1:latest"));
	assert_false(sp_identity_matches(id, "private-mirror:5000/vendor-mirror/producta/image1:latest",
					 "private-mirror:5000/vendor-mirror/producta/image1:latest"));
	assert_false(sp_identity_matches(id, "private-mirror:5000/vendor-mirror/producta/image1:latest",
					 "vendor.example.com/producta/image1:v2"));
	/* then matchRepoDigestOrExact: by digest, the repository suffices */
	assert_true(sp_identity_matches(id, "private-mirror:5000/vendor-mirror/producta/image1@" DIG,
					"vendor.example.com/producta/image1:v3"));
	assert_false(sp_identity_matches(id, "private-mirror:5000/vendor-mirror/producta/image1@" DIG,
					 "vendor.example.com/productb/image1:v3"));
	/* outside the prefix: unchanged */
	assert_true(sp_identity_matches(id, "other.example.com/x:1", "other.example.com/x:1"));
	/* the prefix ends at a path boundary */
	assert_true(sp_identity_matches(id, "private-mirror:5000/vendor-mirrorx/a:1",
					"private-mirror:5000/vendor-mirrorx/a:1"));
	assert_false(sp_identity_matches(id, "private-mirror:5000/vendor-mirrorx/a:1", "vendor.example.comx/a:1"));
	/* the prefix as a whole repository */
	assert_false(sp_identity_matches(id, "private-mirror:5000/vendor-mirror:1", "vendor.example.com:1"));
	sp_policy_free(p);

	/* rewriting must give the fully expanded form (c/image ParseNamed) */
	p = parse_ok("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
		     "\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":\"mirror.local/dh\","
		     "\"signedPrefix\":\"docker.io\"}}]}");
	id = &only_req(p)->identity;
	assert_false(sp_identity_matches(id, "mirror.local/dh/busybox:1", "docker.io/library/busybox:1"));
	assert_false(sp_identity_matches(id, "mirror.local/dh/busybox:1", "docker.io/busybox:1"));
	assert_true(sp_identity_matches(id, "mirror.local/dh/library/busybox:1", "busybox:1"));
	sp_policy_free(p);

	/* host-only prefixes */
	p = parse_ok("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\","
		     "\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":\"mirror.local:5000\","
		     "\"signedPrefix\":\"quay.io\"}}]}");
	id = &only_req(p)->identity;
	assert_true(sp_identity_matches(id, "mirror.local:5000/a/b:1", "quay.io/a/b:1"));
	assert_false(sp_identity_matches(id, "mirror.local/a/b:1", "quay.io/a/b:1"));
	sp_policy_free(p);
}

/* ---- errors -------------------------------------------------------------- */

static void test_errors_structure(void **state)
{
	(void)state;
	expect_err("", "line 1");
	expect_err("{", "line 1");
	expect_err("{\"default\":" ACCEPT "} x", "line 1");
	expect_err("[1]", "(top level): must be an object, not an array");
	expect_err("{}", "default: required field is missing");
	expect_err("{\"default\":[]}", "default: the list of requirements must not be empty");
	expect_err("{\"default\":{}}", "default: must be an array of requirements, not an object");
	expect_err("{\"default\":null}", "default: must be an array of requirements, not null");
	expect_err("{\"default\":" ACCEPT ",\"foo\":1}", "foo: unknown field");
	expect_err("{\"default\":" ACCEPT ",\"a b\":1}", "[\"a b\"]: unknown field");
	expect_err("{\"default\":" ACCEPT ",\"default\":" REJECT "}", "duplicate object key");
	expect_err("{\"default\":[{\"type\":\"reject\",\"type\":\"reject\"}]}", "duplicate object key");
	expect_err("{\"default\":" ACCEPT ",\"transports\":{\"docker\":{\"quay.io\":" ACCEPT ",\"quay.io\":" ACCEPT
		   "}}}",
		   "duplicate object key");
	expect_err("{\"default\":[\"reject\"]}", "default[0]: must be an object, not a string");
	expect_err("{\"default\":[{}]}", "default[0].type: required field is missing");
	expect_err("{\"default\":[{\"type\":1}]}", "default[0].type: must be a string, not a number");
	expect_err("{\"default\":[{\"type\":\"reject\\u0000\"}]}", "line 1");
	expect_err("{\"default\":" ACCEPT ",\"transports\":[]}", "transports: must be an object, not an array");
	expect_err("{\"default\":" ACCEPT ",\"transports\":{\"docker\":[]}}",
		   "transports.docker: must be an object, not an array");
	expect_err("{\"default\":" ACCEPT ",\"transports\":{\"docker\":{\"quay.io\":[]}}}",
		   "transports.docker[\"quay.io\"]: the list of requirements must not be empty");
	expect_err("{\"default\":" ACCEPT ",\"transports\":{\"dokcer\":{}}}", "transports.dokcer: unknown transport");
	expect_err("{\"default\":" ACCEPT ",\"transports\":{\"docker-daemon\":{\"\":[{\"type\":\"nope\"}]}}}",
		   "transports.docker-daemon[\"\"][0].type: unknown requirement type 'nope'");
	expect_err("{\"default\":" ACCEPT ",\"transports\":{\"docker\":{\"quay.io\":" ACCEPT ",\"r.io/a\":[{\"type\":"
		   "\"reject\",\"x\":1}]}}}",
		   "transports.docker[\"r.io/a\"][0].x: unknown field");
}

static void test_errors_requirements(void **state)
{
	(void)state;
	expect_req_err("{\"type\":\"acceptEverything\"}", "default[0].type: unknown requirement type 'acceptEverything'");
	expect_req_err("{\"type\":\"signedBaseLayer\",\"baseLayerIdentity\":{\"type\":\"matchExact\"}}",
		       "default[0].type: requirement type 'signedBaseLayer' is not implemented");
	expect_req_err("{\"type\":\"insecureAcceptAnything\",\"keyPath\":\"/k\"}", "default[0].keyPath: unknown field");
	expect_req_err("{\"type\":\"reject\",\"signedIdentity\":{\"type\":\"matchExact\"}}",
		       "default[0].signedIdentity: unknown field");
	/* signedBy */
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPat\":\"/k\"}", "default[0].keyPat: unknown field");
	expect_req_err("{\"type\":\"signedBy\",\"keyPath\":\"/k\"}", "default[0].keyType: required field is missing");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"X509Certificates\",\"keyPath\":\"/k\"}",
		       "default[0].keyType: keyType 'X509Certificates' is not implemented");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"signedByGPGKeys\",\"keyPath\":\"/k\"}",
		       "default[0].keyType: keyType 'signedByGPGKeys' is not implemented");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"gpg\",\"keyPath\":\"/k\"}",
		       "default[0].keyType: unknown keyType 'gpg'");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\",\"keyData\":\"YQ==\"}",
		       "default[0]: exactly one of keyPath, keyPaths and keyData must be specified, more than one present");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\",\"keyPaths\":[\"/k\"]}",
		       "more than one present");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\"}",
		       "default[0]: exactly one of keyPath, keyPaths and keyData must be specified, none of them present");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"not base64!\"}",
		       "default[0].keyData: is not valid base64 data");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"YQ\"}",
		       "default[0].keyData: is not valid base64 data");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"\"}", "default[0].keyData: must not be empty");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":7}",
		       "default[0].keyData: must be a string (base64), not a number");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"k.gpg\"}",
		       "default[0].keyPath: 'k.gpg' is not an absolute path");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":null}",
		       "default[0].keyPath: must be a string, not null");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":[]}", "default[0].keyPaths: must not be empty");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":[\"/a\",3]}",
		       "default[0].keyPaths[1]: must be a string, not a number");
	expect_req_err("{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":\"/a\"}",
		       "default[0].keyPaths: must be an array, not a string");
	/* sigstoreSigned */
	expect_req_err("{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"keyData\":\"YQ==\"}",
		       "default[0]: exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be specified, "
		       "more than one present");
	expect_req_err("{\"type\":\"sigstoreSigned\"}", "none of them present");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\"}",
		       "default[0].keyType: unknown field");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"keyDatas\":[\"YQ==\",\"%%\"]}",
		       "default[0].keyDatas[1]: is not valid base64 data");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"rekorPublicKeyPath\":\"/r\","
		       "\"rekorPublicKeyData\":\"YQ==\"}",
		       "default[0]: at most one of rekorPublicKeyPath");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"fulcio\":{\"caPath\":\"/c\",\"oidcIssuer\":\"i\","
		       "\"subjectEmail\":\"e\"}}",
		       "default[0]: one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and "
		       "rekorPublicKeyDatas must be specified with fulcio");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"fulcio\":{\"caPath\":\"/c\",\"subjectEmail\":\"e\"},"
		       "\"rekorPublicKeyPath\":\"/r\"}",
		       "default[0].fulcio.oidcIssuer: required field is missing");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"fulcio\":{\"caPath\":\"/c\",\"caData\":\"YQ==\",\"oidcIssuer\":"
		       "\"i\",\"subjectEmail\":\"e\"},\"rekorPublicKeyPath\":\"/r\"}",
		       "default[0].fulcio: exactly one of caPath and caData must be specified, both present");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"fulcio\":{\"caPath\":\"/c\",\"oidcIssuer\":\"i\","
		       "\"subjectEmail\":\"e\",\"subject\":\"x\"},\"rekorPublicKeyPath\":\"/r\"}",
		       "default[0].fulcio.subject: unknown field");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"fulcio\":{\"caPath\":\"/c\",\"oidcIssuer\":\"\","
		       "\"subjectEmail\":\"e\"},\"rekorPublicKeyPath\":\"/r\"}",
		       "default[0].fulcio.oidcIssuer: must not be empty");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"fulcio\":\"x\",\"rekorPublicKeyPath\":\"/r\"}",
		       "default[0].fulcio: must be an object, not a string");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"pki\":{\"caRootsPath\":\"/c\",\"subjectEmail\":\"e\"},"
		       "\"rekorPublicKeyPath\":\"/r\"}",
		       "default[0]: rekor public keys are not supported with pki");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"pki\":{\"caRootsPath\":\"/c\"}}",
		       "default[0].pki: at least one of subjectEmail and subjectHostname must be specified");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"pki\":{\"subjectEmail\":\"e\"}}",
		       "default[0].pki: exactly one of caRootsPath and caRootsData must be specified, none of them present");
	expect_req_err("{\"type\":\"sigstoreSigned\",\"pki\":{\"caRootsPath\":\"/c\",\"caIntermediatesPath\":\"/i\","
		       "\"caIntermediatesData\":\"YQ==\",\"subjectEmail\":\"e\"}}",
		       "default[0].pki: caIntermediatesPath and caIntermediatesData cannot be used together");
}

static void test_errors_identity(void **state)
{
	(void)state;
#define SB(ident) "{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\",\"signedIdentity\":" ident "}"
	expect_req_err(SB("{\"type\":\"matchAnything\"}"),
		       "default[0].signedIdentity.type: unknown signedIdentity type 'matchAnything'");
	expect_req_err(SB("\"matchExact\""), "default[0].signedIdentity: must be an object, not a string");
	expect_req_err(SB("{}"), "default[0].signedIdentity.type: required field is missing");
	expect_req_err(SB("{\"type\":\"matchExact\",\"dockerReference\":\"a.io/b:c\"}"),
		       "default[0].signedIdentity.dockerReference: unknown field");
	expect_req_err(SB("{\"type\":\"exactReference\"}"),
		       "default[0].signedIdentity.dockerReference: required field is missing");
	expect_req_err(SB("{\"type\":\"exactReference\",\"dockerReference\":\"a.io/b\"}"),
		       "default[0].signedIdentity.dockerReference: 'a.io/b' contains neither a tag nor a digest");
	expect_req_err(SB("{\"type\":\"exactReference\",\"dockerReference\":\"a.io/B:c\"}"),
		       "default[0].signedIdentity.dockerReference: invalid reference");
	expect_req_err(SB("{\"type\":\"exactRepository\",\"dockerRepository\":\"a.io/b:c\"}"),
		       "default[0].signedIdentity.dockerRepository: 'a.io/b:c' must name a repository");
	expect_req_err(SB("{\"type\":\"exactRepository\",\"dockerRepository\":\"\"}"),
		       "default[0].signedIdentity.dockerRepository: invalid reference");
	expect_req_err(SB("{\"type\":\"remapIdentity\",\"prefix\":\"a.io\"}"),
		       "default[0].signedIdentity.signedPrefix: required field is missing");
	expect_req_err(SB("{\"type\":\"remapIdentity\",\"prefix\":\"\",\"signedPrefix\":\"b.io\"}"),
		       "default[0].signedIdentity.prefix: '' is not a valid");
	expect_req_err(SB("{\"type\":\"remapIdentity\",\"prefix\":\"a.io/\",\"signedPrefix\":\"b.io\"}"),
		       "default[0].signedIdentity.prefix: 'a.io/' is not a valid");
	expect_req_err(SB("{\"type\":\"remapIdentity\",\"prefix\":\"a.io\",\"signedPrefix\":\"b.io/X\"}"),
		       "default[0].signedIdentity.signedPrefix: 'b.io/X' is not a valid");
	expect_req_err(SB("{\"type\":\"remapIdentity\",\"prefix\":\"a.io/x:tag\",\"signedPrefix\":\"b.io\"}"),
		       "default[0].signedIdentity.prefix");
	expect_req_err(SB("{\"type\":\"remapIdentity\",\"prefix\":\"*.a.io\",\"signedPrefix\":\"b.io\"}"),
		       "default[0].signedIdentity.prefix");
#undef SB
}

static void test_errors_scopes(void **state)
{
	static const struct {
		const char *scope, *want;
	} bad[] = {
		{ "busybox", "not in the fully expanded form" },
		{ "library/busybox", "not in the fully expanded form" },
		{ "docker.io/busybox:latest", "not in the fully expanded form" },
		{ "index.docker.io/library/busybox", "index.docker.io" },
		{ "quay.io/A", "invalid repository path component" },
		{ "quay.io/a/", "invalid repository path component" },
		{ "quay.io//a", "invalid repository path component" },
		{ "quay.io/a:t@" DIG, "both a tag and a digest" },
		{ "quay.io/a@sha256:abc", "not a valid image reference" },
		{ "quay.io/a:", "not a valid image reference" },
		{ "*.example.*", "not a valid wildcard" },
		{ "example*.*.com", "has a '*'" },
		{ "*.example.com:5000", "not a valid wildcard" },
		{ "*.example.com/ns", "not a valid wildcard" },
		{ "*.", "not a valid wildcard" },
		{ "*", "has a '*'" },
		{ "quay.io:x", "valid host[:port]" },
		{ "-quay.io", "valid host[:port]" },
		{ "quay_io.com", "valid host[:port]" },
		{ "https://quay.io/a", "valid host[:port]" },
	};
	char json[512], want[256];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(json, sizeof json, "{\"default\":" ACCEPT ",\"transports\":{\"docker\":{\"%s\":" ACCEPT "}}}",
			 bad[i].scope);
		snprintf(want, sizeof want, "transports.docker[\"%s\"]: scope ", bad[i].scope);
		expect_err(json, want);
		expect_err(json, bad[i].want);
	}
	/* and ones that are fine */
	struct sp_policy *p = parse_ok("{\"default\":" ACCEPT ",\"transports\":{\"docker\":{"
				       "\"localhost\":" ACCEPT ",\"localhost:5000/a\":" ACCEPT ",\"*.com\":" ACCEPT
				       ",\"Reg.Example.COM/a\":" ACCEPT ",\"docker.io/library/busybox:1.36\":" ACCEPT
				       ",\"docker.io/library/busybox@" DIG "\":" ACCEPT "}}}");
	assert_int_equal(p->n_scopes, 6);
	expect_scope(p, "localhost/x", NULL, "transports.docker[\"localhost\"]");
	expect_scope(p, "Reg.Example.COM/a:1", NULL, "transports.docker[\"Reg.Example.COM/a\"]");
	expect_scope(p, "busybox:1.36", NULL, "transports.docker[\"docker.io/library/busybox:1.36\"]");
	expect_scope(p, "busybox@" DIG, DIG, "transports.docker[\"docker.io/library/busybox@" DIG "\"]");
	expect_scope(p, "quay.com/x", NULL, "transports.docker[\"*.com\"]");
	sp_policy_free(p);
	/* other transports' scopes are not interpreted */
	p = parse_ok("{\"default\":" REJECT ",\"transports\":{\"dir\":{\"/var/images\":" ACCEPT
		     "},\"containers-storage\":{\"[overlay@/var/lib/containers/storage]\":" ACCEPT "}}}");
	assert_int_equal(p->n_ignored_transports, 2);
	expect_scope(p, "quay.io/x", NULL, "default");
	sp_policy_free(p);
}

static void test_error_path_escaping(void **state)
{
	char json[1024], key[400];

	(void)state;
	expect_err("{\"default\":" ACCEPT ",\"transports\":{\"docker\":{\"a\\\"b\\n\":" ACCEPT "}}}",
		   "transports.docker[\"a\\\"b\\x0a\"]: scope");
	memset(key, 'a', sizeof key);
	key[sizeof key - 1] = '\0';
	snprintf(json, sizeof json, "{\"default\":" ACCEPT ",\"transports\":{\"docker\":{\"quay.io/%s\":" ACCEPT "}}}",
		 key);
	expect_err(json, "...\"]: scope");
}

static void test_oversize(void **state)
{
	struct sp_policy *p = NULL;
	crisp_err_t err = CRISP_ERR_INIT;

	(void)state;
	assert_int_equal(sp_policy_parse("{}", SP_POLICY_MAX_BYTES + 1, &p, &err), -1);
	assert_non_null(strstr(err.msg, "larger than"));
	sp_policy_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_debian_default),
		cmocka_unit_test(test_fedora_default),
		cmocka_unit_test(test_manpage_examples),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_reject_scope),
		cmocka_unit_test(test_wildcards),
		cmocka_unit_test(test_evaluate_errors),
		cmocka_unit_test(test_key_sources),
		cmocka_unit_test(test_identity_match_exact),
		cmocka_unit_test(test_identity_repo_digest_or_exact),
		cmocka_unit_test(test_identity_match_repository),
		cmocka_unit_test(test_identity_exact_reference),
		cmocka_unit_test(test_identity_exact_repository),
		cmocka_unit_test(test_identity_remap),
		cmocka_unit_test(test_errors_structure),
		cmocka_unit_test(test_errors_requirements),
		cmocka_unit_test(test_errors_identity),
		cmocka_unit_test(test_errors_scopes),
		cmocka_unit_test(test_error_path_escaping),
		cmocka_unit_test(test_oversize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
