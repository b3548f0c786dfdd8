/*
 * unit_validate.c - unit tests of the API's request validation.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

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

Suite *
unit_validate_suite(void)
{
	const TTest *const validate[] = { lengths, utf8, content_type_and_key,
	    NULL };
	Suite *s = suite_create("validate");

	tcase_add_loop_test(suites_case(s, "validate", 0, NULL, NULL,
	    validate), body_table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
	return s;
}
