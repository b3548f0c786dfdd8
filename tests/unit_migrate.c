/*
 * unit_migrate.c - unit tests of outbox-migrate's statement splitter
 * (migrations/sqlsplit.c): the mysql client's rules, DELIMITER lines.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "migrations/sqlsplit.h"

Suite *unit_migrate_suite(void);

#define MAXSTMT 16

struct split {
	char text[4096];
	char *stmt[MAXSTMT];
	int line[MAXSTMT];
	int n;
	struct sqlsplit s;
};

/* Splits text; returns the number of statements, or -1 (sp->s.err). */
static int
split(struct split *sp, const char *text)
{
	int rc;

	ck_assert_uint_lt(strlen(text), sizeof(sp->text));
	memcpy(sp->text, text, strlen(text) + 1);
	sqlsplit_init(&sp->s, sp->text);
	sp->n = 0;
	while (sp->n < MAXSTMT && (rc = sqlsplit_next(&sp->s,
	    &sp->stmt[sp->n], &sp->line[sp->n])) == 1)
		sp->n++;
	ck_assert_int_lt(sp->n, MAXSTMT);
	return rc == -1 ? -1 : sp->n;
}

START_TEST(split_on_semicolons)
{
	struct split sp;

	ck_assert_int_eq(split(&sp, "CREATE TABLE a (x INT);\n"
	    "\n  INSERT INTO a VALUES (1) ;  \nSELECT 1"), 3);
	ck_assert_str_eq(sp.stmt[0], "CREATE TABLE a (x INT)");
	ck_assert_str_eq(sp.stmt[1], "INSERT INTO a VALUES (1)");
	ck_assert_str_eq(sp.stmt[2], "SELECT 1");
	ck_assert_int_eq(sp.line[0], 1);
	ck_assert_int_eq(sp.line[1], 3);
	ck_assert_int_eq(sp.line[2], 4);
}
END_TEST

START_TEST(empty_statements_and_comments_alone_are_skipped)
{
	struct split sp;

	ck_assert_int_eq(split(&sp, ""), 0);
	ck_assert_int_eq(split(&sp, " ;;\n; -- nothing; here\n# nor; here\n"
	    "/* nor; 'here */\n"), 0);
	ck_assert_int_eq(split(&sp, "SELECT 1;\n-- the end\n"), 1);
}
END_TEST

START_TEST(quotes_hide_the_delimiter)
{
	struct split sp;

	ck_assert_int_eq(split(&sp, "SELECT 'a;b', \"c;d\", `e;f`;"
	    "SELECT 'it''s; fine', 'it\\'s; fine', \"say \\\"hi;\\\"\";"
	    "SELECT `a\\`;"), 3);
	ck_assert_str_eq(sp.stmt[0], "SELECT 'a;b', \"c;d\", `e;f`");
	ck_assert_str_eq(sp.stmt[1],
	    "SELECT 'it''s; fine', 'it\\'s; fine', \"say \\\"hi;\\\"\"");
	/* A backslash escapes nothing between backquotes. */
	ck_assert_str_eq(sp.stmt[2], "SELECT `a\\`");
}
END_TEST

START_TEST(comments_are_blanked)
{
	struct split sp;

	ck_assert_int_eq(split(&sp, "SELECT 1 -- don't; stop\n, 2 # nor; "
	    "'here'\n, 3 /* nor; \"here\n */ , 4;"), 1);
	ck_assert_ptr_null(strchr(sp.stmt[0], '\''));
	ck_assert_ptr_null(strstr(sp.stmt[0], "stop"));
	ck_assert_ptr_nonnull(strstr(sp.stmt[0], ", 4"));
	ck_assert_ptr_nonnull(strstr(sp.stmt[0], ", 2"));
	/* "--" not followed by a blank is two minus signs. */
	ck_assert_int_eq(split(&sp, "SELECT 1--1;SELECT 2"), 2);
	ck_assert_str_eq(sp.stmt[0], "SELECT 1--1");
}
END_TEST

START_TEST(executable_comments_are_kept)
{
	struct split sp;

	ck_assert_int_eq(split(&sp, "/*!40101 SET x = 1; */;/*M!100500 "
	    "SET y = 2 */;"), 2);
	ck_assert_str_eq(sp.stmt[0], "/*!40101 SET x = 1; */");
	ck_assert_str_eq(sp.stmt[1], "/*M!100500 SET y = 2 */");
}
END_TEST

START_TEST(delimiter_lines_change_the_delimiter)
{
	struct split sp;

	ck_assert_int_eq(split(&sp, "SELECT 0;\n"
	    "DELIMITER //\n"
	    "CREATE PROCEDURE p()\n"
	    "BEGIN\n"
	    "  SELECT ';//';  -- not the end //\n"
	    "  SELECT 2;\n"
	    "END//\n"
	    "  delimiter ;  \n"
	    "CALL p();\n"
	    "DELIMITER $$\n"
	    "SELECT 3$$ SELECT 4 $$\n"
	    "DELIMITER ;\n"
	    "SELECT 5;\n"), 6);
	ck_assert_str_eq(sp.stmt[0], "SELECT 0");
	ck_assert_ptr_nonnull(strstr(sp.stmt[1], "SELECT ';//';"));
	ck_assert_ptr_nonnull(strstr(sp.stmt[1], "SELECT 2;\nEND"));
	ck_assert_ptr_null(strstr(sp.stmt[1], "not the end"));
	ck_assert_int_eq(sp.line[1], 3);
	ck_assert_str_eq(sp.stmt[2], "CALL p()");
	ck_assert_int_eq(sp.line[2], 9);
	ck_assert_str_eq(sp.stmt[3], "SELECT 3");
	ck_assert_str_eq(sp.stmt[4], "SELECT 4");
	ck_assert_str_eq(sp.stmt[5], "SELECT 5");
	ck_assert_int_eq(sp.line[5], 13);
	ck_assert_str_eq(sp.s.delim, ";");
}
END_TEST

START_TEST(delimiter_needs_its_own_line)
{
	struct split sp;

	/* Not at the start of a line: an ordinary word (the server will
	 * refuse it), as in the mysql client. */
	ck_assert_int_eq(split(&sp, "SELECT 1; DELIMITER //\n"), 2);
	ck_assert_str_eq(sp.stmt[1], "DELIMITER //");
	/* A column of that name inside a statement is not a DELIMITER
	 * line unless it starts one, where it means a forgotten delimiter. */
	ck_assert_int_eq(split(&sp, "CREATE TABLE t (a INT, delimiter INT);"),
	    1);
	ck_assert_int_eq(split(&sp, "CREATE TABLE t (a INT)\nDELIMITER //\n"
	    "SELECT 1//"), -1);
	ck_assert_ptr_nonnull(strstr(sp.s.err, "line 2"));
	ck_assert_ptr_nonnull(strstr(sp.s.err, "line 1"));
	ck_assert_int_eq(split(&sp, "SELECT 1;\nDELIMITERS //\n"), 2);
}
END_TEST

static const char *const bad_delimiters[] = {
	"DELIMITER\nSELECT 1;",
	"DELIMITER   \nSELECT 1;",
	"DELIMITER // x\nSELECT 1//",
	"DELIMITER ';'\nSELECT 1;",
	"DELIMITER \\\\\nSELECT 1;",
	"DELIMITER 1234567890123456\nSELECT 1;",
	"DELIMITER --\nSELECT 1;",
	"DELIMITER #\nSELECT 1;",
	"DELIMITER /*\nSELECT 1;",
};

START_TEST(bad_delimiter_lines_are_refused)
{
	struct split sp;

	ck_assert_int_eq(split(&sp, bad_delimiters[_i]), -1);
	ck_assert_ptr_nonnull(strstr(sp.s.err, "line 1"));
}
END_TEST

START_TEST(unterminated_quotes_and_comments_are_refused)
{
	struct split sp;

	ck_assert_int_eq(split(&sp, "SELECT 1;\nSELECT 'abc;\n"), -1);
	ck_assert_ptr_nonnull(strstr(sp.s.err, "line 2"));
	ck_assert_ptr_nonnull(strstr(sp.s.err, "quote"));
	ck_assert_int_eq(split(&sp, "SELECT 1 /* no end;"), -1);
	ck_assert_ptr_nonnull(strstr(sp.s.err, "comment"));
	ck_assert_int_eq(split(&sp, "SELECT \"a\\\";"), -1);
	ck_assert_int_eq(split(&sp, "SELECT `a;"), -1);
}
END_TEST

START_TEST(line_numbers_count_newlines_in_quotes_and_comments)
{
	struct split sp;

	ck_assert_int_eq(split(&sp, "SELECT 'a\nb';\n/* x\ny */\n"
	    "SELECT \"\\\n\";\n/*!1 \n*/ SELECT 3;"), 3);
	ck_assert_int_eq(sp.line[0], 1);
	ck_assert_int_eq(sp.line[1], 5);
	ck_assert_int_eq(sp.line[2], 7);
}
END_TEST

Suite *
unit_migrate_suite(void)
{
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("split");

	tcase_add_test(tc, split_on_semicolons);
	tcase_add_test(tc, empty_statements_and_comments_alone_are_skipped);
	tcase_add_test(tc, quotes_hide_the_delimiter);
	tcase_add_test(tc, comments_are_blanked);
	tcase_add_test(tc, executable_comments_are_kept);
	tcase_add_test(tc, delimiter_lines_change_the_delimiter);
	tcase_add_test(tc, delimiter_needs_its_own_line);
	tcase_add_loop_test(tc, bad_delimiter_lines_are_refused, 0,
	    (int)(sizeof(bad_delimiters) / sizeof(bad_delimiters[0])));
	tcase_add_test(tc, unterminated_quotes_and_comments_are_refused);
	tcase_add_test(tc, line_numbers_count_newlines_in_quotes_and_comments);
	suite_add_tcase(s, tc);
	return s;
}
