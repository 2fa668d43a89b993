// test_progress.c: runtime/progress.c — the tqdm-style bar line of the
// reference log (10-cell bar when not filling a terminal), partial bars in
// eighths, the time and rate fields, the reference's epoch summary lines, and
// the few plain lines a non-tty gets per epoch.
#define _XOPEN_SOURCE 700 // posix_openpt and friends, for the terminal test
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "progress.h"

#define FULL "\u2588"

// The reference's first bar line, with its 10-cell bar.
static void test_reference_line(void) {
  char buf[512];
  // 938 / 17.562 s = 53.41 it/s (17.56 s exactly would be 53.42)
  int n = cnn_progress_format(buf, sizeof buf, 1, 0.24695727229118347, 938, 938, 17.562);
  const char *want = "epoch=1 loss=0.24695727229118347 batch_id=937: 100%|" FULL FULL FULL FULL
                     FULL FULL FULL FULL FULL FULL "| 938/938 [00:17<00:00, 53.41it/s]";
  CU_ASSERT_STRING_EQUAL(buf, want);
  CU_ASSERT_EQUAL(n, (int)strlen(want));
}

// A float32 loss printed as Python prints loss.item(): shortest round-trip repr.
static void test_loss_repr(void) {
  char buf[512];
  cnn_progress_format(buf, sizeof buf, 2, (double)0.1f, 938, 938, 20.0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "epoch=2 loss=0.10000000149011612 batch_id=937: "));
  cnn_progress_format(buf, sizeof buf, 1, 2.0, 938, 938, 20.0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, " loss=2.0 batch_id"));
  cnn_progress_format(buf, sizeof buf, 1, 0.5, 938, 938, 20.0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, " loss=0.5 batch_id"));
  cnn_progress_format(buf, sizeof buf, 1, 1e-05, 938, 938, 20.0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, " loss=1e-05 batch_id"));
  cnn_progress_format(buf, sizeof buf, 1, 0.009025141596794128, 938, 938, 20.0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, " loss=0.009025141596794128 batch_id"));
}

// Half done: five full cells, then blanks; time left from the rate.
static void test_half_bar(void) {
  char buf[512];
  cnn_progress_format(buf, sizeof buf, 3, 0.5, 469, 938, 7.0);
  CU_ASSERT_STRING_EQUAL(buf, "epoch=3 loss=0.5 batch_id=468:  50%|" FULL FULL FULL FULL FULL
                              "     | 469/938 [00:07<00:07, 67.00it/s]");
}

// Partial cells in eighths: 150/938 of 80 eighths = 12 -> one full cell and a half.
static void test_eighths(void) {
  char buf[512];
  cnn_progress_format(buf, sizeof buf, 1, 0.5, 150, 938, 3.0);
  CU_ASSERT_STRING_EQUAL(buf, "epoch=1 loss=0.5 batch_id=149:  16%|" FULL "\u258c"
                              "        | 150/938 [00:03<00:15, 50.00it/s]");
  // 1/938: under one eighth, the bar is all blanks
  cnn_progress_format(buf, sizeof buf, 1, 0.5, 1, 938, 1.0);
  CU_ASSERT_STRING_EQUAL(buf, "epoch=1 loss=0.5 batch_id=0:   0%|          "
                              "| 1/938 [00:01<15:37,  1.00it/s]");
  // 937/938: 79 eighths -> nine full cells and a 7/8 cell
  cnn_progress_format(buf, sizeof buf, 1, 0.5, 937, 938, 1.0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "100%|" FULL FULL FULL FULL FULL FULL FULL FULL FULL
                                     "\u2589| 937/938"));
}

// Slow steps switch to s/it; an hour or more shows h:mm:ss; no time yet shows ?.
static void test_rates_and_intervals(void) {
  char buf[512];
  cnn_progress_format(buf, sizeof buf, 1, 0.5, 2, 938, 4.0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "| 2/938 [00:04<31:12,  2.00s/it]"));
  cnn_progress_format(buf, sizeof buf, 1, 0.5, 938, 938, 3725.0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "| 938/938 [1:02:05<00:00,  3.97s/it]"));
  cnn_progress_format(buf, sizeof buf, 4, 0.5, 0, 938, 0.0);
  CU_ASSERT_STRING_EQUAL(buf, "epoch=4 loss=0.5 batch_id=0:   0%|          "
                              "| 0/938 [00:00<?, ?it/s]");
  cnn_progress_format(buf, sizeof buf, 1, 0.5, 938, 938, 5.0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "[00:05<00:00, 187.60it/s]"));
}

// A short buffer is truncated and NUL-terminated; the full length is returned.
static void test_truncation(void) {
  char big[512], small[20];
  memset(small, 'X', sizeof small);
  int n = cnn_progress_format(big, sizeof big, 1, 0.5, 10, 938, 1.0);
  int m = cnn_progress_format(small, sizeof small, 1, 0.5, 10, 938, 1.0);
  CU_ASSERT_EQUAL(n, m);
  CU_ASSERT_EQUAL(small[sizeof small - 1], '\0');
  CU_ASSERT_EQUAL(strncmp(small, big, sizeof small - 1), 0);
}

// The reference's train and test summary lines, character for character.
static void test_epoch_lines(void) {
  char buf[256];
  cnn_epoch_line(buf, sizeof buf, 1, 1, 0.24695727229118347, 50740, 60000);
  CU_ASSERT_STRING_EQUAL(
      buf, "Epoch 1--Train set: Average loss: 0.2470, Training Accuracy: 50740/60000 (84.57%)");
  cnn_epoch_line(buf, sizeof buf, 1, 0, 0.0878, 9805, 10000);
  CU_ASSERT_STRING_EQUAL(
      buf, "Epoch 1--Test set: Average loss: 0.0878, Validation Accuracy: 9805/10000 (98.05%)");
  cnn_epoch_line(buf, sizeof buf, 20, 0, 0.01711, 9954, 10000);
  CU_ASSERT_STRING_EQUAL(
      buf, "Epoch 20--Test set: Average loss: 0.0171, Validation Accuracy: 9954/10000 (99.54%)");
  // nothing counted: 0%, not a division by zero
  cnn_epoch_line(buf, sizeof buf, 1, 0, 0.0, 0, 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "Validation Accuracy: 0/0 (0.00%)"));
}

// Reads all of f into buf from the start; returns the byte count.
static size_t slurp(FILE *f, char *buf, size_t len) {
  rewind(f);
  size_t n = fread(buf, 1, len - 1, f);
  buf[n] = 0;
  return n;
}

// Counts the lines of s and checks none holds a carriage return.
static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) {
    CU_ASSERT_NOT_EQUAL(*s, '\r');
    n += *s == '\n';
  }
  return n;
}

// On a file a full epoch of 938 updates prints 25/50/75% and the final line.
static void test_non_tty_lines(void) {
  static char out[8192];
  FILE *f = tmpfile();
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  cnn_progress p;
  cnn_progress_begin(&p, f, 5, 938);
  CU_ASSERT_EQUAL(p.tty, 0);
  for (long b = 1; b <= 938; b++)
    cnn_progress_update(&p, b, 0.25);
  cnn_progress_end(&p, 0.125);
  size_t n = slurp(f, out, sizeof out);
  fclose(f);
  CU_ASSERT(n > 0 && out[n - 1] == '\n');
  CU_ASSERT_EQUAL(count_lines(out), 4);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "epoch=5 loss=0.25 batch_id=234:  25%|"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "batch_id=468:  50%|"));
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "batch_id=703:  75%|"));
  // the last line is the final 100% with the end's loss
  const char *last = strstr(out, "epoch=5 loss=0.125 batch_id=937: 100%|");
  CU_ASSERT_PTR_NOT_NULL(last);
  CU_ASSERT(last && strstr(last, "| 938/938 [") && strchr(last, '\n') == out + n - 1);
}

// Short epochs (a --limit-batches run) still print only a few lines.
static void test_non_tty_short(void) {
  static char out[4096];
  for (long total = 1; total <= 9; total++) {
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    cnn_progress p;
    cnn_progress_begin(&p, f, 1, total);
    for (long b = 1; b <= total; b++)
      cnn_progress_update(&p, b, 1.5);
    cnn_progress_end(&p, 1.5);
    slurp(f, out, sizeof out);
    fclose(f);
    int lines = count_lines(out);
    CU_ASSERT(lines >= 1 && lines <= 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "100%|"));
  }
}

// On a terminal the bar is redrawn in place with \r and fills the width less one column.
static void test_tty_fills_width(void) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) || unlockpt(m)) {
    if (m >= 0)
      close(m);
    return; // no pseudo-terminals here: nothing to test
  }
  int s = open(ptsname(m), O_RDWR | O_NOCTTY);
  CU_ASSERT_FATAL(s >= 0);
  struct winsize ws = {.ws_row = 24, .ws_col = 120};
  CU_ASSERT_EQUAL(ioctl(s, TIOCSWINSZ, &ws), 0);
  FILE *f = fdopen(s, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  cnn_progress p;
  cnn_progress_begin(&p, f, 2, 10);
  CU_ASSERT_EQUAL(p.tty, 1);
  for (long b = 1; b <= 10; b++)
    cnn_progress_update(&p, b, 0.5);
  cnn_progress_end(&p, 0.5);
  char out[4096];
  ssize_t n = read(m, out, sizeof out - 1);
  fclose(f);
  close(m);
  CU_ASSERT_FATAL(n > 0);
  out[n] = 0;
  // the line discipline turns the final \n into \r\n
  CU_ASSERT_EQUAL(out[0], '\r');
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "epoch=2 loss=0.5 batch_id=9: 100%|" FULL FULL FULL));
  char *end = strstr(out, "\r\n");
  CU_ASSERT_PTR_NOT_NULL_FATAL(end);
  long cols = 0; // UTF-8 code points: each bar cell is one column
  for (const char *c = out + 1; c < end; c++)
    cols += ((unsigned char)*c & 0xC0) != 0x80;
  CU_ASSERT_EQUAL(cols, 119);
}

// Registers the suite.
void register_tests(void) {
  CU_pSuite s = CU_add_suite("progress", NULL, NULL);
  CU_add_test(s, "reference bar line", test_reference_line);
  CU_add_test(s, "loss as Python repr", test_loss_repr);
  CU_add_test(s, "half bar", test_half_bar);
  CU_add_test(s, "partial cells in eighths", test_eighths);
  CU_add_test(s, "rates and intervals", test_rates_and_intervals);
  CU_add_test(s, "truncation", test_truncation);
  CU_add_test(s, "epoch lines", test_epoch_lines);
  CU_add_test(s, "non-tty: four lines per epoch", test_non_tty_lines);
  CU_add_test(s, "non-tty: short epochs", test_non_tty_short);
  CU_add_test(s, "tty: bar fills the terminal width", test_tty_fills_width);
}
