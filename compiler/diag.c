// diag.c: gcc-style diagnostics with a quoted source line and caret.
#include "diag.h"

#include <stdarg.h>
#include <string.h>

// Lines longer than this are quoted as a window around the column.
#define QUOTE_WIDTH 100

void diag_init(Diag *d, const char *file, const char *src, size_t len, FILE *out) {
  memset(d, 0, sizeof *d);
  d->file = file;
  d->src = src;
  d->len = len;
  d->out = out ? out : stderr;
}

// Finds line `line` (1-based) in the source; returns its start and length.
static const char *find_line(const Diag *d, int line, size_t *n) {
  if (!d->src || line < 1)
    return NULL;
  const char *p = d->src, *end = d->src + d->len;
  for (int l = 1; l < line; l++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      return NULL;
    p = nl + 1;
  }
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  *n = (size_t)((nl ? nl : end) - p);
  return p;
}

// Prints the source line (or a window of a long one) and a ^~~~ caret.
static void quote(Diag *d, Span s) {
  size_t n;
  const char *line = find_line(d, s.line, &n);
  if (!line || s.len <= 0)
    return;
  size_t col = s.col > 0 ? (size_t)s.col - 1 : 0;
  if (col > n)
    col = n;
  size_t from = 0, to = n;
  if (n > QUOTE_WIDTH) {
    from = col > QUOTE_WIDTH / 2 ? col - QUOTE_WIDTH / 2 : 0;
    to = from + QUOTE_WIDTH < n ? from + QUOTE_WIDTH : n;
  }
  size_t len = (size_t)s.len;
  if (col + len > to)
    len = to > col ? to - col : 1;
  fputs(from > 0 ? " ..." : " ", d->out);
  // Control bytes and non-ASCII are shown as '?' so the caret stays aligned.
  for (size_t i = from; i < to; i++) {
    unsigned char c = (unsigned char)line[i];
    fputc(c == '\t' || (c >= 0x20 && c < 0x7f) ? c : '?', d->out);
  }
  fputs(to < n ? "...\n" : "\n", d->out);
  fputs(from > 0 ? "    " : " ", d->out);
  for (size_t i = from; i < col; i++)
    fputc(line[i] == '\t' ? '\t' : ' ', d->out);
  fputc('^', d->out);
  for (size_t i = 1; i < len; i++)
    fputc('~', d->out);
  fputc('\n', d->out);
}

// Prints "file:line:col: kind: message".
static void vreport(Diag *d, Span s, const char *kind, const char *fmt, va_list ap) {
  const char *file = s.file ? s.file : d->file;
  if (s.line > 0)
    fprintf(d->out, "%s:%d:%d: %s: ", file, s.line, s.col, kind);
  else
    fprintf(d->out, "%s: %s: ", file, kind);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  quote(d, s);
}

bool diag_error(Diag *d, Span s, const char *fmt, ...) {
  if (d->stop)
    return false;
  // One error per location: a block called twice would repeat its errors.
  for (int i = 0; i < d->n_seen; i++)
    if (s.line > 0 && d->seen[i].line == s.line && d->seen[i].col == s.col)
      return false;
  if (d->errors == DIAG_MAX_ERRORS) {
    fprintf(d->out, "%s: error: too many errors, stopping\n", d->file);
    d->errors++;
    d->stop = true;
    return false;
  }
  d->seen[d->n_seen++] = s;
  d->errors++;
  va_list ap;
  va_start(ap, fmt);
  vreport(d, s, "error", fmt, ap);
  va_end(ap);
  return true;
}

void diag_note(Diag *d, Span s, const char *fmt, ...) {
  if (d->stop)
    return;
  va_list ap;
  va_start(ap, fmt);
  vreport(d, s, "note", fmt, ap);
  va_end(ap);
}

const char *fmt_count(char *buf, size_t n, long v) {
  char tmp[32];
  int len = snprintf(tmp, sizeof tmp, "%ld", v < 0 ? -v : v);
  size_t o = 0;
  if (v < 0 && o + 1 < n)
    buf[o++] = '-';
  for (int i = 0; i < len && o + 1 < n; i++) {
    if (i > 0 && (len - i) % 3 == 0 && o + 1 < n)
      buf[o++] = ',';
    if (o + 1 < n)
      buf[o++] = tmp[i];
  }
  buf[o] = '\0';
  return buf;
}
