#include "auth-qr.h"
#include "mem.h"
#include "str.h"
#include "tstr.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <qrencode.h>
#include <string.h>

static bool auth_qr_dark(const QRcode *qr, int x, int y)
{
	/* Bit 0 of each module byte is 1 for a dark module. */
	return (qr->data[y * qr->width + x] & 1) != 0;
}

/* One subpath per horizontal run of dark modules keeps the SVG small. */
static void auth_qr_append_path(struct str *svg, const QRcode *qr)
{
	str_append(svg, "<path fill=\"#000000\" d=\"");
	for (int y = 0; y < qr->width; y++) {
		int x = 0;
		while (x < qr->width) {
			if (!auth_qr_dark(qr, x, y)) {
				x++;
				continue;
			}
			int start = x;
			while (x < qr->width && auth_qr_dark(qr, x, y))
				x++;
			str_printfa(svg, "M%d %dh%dv1h-%dz", start + AUTH_QR_QUIET_ZONE,
				    y + AUTH_QR_QUIET_ZONE, x - start, x - start);
		}
	}
	str_append(svg, "\"/>\n");
}

static bool auth_qr_is_ascii(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)text[i] >= 0x80)
			return false;
	}
	return true;
}

/* NULL with errno set on failure. Non-ASCII text gets an ECI header naming
 * UTF-8 (ECI 26); without it, readers guess (zbar guesses Shift JIS). */
static QRcode *auth_qr_encode(const char *text, size_t len)
{
	QRinput *input = QRinput_new2(0, QR_ECLEVEL_M);
	if (input == NULL)
		return NULL;
	QRcode *qr = NULL;
	if ((auth_qr_is_ascii(text, len) || QRinput_appendECIheader(input, 26) == 0) &&
	    QRinput_append(input, QR_MODE_8, (int)len, (const unsigned char *)text) == 0)
		qr = QRcode_encodeInput(input);
	int saved = errno;
	QRinput_free(input);
	errno = saved;
	return qr;
}

char *auth_qr_svg(const char *text, const char **error_r)
{
	size_t len = strlen(text);
	if (len == 0) {
		*error_r = "QR code text is empty";
		return NULL;
	}
	if (len > INT_MAX) {
		*error_r = tstr_printf("QR code text is too long (%zu bytes)", len);
		return NULL;
	}
	QRcode *qr = auth_qr_encode(text, len);
	if (qr == NULL) {
		if (errno == ERANGE)
			*error_r = tstr_printf("QR code text is too long (%zu bytes, at most "
					       "2331 at error correction level M)",
					       len);
		else
			*error_r = tstr_printf("QR encoding failed: %s", strerror(errno));
		return NULL;
	}
	int size = qr->width + 2 * AUTH_QR_QUIET_ZONE;
	struct str *svg = str_create(4096);
	str_printfa(svg,
		    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
		    "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		    "shape-rendering=\"crispEdges\">\n"
		    "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
		    size * AUTH_QR_MODULE_PX, size * AUTH_QR_MODULE_PX, size, size, size, size);
	auth_qr_append_path(svg, qr);
	str_append(svg, "</svg>\n");
	QRcode_free(qr);
	return str_steal(&svg);
}
