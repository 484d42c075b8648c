#ifndef COFFER_AUTH_QR_H
#define COFFER_AUTH_QR_H
/* auth-qr: QR codes for enrolling an authenticator app (the only module that
 * uses libqrencode).
 *
 * Contract: auth_qr_svg() encodes `text` (typically an otpauth:// URI from
 * auth_totp_uri()) as 8-bit data with error correction level M and returns a
 * standalone SVG document: a white background, the dark modules as one <path>,
 * a quiet zone of AUTH_QR_QUIET_ZONE modules on every side, a viewBox in
 * modules and width/height attributes of AUTH_QR_MODULE_PX pixels per module.
 * Non-ASCII text is marked as UTF-8 (ECI 26). The result is freed with
 * mem_free(); NULL with *error_r if the text is empty or too long for a QR
 * code. Thread-safe (libqrencode is built with pthread). */

#define AUTH_QR_QUIET_ZONE 4
#define AUTH_QR_MODULE_PX 4

char *auth_qr_svg(const char *text, const char **error_r);

#endif
