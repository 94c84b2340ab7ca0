/* redact: command lines with their secrets taken out, for everything pymemd serves.
 *
 * The rule (README "What each endpoint reveals" quotes it). The arguments are cut into words at
 * blanks (an argument such as `sh -c "..."` holds several); a word is sensitive when it contains,
 * compared without regard to case, one of REDACT_KEYWORDS. Then:
 *   1. a word that starts with `-`, has no `=` and is sensitive (`--db-password`, `-api-key`,
 *      `--requirepass`) hides the word after it: the next word of the same argument or, when
 *      the flag ends its argument, the whole next argument (a value with blanks is hidden whole);
 *   2. a sensitive word that ends in `:` (a header: `Authorization: Bearer x`, `X-Api-Key: x`)
 *      hides the rest of its argument, or the whole next argument when it ends its own;
 *   3. `NAME=VALUE` anywhere in a word, where NAME is the run of letters, digits, `_`, `-` and
 *      `.` right before the `=` and is sensitive (`--password=x`, `token=x`, `-Dapp.secret=x`,
 *      `PGPASSWORD=x`, `?access_token=x&page=2`): VALUE, up to the next `&` or the word's end;
 *   4. the user information of a URL (`scheme://user:pass@host`): the password when there is
 *      one (`user:MASK@`), else the whole of it (a token used as the user: `https:` `//MASK@host`).
 * Each hidden value becomes REDACT_MASK. Values the rule cannot see (`-pSECRET`, `mysql -p`'s
 * style, a secret as a plain positional argument) are not hidden: `cmdline = hidden` is the
 * setting for those. */
#pragma once

#define REDACT_MASK     "***"
#define REDACT_KEYWORDS "pass, pwd, secret, token, key, credential, auth"

typedef enum CmdlineMode {
    CMDLINE_FULL,     /* as the kernel has it */
    CMDLINE_REDACTED, /* through redact_argv() (the default) */
    CMDLINE_HIDDEN,   /* not served at all: null */
} CmdlineMode;

/* "full", "redacted" or "hidden" to the mode, or -EINVAL. */
int redact_mode_from_string(const char *s);
const char *redact_mode_name(CmdlineMode m);

/* The arguments argv[0..] (NULL-terminated) joined with single spaces, with the rule above
 * applied. Returns a string the caller frees, or NULL when out of memory. */
char *redact_argv(const char *const *argv);
