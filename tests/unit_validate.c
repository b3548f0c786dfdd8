/*
 * unit_validate.c - unit tests of the API's request validation.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unictype.h>

#include "app/validate.h"
#include "suites.h"

Suite *unit_validate_suite(void);

static const struct {
	const char *body;
	int status;
	const char *reason;
} cases[] = {
	{ "{\"email\":\"a@example.com\",\"name\":\"TESTTTTTT\"}", 0, "" },
	{ "{\"email\":\"a@example.com\",\"name\":\"Zoë Ångström\"}", 0, "" },
	{ "{\"email\":\"a@example.com\",\"name\":\"x\",\"extra\":[1]}", 0, "" },
	{ "", 400, "empty" },
	{ "{", 400, "malformed" },
	{ "{\"email\":\"a@example.com\",\"name\":\"x\"", 400, "malformed" },
	{ "{\"email\":\"a@example.com\",\"name\":\"x\"} x", 400, "malformed" },
	{ "[]", 400, "object" },
	{ "\"str\"", 400, "object" },
	{ "42", 400, "object" },
	{ "null", 400, "object" },
	{ "{\"email\":\"a@b.io\",\"email\":\"c@d.io\",\"name\":\"x\"}", 400,
	    "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"\\u0000\"}", 400, "malformed" },
	{ "{\"name\":\"x\"}", 422, "email is required" },
	{ "{\"email\":null,\"name\":\"x\"}", 422, "email is required" },
	{ "{\"email\":5,\"name\":\"x\"}", 422, "email must be a string" },
	{ "{\"email\":[\"a@b.io\"],\"name\":\"x\"}", 422, "must be a string" },
	{ "{\"email\":\"\",\"name\":\"x\"}", 422, "empty" },
	{ "{\"email\":\"ab.io\",\"name\":\"x\"}", 422, "'@'" },
	{ "{\"email\":\"a@@b.io\",\"name\":\"x\"}", 422, "'@'" },
	{ "{\"email\":\"a@b@c.io\",\"name\":\"x\"}", 422, "'@'" },
	{ "{\"email\":\"@b.io\",\"name\":\"x\"}", 422, "before" },
	{ "{\"email\":\"a@bio\",\"name\":\"x\"}", 422, "dot" },
	{ "{\"email\":\"a@.io\",\"name\":\"x\"}", 422, "dot" },
	{ "{\"email\":\"a@b.\",\"name\":\"x\"}", 422, "dot" },
	{ "{\"email\":\"a@b..io\",\"name\":\"x\"}", 422, "empty label" },
	{ "{\"email\":\"a b@c.io\",\"name\":\"x\"}", 422, "spaces" },
	{ "{\"email\":\"a\\tb@c.io\",\"name\":\"x\"}", 422, "control" },
	{ "{\"email\":\"a@b.io\"}", 422, "name is required" },
	{ "{\"email\":\"a@b.io\",\"name\":true}", 422, "name must be a string" },
	{ "{\"email\":\"a@b.io\",\"name\":{}}", 422, "name must be a string" },
	{ "{\"email\":\"a@b.io\",\"name\":\"\"}", 422, "empty" },
	{ "{\"email\":\"a@b.io\",\"name\":\"   \"}", 422, "blank" },
	{ "{\"email\":\"a@b.io\",\"name\":\"a\\nb\"}", 422, "control" },
	{ "{\"email\":\"a@b.io\",\"name\":\"a\\u007fb\"}", 422, "control" },
	{ "{\"email\":\"a@b.io\",\"name\":\"a\\u0085b\"}", 422, "control" },
	/* Unknown members hold any JSON value, even numbers jansson cannot
	 * represent; they are ignored. */
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":1e999}", 0, "" },
	{ "{\"n\":-1.5E-999,\"email\":\"a@b.io\",\"name\":\"x\"}", 0, "" },
	{ "{\"email\":\"a@b.io\",\"n\":123456789012345678901234567890,"
	    "\"name\":\"x\"}", 0, "" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"deep\":{\"a\":[1e999,"
	    "{\"b\":[null,true,false,\"\\ud83d\\ude00\\u0000\"]}],\"c\":{}}}",
	    0, "" },
	{ " {\"email\" : \"a@b.io\" , \"name\" : \"x\" , \"e\" : [ ] } \n", 0,
	    "" },
	/* ... but they must be JSON. */
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":01}", 400, "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":1.}", 400, "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":-}", 400, "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":1e}", 400, "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":[1,]}", 400, "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":{\"a\"}}", 400,
	    "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":\"a\tb\"}", 400,
	    "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":\"\\x\"}", 400,
	    "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":\"\xff\"}", 400,
	    "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":tru}", 400, "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",\"n\":NaN}", 400, "malformed" },
	{ "{\"email\":\"a@b.io\",\"name\":\"x\",}", 400, "malformed" },
	/* Duplicate keys: an ambiguous body is refused, whichever keys,
	 * also when one is spelt with escapes. */
	{ "{\"n\":1,\"email\":\"a@b.io\",\"n\":1e999,\"name\":\"x\"}", 400,
	    "duplicate" },
	{ "{\"email\":\"a@b.io\",\"em\\u0061il\":\"c@d.io\",\"name\":\"x\"}",
	    400, "duplicate" },
	{ "[1e999]", 400, "object" },
	{ "{\"email\":1e999,\"name\":\"x\"}", 422, "email must be a string" },
};

START_TEST(body_table)
{
	struct new_customer c;
	char err[256] = "";
	int st;

	st = validate_customer_body(cases[_i].body, strlen(cases[_i].body), &c,
	    err, sizeof(err));
	ck_assert_msg(st == cases[_i].status, "%s: got %d (%s), want %d",
	    cases[_i].body, st, err, cases[_i].status);
	if (st != 0)
		ck_assert_msg(strstr(err, cases[_i].reason) != NULL,
		    "%s: reason \"%s\" lacks \"%s\"", cases[_i].body, err,
		    cases[_i].reason);
}
END_TEST

START_TEST(lengths)
{
	char body[4096], email[300], name[1200];
	struct new_customer c;
	char err[256];
	size_t i;

	/* 254-byte email: accepted; 255: refused. */
	memset(email, 'a', sizeof(email));
	memcpy(email + 254 - 6, "@b.com", 7);
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"name\":\"x\"}", email);
	ck_assert_int_eq(validate_customer_body(body, strlen(body), &c, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(strlen(c.email), 254);
	memset(email, 'a', sizeof(email));
	memcpy(email + 255 - 6, "@b.com", 7);
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"name\":\"x\"}", email);
	ck_assert_int_eq(validate_customer_body(body, strlen(body), &c, err,
	    sizeof(err)), 422);
	/* 255 characters of 2 bytes: accepted; 256: refused. */
	for (i = 0; i < 255; i++)
		memcpy(name + 2 * i, "é", 2);
	name[510] = '\0';
	snprintf(body, sizeof(body), "{\"email\":\"a@b.io\",\"name\":\"%s\"}",
	    name);
	ck_assert_int_eq(validate_customer_body(body, strlen(body), &c, err,
	    sizeof(err)), 0);
	memcpy(name + 510, "é", 3);
	snprintf(body, sizeof(body), "{\"email\":\"a@b.io\",\"name\":\"%s\"}",
	    name);
	ck_assert_int_eq(validate_customer_body(body, strlen(body), &c, err,
	    sizeof(err)), 422);
	ck_assert_ptr_nonnull(strstr(err, "255 characters"));
}
END_TEST

START_TEST(utf8)
{
	size_t n;

	ck_assert(validate_utf8("abc", 3, &n) && n == 3);
	ck_assert(validate_utf8("\xc3\xa9", 2, &n) && n == 1);
	ck_assert(validate_utf8("\xf0\x9f\x98\x80", 4, &n) && n == 1);
	ck_assert(!validate_utf8("\xc3", 1, &n));           /* truncated */
	ck_assert(!validate_utf8("\xc0\xaf", 2, &n));       /* overlong */
	ck_assert(!validate_utf8("\xe0\x80\xaf", 3, &n));   /* overlong */
	ck_assert(!validate_utf8("\xed\xa0\x80", 3, &n));   /* surrogate */
	ck_assert(!validate_utf8("\xf4\x90\x80\x80", 4, &n)); /* > U+10FFFF */
	ck_assert(!validate_utf8("\xff", 1, &n));
	ck_assert(!validate_utf8("a\x80", 2, &n));
}
END_TEST

START_TEST(content_type_and_key)
{
	char err[128];

	ck_assert(validate_json_content_type("application/json"));
	ck_assert(validate_json_content_type("Application/JSON"));
	ck_assert(validate_json_content_type("application/json; charset=utf-8"));
	ck_assert(!validate_json_content_type(NULL));
	ck_assert(!validate_json_content_type("text/plain"));
	ck_assert(!validate_json_content_type("application/jsonx"));
	ck_assert(!validate_json_content_type("application/x-www-form-urlencoded"));
	ck_assert_int_eq(validate_idem_key("abc-123", 7, err, sizeof(err)), 0);
	ck_assert_int_eq(validate_idem_key("", 0, err, sizeof(err)), -1);
	ck_assert_int_eq(validate_idem_key("a b", 3, err, sizeof(err)), -1);
	ck_assert_int_eq(validate_idem_key("a\x80", 2, err, sizeof(err)), -1);
}
END_TEST

/* Nesting deeper than any parser should follow is refused, not a crash. */
START_TEST(deep_nesting)
{
	enum { DEPTH = 100000 };
	static char body[DEPTH * 2 + 64];
	struct new_customer c;
	char err[256];
	size_t n;

	n = (size_t)snprintf(body, sizeof(body), "{\"email\":\"a@b.io\","
	    "\"name\":\"x\",\"d\":");
	memset(body + n, '[', DEPTH);
	memset(body + n + DEPTH, ']', DEPTH);
	body[n + 2 * DEPTH] = '}';
	ck_assert_int_eq(validate_customer_body(body, n + 2 * DEPTH + 1, &c,
	    err, sizeof(err)), 400);
}
END_TEST

/* Encodes cp as UTF-8 into out; returns its length. */
static size_t
utf8_put(unsigned cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* "a<cp>b@example.com" */
static size_t
email_with(unsigned cp, char *out)
{
	size_t n = 1;

	out[0] = 'a';
	n += utf8_put(cp, out + n);
	memcpy(out + n, "b@example.com", 13);
	return n + 13;
}

/* "A<cp>B" */
static size_t
name_with(unsigned cp, char *out)
{
	size_t n = 1;

	out[0] = 'A';
	n += utf8_put(cp, out + n);
	out[n++] = 'B';
	return n;
}

/* Every code point of the Unicode categories Z* (separators, spaces),
 * Cc (controls) and Cf (format: zero-width, bidi controls) is refused in
 * an email, every other one accepted (but '@'); the categories are
 * libunistring's (Unicode 14.0.0 in Debian 12). */
START_TEST(email_refuses_every_invisible_character)
{
	static const unsigned known[] = { 0x0085, 0x00a0, 0x2028, 0x2029,
	    0x200b, 0x200d, 0x202e, 0x2066, 0xfeff, 0x3000, 0x180e, 0xe0001 };
	char s[32], err[128];
	unsigned cp, refused = 0, bad, wrong = 0, first = 0;
	size_t i, n;
	uc_general_category_t invisible = uc_general_category_or(
	    uc_general_category_or(UC_CATEGORY_Z, UC_CATEGORY_Cc),
	    UC_CATEGORY_Cf);

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		n = email_with(known[i], s);
		ck_assert_msg(validate_email(s, n, err, sizeof(err)) == -1,
		    "U+%04X accepted in an email", known[i]);
	}
	/* ck_assert marks a point per call (a write to a pipe): the loop
	 * counts, the asserts come after. */
	for (cp = 0; cp <= 0x10ffff; cp++) {
		if ((cp >= 0xd800 && cp <= 0xdfff) || cp == '@')
			continue;
		n = email_with(cp, s);
		bad = uc_is_general_category(cp, invisible);
		if ((validate_email(s, n, err, sizeof(err)) == -1) != !!bad) {
			if (wrong++ == 0)
				first = cp;
		} else if (bad) {
			refused++;
		}
	}
	ck_assert_msg(wrong == 0, "%u code points judged wrong, the first "
	    "U+%04X (%s in Z*, Cc or Cf)", wrong, first,
	    uc_is_general_category(first, invisible) ? "is" : "not");
	ck_assert_uint_gt(refused, 100);
}
END_TEST

/* Every control character (Cc) and line or paragraph separator (Zl, Zp)
 * is refused in a name; every other code point is accepted. */
START_TEST(name_refuses_every_control_and_separator)
{
	char s[32], err[128];
	unsigned cp, bad, wrong = 0, first = 0;
	size_t n;
	uc_general_category_t refused = uc_general_category_or(
	    uc_general_category_or(UC_CATEGORY_Cc, UC_CATEGORY_Zl),
	    UC_CATEGORY_Zp);

	for (cp = 0; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		n = name_with(cp, s);
		bad = uc_is_general_category(cp, refused);
		if ((validate_name(s, n, err, sizeof(err)) == -1) != !!bad &&
		    wrong++ == 0)
			first = cp;
	}
	ck_assert_msg(wrong == 0, "%u code points judged wrong, the first "
	    "U+%04X (%s in Cc, Zl or Zp)", wrong, first,
	    uc_is_general_category(first, refused) ? "is" : "not");
}
END_TEST

Suite *
unit_validate_suite(void)
{
	const TTest *const validate[] = { lengths, utf8, content_type_and_key,
	    deep_nesting, email_refuses_every_invisible_character,
	    name_refuses_every_control_and_separator, NULL };
	Suite *s = suite_create("validate");

	tcase_add_loop_test(suites_case(s, "validate", 0, NULL, NULL,
	    validate), body_table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	return s;
}
