#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "branding.h"

static void test_branding_names_and_colors(void **state)
{
	assert_true(branding_name_ok("Acme Vault"));
	assert_true(branding_name_ok("Archiv \xc3\xbc"));
	assert_false(branding_name_ok(""));
	assert_false(branding_name_ok("   "));
	assert_false(branding_name_ok("<b>x</b>"));
	assert_false(branding_name_ok("a\nb"));
	char longer[BRANDING_NAME_MAX + 2];
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_false(branding_name_ok(longer));
	assert_true(branding_color_ok("#8A1c7c"));
	assert_false(branding_color_ok("red"));
	assert_false(branding_color_ok("#12345g"));
	assert_false(branding_color_ok("#1234567"));
	assert_false(branding_color_ok("123456#"));
}

static int check(const char *text, const char **type_r)
{
	const char *error;
	return branding_logo_check((const unsigned char *)text, strlen(text), type_r, &error);
}

static void test_branding_logos(void **state)
{
	const char *type = NULL;
	assert_int_equal(check("<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>", &type),
			 0);
	assert_string_equal(type, "image/svg+xml");
	assert_int_equal(check("<?xml version=\"1.0\"?>\n<svg><g/></svg>", &type), 0);
	assert_int_equal(check("<svg><script>x</script></svg>", &type), -1);
	assert_int_equal(check("<svg><SCRIPT>x</SCRIPT></svg>", &type), -1);
	assert_int_equal(check("<svg onload=\"x\"></svg>", &type), -1);
	assert_int_equal(check("<svg><g\tONclick = 'x'/></svg>", &type), -1);
	assert_int_equal(check("<svg><a href=\"javascript:x\"/></svg>", &type), -1);
	assert_int_equal(check("<!DOCTYPE svg><svg/>", &type), -1);
	assert_int_equal(check("<svg><foreignObject/></svg>", &type), -1);
	assert_int_equal(check("<html></html>", &type), -1);
	assert_int_equal(check("GIF89a", &type), -1);
	/* a word with "on" in it is no handler */
	assert_int_equal(check("<svg><text font-family=\"x\">cotton = 1</text></svg>", &type), 0);

	static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0,
					    13,   'I', 'H', 'D', 'R',  0,    0,    0,    2, 0, 0,
					    0,    2,   8,   2,   0,    0,    0,    0,    0, 0, 0};
	const char *error;
	assert_int_equal(branding_logo_check(png, sizeof(png), &type, &error), 0);
	assert_string_equal(type, "image/png");
	unsigned char huge[sizeof(png)];
	memcpy(huge, png, sizeof(png));
	huge[17] = 0xff; /* width 16 M */
	assert_int_equal(branding_logo_check(huge, sizeof(huge), &type, &error), -1);
	assert_int_equal(branding_logo_check(png, 12, &type, &error), -1);
	assert_int_equal(branding_logo_check(png, 0, &type, &error), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_branding_names_and_colors),
		cmocka_unit_test(test_branding_logos),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
