// error.h: how runtime functions report a failure: a message naming the
// file and what is wrong, written into the caller's buffer.
#ifndef CNN_ERROR_H
#define CNN_ERROR_H

#include <stddef.h>

// printf into the caller's error buffer (which may be NULL).
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void cnn_seterr(char *err, size_t errlen, const char *fmt, ...);

#endif
