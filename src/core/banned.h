/* Functions we never call (git's banned.h idea): unbounded copies, hidden
 * global state, silent number parsing. Included into every translation unit
 * by the build; using one is a compile error. */
#ifndef PYTAKE_BANNED_H
#define PYTAKE_BANNED_H
/* System headers first, so their declarations are not rewritten. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
/* Object-like on purpose: any use of the name, called or not, fails. */
#define BANNED(f) sorry_##f##_is_banned_in_pytake
#undef strcpy
#define strcpy BANNED(strcpy)
#undef strcat
#define strcat BANNED(strcat)
#undef sprintf
#define sprintf BANNED(sprintf)
#undef vsprintf
#define vsprintf BANNED(vsprintf)
#undef strtok
#define strtok BANNED(strtok)
#undef atoi
#define atoi BANNED(atoi)
#undef atol
#define atol BANNED(atol)
#undef gmtime
#define gmtime BANNED(gmtime)
#undef localtime
#define localtime BANNED(localtime)
#undef gets
#define gets BANNED(gets)
#endif
