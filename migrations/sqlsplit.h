/*
 * sqlsplit.h - splits the text of a migration file into statements, the
 * way the mysql/mariadb command-line client reads a script, so that a
 * file runs the same through outbox-migrate and through `mariadb < file`.
 *
 * - A statement ends at the current delimiter (";" at first) outside
 *   quotes and comments.  Quotes: '...' and "..." (a backslash escapes
 *   the next character, a doubled quote is two quotes in a row), `...`.
 * - Comments: "-- " (dashes then a blank or the end of the line) and "#"
 *   to the end of the line, and block comments are blanked out of the
 *   statement; executable comments (a slash, a star, then "!" or "M!")
 *   are kept.
 * - A line "DELIMITER <string>" (the keyword in any case, the line's only
 *   other word, no quote or backslash in it, at most SQLSPLIT_DELIM_MAX
 *   characters) between statements changes the delimiter, as in the
 *   client: "DELIMITER //" lets a CREATE PROCEDURE carry ';' in its body
 *   and end with "//", "DELIMITER ;" goes back.  Such a line inside an
 *   unfinished statement is an error (a forgotten delimiter).
 * - Empty statements (only blanks and comments) are skipped; text after
 *   the last delimiter is a statement of its own.
 */
#ifndef OUTBOX_SQLSPLIT_H
#define OUTBOX_SQLSPLIT_H

#include <stddef.h>

#define SQLSPLIT_DELIM_MAX 15

struct sqlsplit {
	char *p;                            /* next character to read */
	int line;                           /* line number of p, from 1 */
	char delim[SQLSPLIT_DELIM_MAX + 1]; /* the current delimiter */
	size_t dlen;
	int bol;                            /* p is at the start of a line */
	char err[160];                      /* why sqlsplit_next failed */
};

/* Starts splitting text (NUL-terminated), which sqlsplit_next modifies
 * in place and which must outlive the statements it returns. */
void sqlsplit_init(struct sqlsplit *s, char *text);

/* The next statement: *stmt points into the text (NUL-terminated, without
 * its delimiter, comments blanked, blanks trimmed at both ends) and *line
 * is the line it starts on.  Returns 1 for a statement, 0 at the end of
 * the text, -1 when the text is malformed (an unterminated quote or
 * comment, a bad DELIMITER line): s->err says what and on which line. */
int sqlsplit_next(struct sqlsplit *s, char **stmt, int *line);

#endif
