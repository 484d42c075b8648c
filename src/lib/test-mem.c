/* mem: aligned allocations are aligned, whole and freed like the others. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mem.h"

static void test_aligned(void **state)
{
	size_t aligns[] = {sizeof(void *), 64, 4096};
	for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		unsigned char *p = mem_alloc_aligned(aligns[i], 4 * 1024 * 1024);
		assert_int_equal((uintptr_t)p % aligns[i], 0);
		memset(p, 0xa5, 4 * 1024 * 1024); /* all of it is ours */
		mem_free(p);
	}
	mem_free(mem_alloc_aligned(4096, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aligned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
