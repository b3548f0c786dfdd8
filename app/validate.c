/*
 * validate.c - request validation for the API.
 */
#include "validate.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int
validate_utf8(const char *s, size_t len, size_t *nchars)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n = 0, k, need;
	unsigned cp, min;

	while (i < len) {
		unsigned char c = p[i];

		if (c < 0x80) {
			i++;
			n++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return 0;
		}
		if (len - i <= need)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
		n++;
	}
	if (nchars != NULL)
		*nchars = n;
	return 1;
}

int
validate_email(const char *s, size_t len, char *err, size_t errlen)
{
	const char *at = NULL, *dom;
	size_t i, dlen;

	if (len == 0) {
		snprintf(err, errlen, "email must not be empty");
		return -1;
	}
	if (len > EMAIL_MAX_BYTES) {
		snprintf(err, errlen, "email is longer than %d bytes",
		    EMAIL_MAX_BYTES);
		return -1;
	}
	if (!validate_utf8(s, len, NULL)) {
		snprintf(err, errlen, "email is not valid UTF-8");
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f) {
			snprintf(err, errlen, "email must not contain spaces "
			    "or control characters");
			return -1;
		}
		if (c == '@') {
			if (at != NULL) {
				snprintf(err, errlen, "email must contain "
				    "exactly one '@'");
				return -1;
			}
			at = s + i;
		}
	}
	if (at == NULL) {
		snprintf(err, errlen, "email must contain exactly one '@'");
		return -1;
	}
	if (at == s) {
		snprintf(err, errlen, "email has nothing before '@'");
		return -1;
	}
	dom = at + 1;
	dlen = len - (size_t)(dom - s);
	if (dlen < 3 || memchr(dom, '.', dlen) == NULL || dom[0] == '.' ||
	    dom[dlen - 1] == '.') {
		snprintf(err, errlen, "email domain must contain a dot "
		    "between two labels");
		return -1;
	}
	for (i = 0; i + 1 < dlen; i++) {
		if (dom[i] == '.' && dom[i + 1] == '.') {
			snprintf(err, errlen, "email domain has an empty "
			    "label");
			return -1;
		}
	}
	return 0;
}

/* Decodes the code point at s (valid UTF-8 assumed); returns its length. */
static size_t
utf8_next(const unsigned char *s, unsigned *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] < 0xe0) {
		*cp = ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu);
		return 2;
	}
	if (s[0] < 0xf0) {
		*cp = ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) |
		    (s[2] & 0x3fu);
		return 3;
	}
	*cp = ((s[0] & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) |
	    ((s[2] & 0x3fu) << 6) | (s[3] & 0x3fu);
	return 4;
}

int
validate_name(const char *s, size_t len, char *err, size_t errlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t nchars, i = 0;
	int only_space = 1;
	unsigned cp;

	if (len == 0) {
		snprintf(err, errlen, "name must not be empty");
		return -1;
	}
	if (!validate_utf8(s, len, &nchars)) {
		snprintf(err, errlen, "name is not valid UTF-8");
		return -1;
	}
	if (nchars > NAME_MAX_CHARS) {
		snprintf(err, errlen, "name is longer than %d characters",
		    NAME_MAX_CHARS);
		return -1;
	}
	while (i < len) {
		i += utf8_next(p + i, &cp);
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			snprintf(err, errlen, "name must not contain control "
			    "characters");
			return -1;
		}
		if (cp != ' ')
			only_space = 0;
	}
	if (only_space) {
		snprintf(err, errlen, "name must not be blank");
		return -1;
	}
	return 0;
}

int
validate_idem_key(const char *s, size_t len, char *err, size_t errlen)
{
	size_t i;

	if (len == 0 || len > IDEM_KEY_MAX) {
		snprintf(err, errlen, "Idempotency-Key must be 1 to %d bytes",
		    IDEM_KEY_MAX);
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e) {
			snprintf(err, errlen, "Idempotency-Key must be "
			    "visible ASCII");
			return -1;
		}
	}
	return 0;
}

int
validate_json_content_type(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (ct == NULL)
		return 0;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* Copies the string field key of obj into out; returns 0 or 422. */
static int
validate_field(json_t *obj, const char *key, char *out, size_t outlen,
    int (*check)(const char *, size_t, char *, size_t), char *err,
    size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t n;

	if (v == NULL || json_is_null(v)) {
		snprintf(err, errlen, "%s is required", key);
		return 422;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s must be a string", key);
		return 422;
	}
	s = json_string_value(v);
	n = json_string_length(v);
	if (memchr(s, '\0', n) != NULL) {
		snprintf(err, errlen, "%s must not contain NUL", key);
		return 422;
	}
	if (check(s, n, err, errlen) == -1)
		return 422;
	if (n >= outlen) { /* unreachable: the checks bound the length */
		snprintf(err, errlen, "%s is too long", key);
		return 422;
	}
	memcpy(out, s, n + 1);
	return 0;
}

int
validate_customer_body(const char *body, size_t len, struct new_customer *out,
    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int st;

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		snprintf(err, errlen, "request body is empty");
		return 400;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "malformed JSON: %s", jerr.text);
		return 400;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		snprintf(err, errlen, "request body must be a JSON object");
		return 400;
	}
	st = validate_field(root, "email", out->email, sizeof(out->email),
	    validate_email, err, errlen);
	if (st == 0)
		st = validate_field(root, "name", out->name,
		    sizeof(out->name), validate_name, err, errlen);
	json_decref(root);
	return st;
}
