#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth-qr.h"
#include "file.h"
#include "mem.h"
#include "test-tmpdir.h"

static char *tmpdir;

static const char uri[] = "otpauth://totp/Coffer%20Mail:alice%40example.com"
			  "?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Coffer%20Mail"
			  "&algorithm=SHA1&digits=6&period=30";

static char *write_svg(const char *name, const char *text)
{
	const char *error;
	char *svg = auth_qr_svg(text, &error);
	assert_non_null(svg);
	char *path = mem_printf("%s/%s", tmpdir, name);
	assert_int_equal(file_write_atomic(path, svg, strlen(svg), 0600, &error), 0);
	mem_free(svg);
	return path;
}

static void test_svg_is_well_formed(void **state)
{
	char *path = write_svg("uri.svg", uri);
	/* Python's XML parser checks well-formedness; the rest checks the
	 * structure the contract promises. */
	char *cmd = mem_printf(
		"/usr/bin/python3 -c '"
		"import sys, xml.etree.ElementTree as ET\n"
		"ns = \"{http://www.w3.org/2000/svg}\"\n"
		"root = ET.parse(sys.argv[1]).getroot()\n"
		"assert root.tag == ns + \"svg\", root.tag\n"
		"vb = [int(v) for v in root.get(\"viewBox\").split()]\n"
		"assert vb[0] == 0 and vb[1] == 0 and vb[2] == vb[3], vb\n"
		"assert int(root.get(\"width\")) == vb[2] * %d == int(root.get(\"height\"))\n"
		"assert (vb[2] - 2 * %d - 21) %% 4 == 0, vb\n"
		"paths = root.findall(ns + \"path\")\n"
		"assert len(paths) == 1 and paths[0].get(\"d\").startswith(\"M%d %d\")\n"
		"' %s",
		AUTH_QR_MODULE_PX, AUTH_QR_QUIET_ZONE, AUTH_QR_QUIET_ZONE, AUTH_QR_QUIET_ZONE,
		path);
	assert_int_equal(system(cmd), 0);
	mem_free(cmd);
	mem_free(path);
}

static bool have_tool(const char *name)
{
	char *cmd = mem_printf("command -v %s >/dev/null 2>&1", name);
	int rc = system(cmd);
	mem_free(cmd);
	return rc == 0;
}

static void test_svg_decodes_back(void **state)
{
	if (!have_tool("rsvg-convert") || !have_tool("zbarimg")) {
		print_message("rsvg-convert or zbarimg missing (packages librsvg2-bin, "
			      "zbar-tools): skipping the decode check\n");
		skip();
	}
	static const char *const texts[] = {uri, "x", "Grüße & <tags> \"quoted\""};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char *svg = write_svg("decode.svg", texts[i]);
		char *png = mem_printf("%s/decode.png", tmpdir);
		char *cmd = mem_printf(
			"rsvg-convert -o %s %s 2>/dev/null && zbarimg -q --raw %s 2>/dev/null", png,
			svg, png);
		FILE *p = popen(cmd, "r");
		assert_non_null(p);
		char out[1024] = "";
		size_t n = fread(out, 1, sizeof(out) - 1, p);
		assert_int_equal(pclose(p), 0);
		out[n] = '\0';
		if (n > 0 && out[n - 1] == '\n')
			out[n - 1] = '\0';
		assert_string_equal(out, texts[i]);
		mem_free(cmd);
		mem_free(png);
		mem_free(svg);
	}
}

static void test_errors(void **state)
{
	const char *error;
	assert_null(auth_qr_svg("", &error));
	assert_non_null(strstr(error, "empty"));
	char *big = mem_alloc(4001);
	memset(big, 'a', 4000);
	big[4000] = '\0';
	assert_null(auth_qr_svg(big, &error));
	assert_non_null(strstr(error, "too long"));
	mem_free(big);
}

static int setup(void **state)
{
	tmpdir = test_tmpdir_create("auth-qr");
	return 0;
}

static int teardown(void **state)
{
	int rc = test_tmpdir_remove(&tmpdir);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_svg_is_well_formed),
		cmocka_unit_test(test_svg_decodes_back),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
