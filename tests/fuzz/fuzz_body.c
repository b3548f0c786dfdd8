/*
 * fuzz_body.c - libFuzzer harness for the POST /customers body parser and
 * validator (app/validate.c), and the header validators.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "app/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct new_customer c;
	char err[256], ct[64];
	size_t n;
	int st;

	st = validate_customer_body((const char *)data, size, &c, err,
	    sizeof(err));
	if (st == 0) {
		/* What is accepted satisfies the rules on its own. */
		if (validate_email(c.email, strlen(c.email), err,
		    sizeof(err)) != 0 ||
		    validate_name(c.name, strlen(c.name), err, sizeof(err)) != 0)
			__builtin_trap();
	} else if (st != 400 && st != 422) {
		__builtin_trap();
	}
	validate_idem_key((const char *)data, size, err, sizeof(err));
	validate_utf8((const char *)data, size, &n);
	n = size < sizeof(ct) - 1 ? size : sizeof(ct) - 1;
	memcpy(ct, data, n);
	ct[n] = '\0';
	validate_json_content_type(ct);
	return 0;
}
