/*
 * validate.h - parsing and validation of the POST /customers body and of
 * the Idempotency-Key header.  Pure functions: no I/O, no allocation kept.
 * Character classes: libunistring (Unicode 14.0.0 in Debian 12).
 */
#ifndef OUTBOX_APP_VALIDATE_H
#define OUTBOX_APP_VALIDATE_H

#include <stddef.h>

#define EMAIL_MAX_BYTES 254
#define NAME_MAX_CHARS 255
#define NAME_MAX_BYTES (NAME_MAX_CHARS * 4)
#define IDEM_KEY_MAX 255

struct new_customer {
	char email[EMAIL_MAX_BYTES + 1];
	char name[NAME_MAX_BYTES + 1];
};

/* Parses body (len bytes, not NUL-terminated) into out.  Returns the HTTP
 * status to answer: 0 when valid, 400 (not JSON, not an object) or 422
 * (a field missing, empty, not a string, too long or invalid), with a
 * human-readable reason in err.  Unknown fields are ignored, as the
 * original did, whatever valid JSON they hold (numbers of any size
 * included; nesting up to 512 levels); duplicate keys, at any depth,
 * get 400. */
int validate_customer_body(const char *body, size_t len,
    struct new_customer *out, char *err, size_t errlen);

/* 1 if s is valid UTF-8 (no overlongs, no surrogates); *nchars receives
 * the number of code points. */
int validate_utf8(const char *s, size_t len, size_t *nchars);

/* Email rules: 1..254 bytes, valid UTF-8, no character of the Unicode
 * categories Z* (spaces, separators), Cc (controls) or Cf (format:
 * zero-width, bidi controls), exactly one '@' with text on both sides,
 * and a dot inside the domain (not first, not last, no "..").  0 or -1
 * with a reason. */
int validate_email(const char *s, size_t len, char *err, size_t errlen);

/* Name rules: valid UTF-8, 1..255 characters, no control characters
 * (Cc: C0, DEL, C1) and no line or paragraph separators (Zl, Zp), not
 * only spaces.  0 or -1 with a reason. */
int validate_name(const char *s, size_t len, char *err, size_t errlen);

/* Idempotency-Key: 1..255 bytes of visible ASCII.  0 or -1 with reason. */
int validate_idem_key(const char *s, size_t len, char *err, size_t errlen);

/* Content-Type is JSON: "application/json", any case, optional
 * parameters (e.g. "; charset=utf-8").  1 or 0. */
int validate_json_content_type(const char *ct);

#endif
