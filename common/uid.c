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

int
uid_valid(const char *s, size_t n)
{
	char tmp[UID_LEN + 1];
	uuid_t u;

	if (n != UID_LEN)
		return 0;
	memcpy(tmp, s, UID_LEN);
	tmp[UID_LEN] = '\0';
	return uuid_parse(tmp, u) == 0;
}
