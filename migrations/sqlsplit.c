/*
 * sqlsplit.c - splits a migration file into statements as the mysql
 * client does, DELIMITER lines included (see sqlsplit.h).  Pure text
 * work: no database here, so that tests/unit_migrate.c covers it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sqlsplit.h"

void
sqlsplit_init(struct sqlsplit *s, char *text)
{
	memset(s, 0, sizeof(*s));
	s->p = text;
	s->line = 1;
	s->bol = 1;
	s->delim[0] = ';';
	s->dlen = 1;
}

static int
sqlsplit_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Blanks [from, to) except its newlines, which it counts. */
static void
sqlsplit_blank(char *from, const char *to, int *line)
{
	for (; from < to; from++) {
		if (*from == '\n')
			(*line)++;
		else
			*from = ' ';
	}
}

/* p starts a line (after blanks): 1 if its first word is DELIMITER. */
static int
sqlsplit_is_delimiter_line(const char *p)
{
	return strncasecmp(p, "delimiter", 9) == 0 &&
	    (sqlsplit_is_blank(p[9]) || p[9] == '\n' || p[9] == '\0');
}

/* Reads the DELIMITER line at p (its first word), sets the delimiter,
 * blanks the line; returns the end of the line, or NULL on error. */
static char *
sqlsplit_delimiter(struct sqlsplit *s, char *p, int line)
{
	char *tok, *q = p + 9;
	size_t n;

	while (sqlsplit_is_blank(*q))
		q++;
	for (tok = q; *q != '\0' && *q != '\n' && !sqlsplit_is_blank(*q); q++)
		;
	n = (size_t)(q - tok);
	while (sqlsplit_is_blank(*q))
		q++;
	if (n == 0 || (*q != '\n' && *q != '\0')) {
		snprintf(s->err, sizeof(s->err), "line %d: DELIMITER takes "
		    "one word", line);
		return NULL;
	}
	if (n > SQLSPLIT_DELIM_MAX || strcspn(tok, "'\"`\\") < n ||
	    tok[0] == '#' || strncmp(tok, "--", 2) == 0 ||
	    strncmp(tok, "/*", 2) == 0) {
		snprintf(s->err, sizeof(s->err), "line %d: unusable "
		    "delimiter (at most %d characters, no quote, backslash "
		    "or comment)", line, SQLSPLIT_DELIM_MAX);
		return NULL;
	}
	memcpy(s->delim, tok, n);
	s->delim[n] = '\0';
	s->dlen = n;
	sqlsplit_blank(p, q, &line);
	return q;
}

/* p is at a quote: returns the character after the closing one, or NULL
 * when the text ends first. */
static char *
sqlsplit_quote(char *p, int *line)
{
	char q = *p++;

	for (; *p != '\0'; p++) {
		if (*p == '\n')
			(*line)++;
		if (q != '`' && *p == '\\' && p[1] != '\0') {
			if (p[1] == '\n')
				(*line)++;
			p++;
		} else if (*p == q) {
			return p + 1;
		}
	}
	return NULL;
}

/* Ends the statement that starts at first (not a blank) at end, without
 * its trailing blanks. */
static char *
sqlsplit_trim(char *first, char *end)
{
	while (end > first && (sqlsplit_is_blank(end[-1]) || end[-1] == '\n'))
		end--;
	*end = '\0';
	return first;
}

int
sqlsplit_next(struct sqlsplit *s, char **stmt, int *line)
{
	char *p = s->p, *first = NULL, *q;
	int ln = s->line, bol = s->bol, first_line = 0;

	for (;;) {
		if (bol && sqlsplit_is_delimiter_line(p)) {
			if (first != NULL) {
				snprintf(s->err, sizeof(s->err), "line %d: "
				    "DELIMITER inside the statement of line "
				    "%d (its delimiter \"%s\" is missing)", ln,
				    first_line, s->delim);
				return -1;
			}
			if ((p = sqlsplit_delimiter(s, p, ln)) == NULL)
				return -1;
			continue;
		}
		if (*p == '\0') {
			s->p = p;
			s->line = ln;
			s->bol = bol;
			if (first == NULL)
				return 0;
			*stmt = sqlsplit_trim(first, p);
			*line = first_line;
			return 1;
		}
		if (*p == '\n') {
			ln++;
			bol = 1;
			p++;
			continue;
		}
		if (sqlsplit_is_blank(*p)) {
			p++;
			continue;
		}
		if (*p == '#' || (p[0] == '-' && p[1] == '-' &&
		    (sqlsplit_is_blank(p[2]) || p[2] == '\n' ||
		    p[2] == '\0'))) {
			q = p + strcspn(p, "\n");
			sqlsplit_blank(p, q, &ln);
			p = q;
			continue;
		}
		bol = 0;
		if (p[0] == '/' && p[1] == '*' && p[2] != '!' &&
		    !(p[2] == 'M' && p[3] == '!')) {
			if ((q = strstr(p + 2, "*/")) == NULL) {
				snprintf(s->err, sizeof(s->err), "line %d: "
				    "unterminated comment", ln);
				return -1;
			}
			sqlsplit_blank(p, q + 2, &ln);
			p = q + 2;
			continue;
		}
		if (strncmp(p, s->delim, s->dlen) == 0) {
			if (first == NULL) {
				p += s->dlen;
				continue;
			}
			*p = '\0';
			s->p = p + s->dlen;
			s->line = ln;
			s->bol = 0;
			*stmt = sqlsplit_trim(first, p);
			*line = first_line;
			return 1;
		}
		if (first == NULL) {
			first = p;
			first_line = ln;
		}
		if (p[0] == '/' && p[1] == '*') {
			/* An executable comment: the server reads it. */
			if ((q = strstr(p + 2, "*/")) == NULL) {
				snprintf(s->err, sizeof(s->err), "line %d: "
				    "unterminated comment", ln);
				return -1;
			}
			for (q += 2; p < q; p++)
				ln += *p == '\n';
			continue;
		}
		if (*p == '\'' || *p == '"' || *p == '`') {
			int open_line = ln;

			if ((q = sqlsplit_quote(p, &ln)) == NULL) {
				snprintf(s->err, sizeof(s->err), "line %d: "
				    "unterminated %c quote", open_line, *p);
				return -1;
			}
			p = q;
			continue;
		}
		p++;
	}
}
