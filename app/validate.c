/*
 * validate.c - request validation for the API.
 *
 * The body: jansson decodes the members we use (email, name); the others
 * are checked here against the JSON grammar (RFC 8259) and left out of
 * what jansson sees, because jansson refuses numbers it cannot represent
 * (1e999, a 30-digit integer) whatever its flags, and an unknown member
 * must be ignored whatever valid JSON it holds.  Duplicate keys, at any
 * depth, are refused: an ambiguous body is rejected.
 *
 * Character classes come from libunistring (Unicode 14.0.0 in Debian
 * 12's libunistring 1.0), not from a table of ours.
 */
#include "validate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unictype.h>

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

/* Spaces and separators (Z*), controls (Cc), format characters (Cf:
 * zero-width, bidi controls): nothing an address shows. */
static uc_general_category_t
email_refused(void)
{
	return uc_general_category_or(uc_general_category_or(UC_CATEGORY_Z,
	    UC_CATEGORY_Cc), UC_CATEGORY_Cf);
}

/* Controls (Cc) and line or paragraph separators (Zl, Zp): what breaks a
 * name across lines or drives a terminal. */
static uc_general_category_t
name_refused(void)
{
	return uc_general_category_or(uc_general_category_or(UC_CATEGORY_Cc,
	    UC_CATEGORY_Zl), UC_CATEGORY_Zp);
}

int
validate_email(const char *s, size_t len, char *err, size_t errlen)
{
	const char *at = NULL, *dom;
	size_t i, k, dlen;
	unsigned cp;

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
	for (i = 0; i < len; i += k) {
		k = utf8_next((const unsigned char *)s + i, &cp);
		if (uc_is_general_category(cp, email_refused())) {
			snprintf(err, errlen, "email must not contain spaces, "
			    "separators, control or format characters");
			return -1;
		}
		if (cp == '@') {
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
		if (uc_is_general_category(cp, name_refused())) {
			snprintf(err, errlen, "name must not contain control "
			    "characters or line separators");
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

/* ---- the JSON grammar, for the members jansson does not see ---- */

/* Deeper nesting is refused (jansson stops at 2048; this parser recurses). */
#define JSON_MAX_DEPTH 512

struct jscan {
	const char *p, *end;
	int depth;
	char why[96]; /* what was wrong, for "malformed JSON: ..." */
};

static int jscan_value(struct jscan *s);

static int
jscan_fail(struct jscan *s, const char *what)
{
	if (s->why[0] == '\0')
		snprintf(s->why, sizeof(s->why), "%s", what);
	return -1;
}

static void
jscan_ws(struct jscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at s->p (its opening quote): valid escapes, no raw control
 * byte, valid UTF-8. */
static int
jscan_string(struct jscan *s)
{
	const char *start;
	int k;

	if (s->p >= s->end || *s->p != '"')
		return jscan_fail(s, "a string expected");
	start = ++s->p;
	for (;;) {
		if (s->p >= s->end)
			return jscan_fail(s, "unterminated string");
		if (*s->p == '"')
			break;
		if ((unsigned char)*s->p < 0x20)
			return jscan_fail(s, "control character in a string");
		if (*s->p == '\\') {
			if (++s->p >= s->end)
				return jscan_fail(s, "unterminated string");
			if (*s->p == 'u') {
				for (k = 1; k <= 4; k++)
					if (s->p + k >= s->end ||
					    !is_hex(s->p[k]))
						return jscan_fail(s,
						    "invalid \\u escape");
				s->p += 4;
			} else if (strchr("\"\\/bfnrt", *s->p) == NULL ||
			    *s->p == '\0') {
				return jscan_fail(s, "invalid escape");
			}
		}
		s->p++;
	}
	if (!validate_utf8(start, (size_t)(s->p - start), NULL))
		return jscan_fail(s, "invalid UTF-8 in a string");
	s->p++;
	return 0;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?: any size. */
static int
jscan_number(struct jscan *s)
{
	const char *e = s->end;

	if (s->p < e && *s->p == '-')
		s->p++;
	if (s->p < e && *s->p == '0') {
		s->p++;
	} else if (s->p < e && is_digit(*s->p)) {
		while (s->p < e && is_digit(*s->p))
			s->p++;
	} else {
		return jscan_fail(s, "invalid number");
	}
	if (s->p < e && *s->p == '.') {
		if (++s->p >= e || !is_digit(*s->p))
			return jscan_fail(s, "invalid number");
		while (s->p < e && is_digit(*s->p))
			s->p++;
	}
	if (s->p < e && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < e && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (s->p >= e || !is_digit(*s->p))
			return jscan_fail(s, "invalid number");
		while (s->p < e && is_digit(*s->p))
			s->p++;
	}
	/* "01", "1.": what follows must end the number. */
	if (s->p < e && (is_digit(*s->p) || *s->p == '.'))
		return jscan_fail(s, "invalid number");
	return 0;
}

static int
jscan_literal(struct jscan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return jscan_fail(s, "invalid literal");
	s->p += n;
	return 0;
}

/* The key at s->p decoded (by jansson: a string is always within its
 * range): *key receives a new reference, its text json_string_value. */
static int
jscan_key(struct jscan *s, json_t **key)
{
	const char *start = s->p;
	json_error_t jerr;

	if (jscan_string(s) == -1)
		return -1;
	*key = json_loadb(start, (size_t)(s->p - start),
	    JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (*key == NULL)
		return jscan_fail(s, "invalid key");
	return 0;
}

/* Adds key to seen (an object used as a set); -1 if it was there. */
static int
jscan_seen(struct jscan *s, json_t *seen, json_t *key)
{
	const char *k = json_string_value(key);
	size_t n = json_string_length(key);

	if (json_object_getn(seen, k, n) != NULL)
		return jscan_fail(s, "duplicate object key");
	if (json_object_setn_new(seen, k, n, json_null()) == -1)
		return jscan_fail(s, "out of memory");
	return 0;
}

/* One member of an object of which the caller holds the set of keys;
 * on_member (may be NULL) is told the member's key and raw value. */
typedef int (*jscan_member_fn)(void *ud, json_t *key, const char *val,
    size_t vlen);

static int
jscan_object(struct jscan *s, jscan_member_fn on_member, void *ud)
{
	json_t *seen, *key = NULL;
	const char *val;
	int rc = -1;

	if (++s->depth > JSON_MAX_DEPTH)
		return jscan_fail(s, "nested too deeply");
	if ((seen = json_object()) == NULL)
		return jscan_fail(s, "out of memory");
	s->p++; /* '{' */
	jscan_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		rc = 0;
		goto out;
	}
	for (;;) {
		jscan_ws(s);
		if (jscan_key(s, &key) == -1 || jscan_seen(s, seen, key) == -1)
			goto out;
		jscan_ws(s);
		if (s->p >= s->end || *s->p != ':') {
			jscan_fail(s, "':' expected");
			goto out;
		}
		s->p++;
		jscan_ws(s);
		val = s->p;
		if (jscan_value(s) == -1)
			goto out;
		if (on_member != NULL && on_member(ud, key, val,
		    (size_t)(s->p - val)) == -1) {
			jscan_fail(s, "out of memory");
			goto out;
		}
		json_decref(key);
		key = NULL;
		jscan_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			rc = 0;
			goto out;
		}
		jscan_fail(s, "',' or '}' expected");
		goto out;
	}
out:
	json_decref(key);
	json_decref(seen);
	s->depth--;
	return rc;
}

static int
jscan_array(struct jscan *s)
{
	if (++s->depth > JSON_MAX_DEPTH)
		return jscan_fail(s, "nested too deeply");
	s->p++; /* '[' */
	jscan_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		jscan_ws(s);
		if (jscan_value(s) == -1)
			return -1;
		jscan_ws(s);
		if (s->p < s->end && *s->p == ',') {
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			s->depth--;
			return 0;
		}
		return jscan_fail(s, "',' or ']' expected");
	}
}

static int
jscan_value(struct jscan *s)
{
	if (s->p >= s->end)
		return jscan_fail(s, "a value expected");
	switch (*s->p) {
	case '{':
		return jscan_object(s, NULL, NULL);
	case '[':
		return jscan_array(s);
	case '"':
		return jscan_string(s);
	case 't':
		return jscan_literal(s, "true");
	case 'f':
		return jscan_literal(s, "false");
	case 'n':
		return jscan_literal(s, "null");
	default:
		return jscan_number(s);
	}
}

/* The members of the top-level object that jansson decodes, copied as
 * they came into one smaller object; a value that is neither a string
 * nor null is given as 0 (jansson reads it, the field check says it is
 * not a string). */
struct known {
	char *out;
	size_t len;
};

static int
known_member(void *ud, json_t *key, const char *val, size_t vlen)
{
	struct known *k = ud;
	const char *name = json_string_value(key);
	size_t klen = json_string_length(key);

	if (!((klen == 5 && memcmp(name, "email", 5) == 0) ||
	    (klen == 4 && memcmp(name, "name", 4) == 0)))
		return 0;
	if (val[0] != '"' && val[0] != 'n') {
		val = "0";
		vlen = 1;
	}
	/* The out buffer holds the whole body plus 2: every member copied
	 * is shorter than its place in the body (key, ':' and value). */
	if (k->len > 1)
		k->out[k->len++] = ',';
	k->out[k->len++] = '"';
	memcpy(k->out + k->len, name, klen);
	k->len += klen;
	memcpy(k->out + k->len, "\":", 2);
	k->len += 2;
	memcpy(k->out + k->len, val, vlen);
	k->len += vlen;
	return 0;
}

/* Checks the whole body against the JSON grammar and keeps the members
 * jansson is to decode (k->out, malloc'd: the caller frees it).  -1 with
 * the reason in err (k->out then NULL). */
static int
validate_skim(const char *body, size_t len, struct known *k, char *err,
    size_t errlen)
{
	struct jscan s = { body, body + len, 0, "" };
	int rc, top_object;

	/* Every member copied is no longer than its place in the body. */
	if ((k->out = malloc(len + 3)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	k->out[0] = '{';
	k->len = 1;
	jscan_ws(&s);
	top_object = s.p < s.end && *s.p == '{';
	if (top_object)
		rc = jscan_object(&s, known_member, k);
	else
		rc = jscan_value(&s);
	jscan_ws(&s);
	if (rc == 0 && s.p != s.end)
		rc = jscan_fail(&s, "end of text expected");
	if (rc == 0 && !top_object) {
		snprintf(err, errlen, "request body must be a JSON object");
		free(k->out);
		k->out = NULL;
		return -1;
	}
	if (rc == -1) {
		snprintf(err, errlen, "malformed JSON: %s at byte %zu", s.why,
		    (size_t)(s.p - body));
		free(k->out);
		k->out = NULL;
		return -1;
	}
	k->out[k->len++] = '}';
	return 0;
}

int
validate_customer_body(const char *body, size_t len, struct new_customer *out,
    char *err, size_t errlen)
{
	struct known known = { NULL, 0 };
	json_error_t jerr;
	json_t *root;
	int st;

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		snprintf(err, errlen, "request body is empty");
		return 400;
	}
	if (validate_skim(body, len, &known, err, errlen) == -1)
		return 400;
	root = json_loadb(known.out, known.len, JSON_REJECT_DUPLICATES, &jerr);
	free(known.out);
	if (root == NULL) {
		snprintf(err, errlen, "malformed JSON: %s", jerr.text);
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
