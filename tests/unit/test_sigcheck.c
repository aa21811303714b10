/* The signature verifier child's answer format (imaged/sigcheck.h):
 * accepted exactly as written, refused on every deviation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "imaged/sigcheck.h"

struct buf {
	uint8_t b[4096];
	size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void u32(struct buf *b, uint32_t v)
{
	put(b, &v, 4);
}

static void i32(struct buf *b, int32_t v)
{
	put(b, &v, 4);
}

static const char FPR[] = "0123456789ABCDEF0123456789ABCDEF01234567";

/* one fetched signature, then an accept and a refusal */
static void good(struct buf *b)
{
	memset(b, 0, sizeof *b);
	u32(b, 1);
	u32(b, 3);
	put(b, "sig", 3);
	u32(b, 2);
	i32(b, 0);
	i32(b, 0);
	u32(b, 0);
	u32(b, (uint32_t)strlen(FPR));
	put(b, FPR, strlen(FPR));
	i32(b, -1);
	i32(b, 7);
	u32(b, 6);
	put(b, "denied", 6);
	u32(b, 0);
}

static struct sigcheck_answer a;

static void test_good(void **state)
{
	struct buf b;

	(void)state;
	good(&b);
	assert_int_equal(sigcheck_parse_answer(b.b, b.n, 2, &a), 0);
	assert_int_equal(a.nfetched, 1);
	assert_memory_equal(a.fetched[0].p, "sig", 3);
	assert_int_equal(a.nres, 2);
	assert_int_equal(a.res[0].rc, 0);
	assert_int_equal(a.res[0].fprlen, strlen(FPR));
	assert_int_equal(a.res[1].rc, -1);
	assert_int_equal(a.res[1].code, 7);
	assert_memory_equal(a.res[1].msg, "denied", 6);
}

static void test_malformed(void **state)
{
	struct buf b;

	(void)state;
	good(&b);
	/* every truncation */
	for (size_t n = 0; n < b.n; n++)
		assert_int_equal(sigcheck_parse_answer(b.b, n, 2, &a), -1);
	/* trailing byte */
	b.b[b.n++] = 0;
	assert_int_equal(sigcheck_parse_answer(b.b, b.n, 2, &a), -1);
	/* not the number of requirements asked */
	good(&b);
	assert_int_equal(sigcheck_parse_answer(b.b, b.n, 1, &a), -1);
	assert_int_equal(sigcheck_parse_answer(b.b, b.n, 3, &a), -1);
	/* an empty fetched signature */
	good(&b);
	memset(b.b + 4, 0, 4);
	assert_int_equal(sigcheck_parse_answer(b.b, b.n, 2, &a), -1);
	/* rc other than 0 / -1 */
	good(&b);
	b.b[4 + 4 + 3 + 4] = 5;
	assert_int_equal(sigcheck_parse_answer(b.b, b.n, 2, &a), -1);
	/* a fingerprint that is not hex */
	good(&b);
	b.b[4 + 4 + 3 + 4 + 4 + 4 + 4 + 4] = 'x';
	assert_int_equal(sigcheck_parse_answer(b.b, b.n, 2, &a), -1);
	/* too many fetched signatures */
	memset(&b, 0, sizeof b);
	u32(&b, STORE_MAX_SIGS + 1);
	assert_int_equal(sigcheck_parse_answer(b.b, b.n, 0, &a), -1);
	/* an accept without a fingerprint */
	memset(&b, 0, sizeof b);
	u32(&b, 0);
	u32(&b, 1);
	i32(&b, 0);
	i32(&b, 0);
	u32(&b, 0);
	u32(&b, 0);
	assert_int_equal(sigcheck_parse_answer(b.b, b.n, 1, &a), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
