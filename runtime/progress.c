// progress.c: a tqdm-style bar ("epoch=1 loss=... batch_id=937: 100%|...|
// 938/938 [00:17<00:00, 53.41it/s]") and the reference's epoch lines.
#include "progress.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

// Monotonic seconds, immune to clock changes during a long run.
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Python's repr of a float: the shortest %g that reads back the same double,
// which is how the reference log prints loss.item().
static void py_repr(char *buf, size_t len, double v) {
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, len, "%.*g", p, v);
    if (strtod(buf, NULL) == v)
      break;
  }
  // repr always shows a fraction or an exponent: "1" would be "1.0"
  if (!strpbrk(buf, ".enN") && strlen(buf) + 2 < len)
    strcat(buf, ".0");
}

// tqdm's format_interval: mm:ss, or h:mm:ss from an hour on.
static void interval(char *buf, size_t len, double s) {
  long t = (long)s; // tqdm truncates
  if (t < 0)
    t = 0;
  long h = t / 3600, m = t / 60 % 60, sec = t % 60;
  if (h)
    snprintf(buf, len, "%ld:%02ld:%02ld", h, m, sec);
  else
    snprintf(buf, len, "%02ld:%02ld", m, sec);
}

// The bar line with a bar of barw cells in eighths (tqdm's unicode bar).
static int format_bar(char *buf, size_t len, int epoch, double loss, long done, long total,
                      double elapsed, int barw) {
  static const char *const part[8] = {"", "\u258f", "\u258e", "\u258d",
                                      "\u258c", "\u258b", "\u258a", "\u2589"};
  char ls[40], el[24], rem[24], rate[32], bar[512];
  py_repr(ls, sizeof ls, loss);
  double frac = total > 0 ? (double)done / (double)total : 0;
  if (frac > 1)
    frac = 1;
  if (barw > 100)
    barw = 100;
  long eighths = (long)(frac * barw * 8);
  long full = eighths / 8;
  size_t o = 0;
  bar[0] = 0;
  for (long i = 0; i < full; i++)
    o += (size_t)snprintf(bar + o, sizeof bar - o, "\u2588");
  if (full < barw) {
    o += (size_t)snprintf(bar + o, sizeof bar - o, "%s", eighths % 8 ? part[eighths % 8] : " ");
    for (long i = full + 1; i < barw; i++)
      o += (size_t)snprintf(bar + o, sizeof bar - o, " ");
  }
  interval(el, sizeof el, elapsed);
  double r = elapsed > 0 ? (double)done / elapsed : 0;
  if (r > 0) {
    interval(rem, sizeof rem, (double)(total - done) / r);
    if (r >= 1)
      snprintf(rate, sizeof rate, "%5.2fit/s", r);
    else
      snprintf(rate, sizeof rate, "%5.2fs/it", 1 / r);
  } else {
    snprintf(rem, sizeof rem, "?");
    snprintf(rate, sizeof rate, "?it/s");
  }
  return snprintf(buf, len, "epoch=%d loss=%s batch_id=%ld: %3.0f%%|%s| %ld/%ld [%s<%s, %s]",
                  epoch, ls, done > 0 ? done - 1 : 0, frac * 100, bar, done, total, el, rem,
                  rate);
}

// The bar line with the 10-cell bar of a narrow terminal.
int cnn_progress_format(char *buf, size_t len, int epoch, double loss, long done, long total,
                        double elapsed) {
  return format_bar(buf, len, epoch, loss, done, total, elapsed, 10);
}

// Terminal width, for a bar that fills the line like tqdm's.
static int term_cols(FILE *out) {
  struct winsize ws;
  if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

// Draws the line: in place on a tty, else as its own line.
static void draw(cnn_progress *p, long done, double loss, int final) {
  char line[1024];
  double el = now_s() - p->t0;
  if (p->tty) {
    // the bar takes what the text leaves of the terminal width, as in tqdm
    int text = format_bar(line, sizeof line, p->epoch, loss, done, p->total, el, 0);
    int barw = term_cols(p->out) - 1 - text;
    format_bar(line, sizeof line, p->epoch, loss, done, p->total, el, barw < 10 ? 10 : barw);
    fprintf(p->out, "\r%s%s", line, final ? "\n" : "");
  } else {
    format_bar(line, sizeof line, p->epoch, loss, done, p->total, el, 10);
    fprintf(p->out, "%s\n", line);
  }
  fflush(p->out);
  p->last_draw = now_s();
}

// Starts timing an epoch.
void cnn_progress_begin(cnn_progress *p, FILE *out, int epoch, long total) {
  memset(p, 0, sizeof *p);
  p->out = out;
  p->tty = isatty(fileno(out));
  p->epoch = epoch;
  p->total = total;
  p->t0 = p->last_draw = now_s();
  p->next_quarter = 1;
}

// Redraws at most 10 times a second on a tty; on a pipe, at 25/50/75%.
void cnn_progress_update(cnn_progress *p, long done, double loss) {
  if (p->tty) {
    if (now_s() - p->last_draw >= 0.1)
      draw(p, done, loss, 0);
    return;
  }
  // The 100% line is cnn_progress_end's, so the last batch draws nothing here.
  if (p->next_quarter < 4 && done < p->total && done * 4 >= p->next_quarter * p->total) {
    while (p->next_quarter < 4 && done * 4 >= p->next_quarter * p->total)
      p->next_quarter++;
    draw(p, done, loss, 0);
  }
}

// The final 100% line.
void cnn_progress_end(cnn_progress *p, double loss) {
  draw(p, p->total, loss, 1);
}

// The reference's epoch summary line (no newlines around it).
int cnn_epoch_line(char *buf, size_t len, int epoch, int train, double loss, long correct,
                   long total) {
  double pct = total > 0 ? 100.0 * (double)correct / (double)total : 0;
  return snprintf(buf, len, "Epoch %d--%s set: Average loss: %.4f, %s Accuracy: %ld/%ld (%.2f%%)",
                  epoch, train ? "Train" : "Test", loss, train ? "Training" : "Validation",
                  correct, total, pct);
}
