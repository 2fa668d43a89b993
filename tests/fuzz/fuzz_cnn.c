// fuzz_cnn.c: libFuzzer harness for the .cnn front end (lexer, parser, block
// expansion, shape checker) and `cnnc summary`, through the public entry points
// of check.h and report.h only. Besides sanitizer reports it traps when a
// rejected input gets no diagnostic at all.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t diag_bytes; // bytes the checker wrote for the current input

// fopencookie write: counts the bytes and drops them.
static ssize_t count_write(void *cookie, const char *buf, size_t n) {
  (void)cookie;
  (void)buf;
  diag_bytes += n;
  return (ssize_t)n;
}

// A stream that only counts, so a silent rejection can be detected.
static FILE *counting_stream(void) {
  cookie_io_functions_t io = {.write = count_write};
  FILE *f = fopencookie(NULL, "w", io);
  if (!f)
    abort();
  return f;
}

// One input: load it as a .cnn file; on success print both summaries.
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *diag, *sink;
  if (!diag) {
    diag = counting_stream();
    sink = counting_stream();
  }
  // The loader takes a length, so the copy needs no NUL; an exact-size heap
  // copy lets ASan see a read past the end.
  char *src = malloc(size ? size : 1);
  if (!src)
    return 0;
  for (size_t i = 0; i < size; i++)
    src[i] = (char)data[i];
  diag_bytes = 0;
  Net net;
  int errors = cnnc_load_string_diag("fuzz.cnn", src, size, &net, diag);
  fflush(diag);
  if (errors > 0 && diag_bytes == 0)
    __builtin_trap(); // rejected without a single message
  if (errors == 0) {
    report_summary(&net, sink, false);
    report_summary(&net, sink, true);
    ReportWeights w = {.path = "fuzz.ckpt", .epoch = 3, .step = 42};
    report_summary_weights(&net, sink, false, &w);
    fflush(sink);
    net_free(&net);
  }
  free(src);
  return 0;
}
