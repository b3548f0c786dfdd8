/*
 * uid.c - UUIDs on libuuid.
 */
#include "uid.h"

#include <string.h>
#include <uuid/uuid.h>

void
uid_new(char out[UID_LEN + 1])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

/* Parses s (n bytes) into u: 1, or 0 when it is not a UUID. */
static int
uid_parse(const char *s, size_t n, uuid_t u)
{
	char tmp[UID_LEN + 1];

	if (n != UID_LEN)
		return 0;
	memcpy(tmp, s, UID_LEN);
	tmp[UID_LEN] = '\0';
	return uuid_parse(tmp, u) == 0;
}

int
uid_valid(const char *s, size_t n)
{
	uuid_t u = { 0 };

	return uid_parse(s, n, u);
}

int
uid_canonical(const char *s, size_t n, char out[UID_LEN + 1])
{
	uuid_t u = { 0 };

	if (!uid_parse(s, n, u))
		return 0;
	uuid_unparse_lower(u, out);
	return 1;
}
