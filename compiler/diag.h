// diag.h: gcc-style diagnostics ("file:line:col: error: ...", the source
// line and a caret), with an error cap and duplicate suppression.
#ifndef CNNC_DIAG_H
#define CNNC_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "net.h"

#define DIAG_MAX_ERRORS 20

typedef struct Diag {
  const char *file;  // name shown in messages
  const char *src;   // the whole source, for quoting lines
  size_t len;
  FILE *out;         // stderr unless a test redirects it
  int errors;        // errors reported (not counting suppressed ones)
  bool stop;         // the cap was reached: callers should give up
  Span seen[DIAG_MAX_ERRORS + 1]; // locations already reported
  int n_seen;
} Diag;

void diag_init(Diag *d, const char *file, const char *src, size_t len, FILE *out);

// Reports an error at span (span.len == 0: no source line is quoted);
// false if it was suppressed (a repeat, or past the cap).
bool diag_error(Diag *d, Span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// A note that explains the previous error (not counted).
void diag_note(Diag *d, Span span, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Formats a count with thousands separators ("14,112") into buf.
const char *fmt_count(char *buf, size_t n, long v);

#endif
