/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * Well-known constant names, both ways: policy files may write AF_UNIX
 * instead of 1, and reports print socket(AF_INET, SOCK_STREAM, 0) instead of
 * socket(0x2, 0x1, 0x0), so nobody has to look numbers up.
 */

/* Look a constant up by name (AF_UNIX, O_RDONLY, FIONBIO...); false if unknown. */
bool emu_constant_lookup(const char *name, uint64_t *ret_value);

/* "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0)"; args the syscall does not take are omitted. */
char *emu_syscall_format(int nr, const char *name, const uint64_t args[6]);
