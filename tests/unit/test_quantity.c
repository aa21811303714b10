/* crisp_parse_quantity: Kubernetes quantities as kubelet writes bandwidth
 * annotations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"

static uint64_t q(const char *s)
{
	uint64_t v = 0xdead;

	assert_int_equal(crisp_parse_quantity(s, &v), 0);
	return v;
}

static void bad(const char *s)
{
	uint64_t v = 7;

	assert_int_equal(crisp_parse_quantity(s, &v), -1);
	assert_int_equal(v, 7); /* untouched */
}

static void test_quantities(void **state)
{
	(void)state;
	assert_int_equal(q("0"), 0);
	assert_int_equal(q("1000"), 1000);
	assert_int_equal(q("1k"), 1000);
	assert_int_equal(q("10M"), 10000000);
	assert_int_equal(q("2G"), 2000000000ULL);
	assert_int_equal(q("1T"), 1000000000000ULL);
	assert_int_equal(q("1P"), 1000000000000000ULL);
	assert_int_equal(q("1E"), 1000000000000000000ULL);
	assert_int_equal(q("1Ki"), 1024);
	assert_int_equal(q("3Mi"), 3ULL << 20);
	assert_int_equal(q("1Ei"), 1ULL << 60);
	assert_int_equal(q("1.5M"), 1500000);
	assert_int_equal(q("0.5Ki"), 512);
	assert_int_equal(q(".5M"), 500000); /* as Kubernetes reads it */
	assert_int_equal(q("1.0001k"), 1001);       /* rounded up */
	assert_int_equal(q("0.000000000000000000001E"), 1);
	assert_int_equal(q("18446744073709551615"), UINT64_MAX);
	assert_int_equal(q("15Ei"), 15ULL << 60);
}

static void test_refused(void **state)
{
	(void)state;
	bad(NULL);
	bad("");
	bad("M");
	bad("1.M");
	bad("-1M");
	bad("+1M");
	bad("1m");      /* milli: never a bandwidth */
	bad("1Q");
	bad("1 M");
	bad("1M ");
	bad("1e3");     /* exponents are not accepted */
	bad("1MM");
	bad("1Kii");
	bad("18446744073709551616");
	bad("16Ei");
	bad("20E");
	bad("0x10");
	bad("11111111111111111111111111111111111111111111111111111111111111111M");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantities),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
