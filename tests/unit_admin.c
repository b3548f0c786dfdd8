/*
 * unit_admin.c - unit tests of outbox-admin's command line (admin/args.c):
 * each command and its operands, options anywhere, strict refusals, and
 * how an id an operator types names a message.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "admin/args.h"
#include "suites.h"

Suite *unit_admin_suite(void);

static struct admin_args A;
static char err[256];

/* args_parse of the words (NULL-terminated) after the program's name. */
static int
parse(const char *const *words)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = "outbox-admin";
	while (*words != NULL && argc < 31)
		argv[argc++] = (char *)(uintptr_t)*words++;
	argv[argc] = NULL;
	err[0] = '\0';
	return args_parse(argc, argv, &A, err, sizeof(err));
}

#define PARSE(...) parse((const char *const[]){ __VA_ARGS__, NULL })

START_TEST(commands_and_options)
{
	ck_assert_int_eq(PARSE("status"), 0);
	ck_assert_int_eq(A.cmd, CMD_STATUS);
	ck_assert_int_eq(A.json, 0);
	ck_assert_int_eq(PARSE("--json", "status"), 0);
	ck_assert_int_eq(A.json, 1);
	ck_assert_int_eq(PARSE("dlq", "list", "--json"), 0);
	ck_assert_int_eq(A.cmd, CMD_DLQ_LIST);
	ck_assert_int_eq(A.json, 1);
	ck_assert_int_eq(PARSE("dlq", "show", "abc"), 0);
	ck_assert_int_eq(A.cmd, CMD_DLQ_SHOW);
	ck_assert_uint_eq(A.n, 1);
	ck_assert_str_eq(A.ids[0], "abc");
	ck_assert_int_eq(PARSE("dlq", "replay", "a", "b", "c"), 0);
	ck_assert_int_eq(A.cmd, CMD_DLQ_REPLAY);
	ck_assert_uint_eq(A.n, 3);
	ck_assert_str_eq(A.ids[2], "c");
	ck_assert_int_eq(PARSE("dlq", "replay", "--all"), 0);
	ck_assert_int_eq(A.all, 1);
	ck_assert_uint_eq(A.n, 0);
	ck_assert_int_eq(PARSE("dlq", "purge"), 0);
	ck_assert_int_eq(A.cmd, CMD_DLQ_PURGE);
	ck_assert_int_eq(A.yes, 0);
	ck_assert_int_eq(PARSE("dlq", "purge", "--yes"), 0);
	ck_assert_int_eq(A.yes, 1);
	ck_assert_int_eq(PARSE("-y", "dlq", "purge"), 0);
	ck_assert_int_eq(A.yes, 1);
	ck_assert_int_eq(PARSE("parked", "list"), 0);
	ck_assert_int_eq(A.cmd, CMD_PARKED_LIST);
	ck_assert_int_eq(PARSE("parked", "release", "7", "9223372036854775807"),
	    0);
	ck_assert_int_eq(A.cmd, CMD_PARKED_RELEASE);
	ck_assert_uint_eq(A.n, 2);
	ck_assert_int_eq(A.seqs[0], 7);
	ck_assert_int_eq(A.seqs[1], INT64_MAX);
	ck_assert_int_eq(PARSE("parked", "release", "--all", "--json"), 0);
	ck_assert_int_eq(A.all, 1);
}
END_TEST

static const struct {
	const char *words[5];
	const char *why;
} refusals[] = {
	{ { NULL }, "no command" },
	{ { "stats" }, "unknown command stats" },
	{ { "dlq" }, "dlq: list, show, replay or purge?" },
	{ { "dlq", "browse" }, "unknown command dlq browse" },
	{ { "parked" }, "parked: list or release?" },
	{ { "status", "now" }, "unexpected now" },
	{ { "dlq", "list", "x" }, "unexpected x" },
	{ { "status", "--verbose" }, "unknown option --verbose" },
	{ { "dlq", "show" }, "dlq show takes one message id" },
	{ { "dlq", "show", "a", "b" }, "dlq show takes one message id" },
	{ { "dlq", "replay" }, "which? message ids, or --all" },
	{ { "dlq", "replay", "a", "--all" }, "either --all or ids, not both" },
	{ { "dlq", "list", "--all" }, "--all: only for dlq replay and parked "
	    "release" },
	{ { "status", "--yes" }, "--yes: only for dlq purge" },
	{ { "dlq", "replay", "" }, "not a message id: \"\"" },
	{ { "parked", "release" }, "which? sequence numbers, or --all" },
	{ { "parked", "release", "0" }, "not a sequence number: 0" },
	{ { "parked", "release", "-5" }, "unknown option -5" },
	{ { "parked", "release", "+5" }, "not a sequence number: +5" },
	{ { "parked", "release", "12a" }, "not a sequence number: 12a" },
	{ { "parked", "release", "99999999999999999999" },
	    "not a sequence number: 99999999999999999999" },
};

START_TEST(bad_input_is_refused)
{
	ck_assert_msg(parse(refusals[_i].words) == -1, "%s: accepted",
	    refusals[_i].why);
	ck_assert_str_eq(err, refusals[_i].why);
}
END_TEST

START_TEST(at_most_ARGS_MAX_IDS)
{
	static char *argv[ARGS_MAX_IDS + 5];
	int i;

	argv[0] = "outbox-admin";
	argv[1] = "parked";
	argv[2] = "release";
	for (i = 0; i < ARGS_MAX_IDS; i++)
		argv[3 + i] = "1";
	ck_assert_int_eq(args_parse(3 + ARGS_MAX_IDS, argv, &A, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(A.n, ARGS_MAX_IDS);
	argv[3 + ARGS_MAX_IDS] = "2";
	ck_assert_int_eq(args_parse(4 + ARGS_MAX_IDS, argv, &A, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "at most 1000 at once");
}
END_TEST

START_TEST(an_id_names_a_message)
{
	const char *id = "0191f3a2-7c4e-7a1b-9c2d-3e4f5a6b7c8d";

	ck_assert_int_eq(args_id_match(id, id), 1);
	/* A UUID in upper case is the same id (RFC 9562). */
	ck_assert_int_eq(args_id_match("0191F3A2-7C4E-7A1B-9C2D-3E4F5A6B7C8D",
	    id), 1);
	ck_assert_int_eq(args_id_match(id, "0191F3A2-7C4E-7A1B-9C2D-"
	    "3E4F5A6B7C8D"), 1);
	ck_assert_int_eq(args_id_match("0191f3a2-7c4e-7a1b-9c2d-3e4f5a6b7c8e",
	    id), 0);
	/* Not UUIDs: the same text only. */
	ck_assert_int_eq(args_id_match("oops", "oops"), 1);
	ck_assert_int_eq(args_id_match("OOPS", "oops"), 0);
	ck_assert_int_eq(args_id_match("0191f3a2", id), 0);
}
END_TEST

Suite *
unit_admin_suite(void)
{
	const TTest *const cmdline[] = { commands_and_options,
	    at_most_ARGS_MAX_IDS, an_id_names_a_message, NULL };
	Suite *s = suite_create("admin");

	tcase_add_loop_test(suites_case(s, "command line", 0, NULL, NULL,
	    cmdline), bad_input_is_refused, 0,
	    (int)(sizeof(refusals) / sizeof(refusals[0])));
	return s;
}
