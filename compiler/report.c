// report.c: the layer table. Cells are formatted first and columns sized to
// their widest cell, so the text form lines up for any network.
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "diag.h"

enum { COL_LAYER, COL_IN, COL_TRANSFORM, COL_OUT, COL_RF, COL_PARAMS, COL_MACS, COL_ACT, N_COLS };

static const char *const headers[N_COLS] = {"Layer", "Input",  "Transform", "Output",
                                             "RF",    "Params", "MACs",      "Activation"};
// Numbers are right-aligned in text.
static const bool right[N_COLS] = {false, false, false, false, true, true, true, true};

#define CELL 64

// An activation shape as the reference writes it: HxWxC.
static void shape_str(Shape s, char *buf) {
  snprintf(buf, CELL, "%dx%dx%d", s.h, s.w, s.c);
}

const char *report_transform(const Layer *l, char *buf, size_t n) {
  switch (l->kind) {
  case L_CONV: {
    int o = snprintf(buf, n, "(%dx%dx%d)x%d", l->k, l->k, l->in.c, l->out.c);
    if (l->stride != 1 && o >= 0 && (size_t)o < n)
      o += snprintf(buf + o, n - (size_t)o, " s%d", l->stride);
    if (l->pad && o >= 0 && (size_t)o < n)
      o += snprintf(buf + o, n - (size_t)o, " p%d", l->pad);
    if (l->bias && o >= 0 && (size_t)o < n)
      snprintf(buf + o, n - (size_t)o, " +bias");
    break;
  }
  case L_BATCHNORM: snprintf(buf, n, "BN(%d)", l->out.c); break;
  case L_DROPOUT: snprintf(buf, n, "Dropout(%g%%)", l->p * 100); break;
  case L_RELU: snprintf(buf, n, "ReLU"); break;
  case L_MAXPOOL:
    if (l->stride == l->k)
      snprintf(buf, n, "MP(%dx%d)", l->k, l->k);
    else
      snprintf(buf, n, "MP(%dx%d s%d)", l->k, l->k, l->stride);
    break;
  case L_GAP: snprintf(buf, n, "GAP"); break;
  case L_LOG_SOFTMAX: snprintf(buf, n, "LogSoftmax"); break;
  }
  return buf;
}

// A count with separators, or "-" for zero.
static void count_str(long v, char *buf) {
  if (v == 0)
    snprintf(buf, CELL, "-");
  else
    fmt_count(buf, CELL, v);
}

// Formats every cell of one layer's row.
static void row_cells(const Layer *l, char cells[N_COLS][CELL]) {
  if (l->block)
    snprintf(cells[COL_LAYER], CELL, "%.40s/%s", l->block, layer_kind_name(l->kind));
  else
    snprintf(cells[COL_LAYER], CELL, "%s", layer_kind_name(l->kind));
  shape_str(l->in, cells[COL_IN]);
  report_transform(l, cells[COL_TRANSFORM], CELL);
  shape_str(l->out, cells[COL_OUT]);
  // The RF changes only where a window is applied; elementwise rows leave it blank.
  if (l->kind == L_CONV || l->kind == L_MAXPOOL || l->kind == L_GAP)
    snprintf(cells[COL_RF], CELL, "%d", l->rf);
  else
    cells[COL_RF][0] = '\0';
  count_str(l->n_params, cells[COL_PARAMS]);
  count_str(l->macs, cells[COL_MACS]);
  fmt_count(cells[COL_ACT], CELL, l->act_size);
}

// Prints one text row padded to the column widths.
static void text_row(FILE *out, char cells[N_COLS][CELL], const int *w) {
  for (int j = 0; j < N_COLS; j++) {
    const char *sep = j == 0 ? "" : "  ";
    if (j == N_COLS - 1 && !right[j])
      fprintf(out, "%s%s", sep, cells[j]);
    else
      fprintf(out, right[j] ? "%s%*s" : "%s%-*s", sep, w[j], cells[j]);
  }
  fputc('\n', out);
}

// The train section in a few lines.
static void train_summary(const Net *net, FILE *out) {
  const TrainSpec *t = &net->train;
  fprintf(out, "\ntrain%s: %d epochs, batch %d, seed %llu\n", net->has_train ? "" : " (defaults)",
          t->epochs, t->batch, (unsigned long long)t->seed);
  fprintf(out, "  optimizer  sgd(lr = %g, momentum = %g, nesterov = %s, weight_decay = %g, dampening = %g)\n",
          t->lr, t->momentum, t->nesterov ? "true" : "false", t->weight_decay, t->dampening);
  switch (t->sched) {
  case SCHED_CONSTANT: fprintf(out, "  schedule   constant\n"); break;
  case SCHED_STEP: fprintf(out, "  schedule   step(step_size = %d, gamma = %g)\n", t->step_size, t->gamma); break;
  case SCHED_ONECYCLE:
    fprintf(out,
            "  schedule   onecycle(max_lr = %g, pct_start = %g, div_factor = %g, final_div_factor = %g, "
            "cycle_momentum = %s, base_momentum = %g, max_momentum = %g)\n",
            t->max_lr, t->pct_start, t->div_factor, t->final_div_factor,
            t->cycle_momentum ? "true" : "false", t->base_momentum, t->max_momentum);
    break;
  }
  fprintf(out, "  normalize  mean %g, std %g\n", t->mean, t->std);
  if (t->rotate == 0 && t->shift == 0)
    fprintf(out, "  augment    none\n");
  else
    fprintf(out, "  augment    rotate %g degrees, shift %g pixels\n", t->rotate, t->shift);
}

void report_summary(const Net *net, FILE *out, bool markdown) {
  int n = net->n_layers;
  char (*cells)[N_COLS][CELL] = calloc((size_t)n + 1, sizeof *cells);
  if (!cells)
    return;
  int w[N_COLS];
  for (int j = 0; j < N_COLS; j++) {
    snprintf(cells[0][j], CELL, "%s", headers[j]);
    w[j] = (int)strlen(headers[j]);
  }
  for (int i = 0; i < n; i++) {
    row_cells(&net->layers[i], cells[i + 1]);
    for (int j = 0; j < N_COLS; j++)
      if ((int)strlen(cells[i + 1][j]) > w[j])
        w[j] = (int)strlen(cells[i + 1][j]);
  }
  char in[CELL], p[CELL], st[CELL], macs[CELL], act[CELL], actb[CELL], pb[CELL];
  shape_str(net->input, in);
  fmt_count(p, CELL, net->n_params);
  fmt_count(pb, CELL, net->n_params * 4);
  fmt_count(st, CELL, net->n_state);
  fmt_count(macs, CELL, net->macs);
  fmt_count(act, CELL, net->max_act);
  fmt_count(actb, CELL, net->max_act * 4);
  if (markdown) {
    fprintf(out, "### %s: %s → %d classes\n\n", net->name, in, net->classes);
    for (int i = 0; i <= n; i++) {
      for (int j = 0; j < N_COLS; j++)
        fprintf(out, "| %s ", cells[i][j]);
      fputs("|\n", out);
      if (i == 0) {
        for (int j = 0; j < N_COLS; j++)
          fputs(right[j] ? "|---:" : "|---", out);
        fputs("|\n", out);
      }
    }
    fprintf(out,
            "\n**Total:** %s trainable parameters (%s bytes as float), %s non-trainable state values "
            "(BN running mean and variance), %s MACs per image, peak activation %s values (%s bytes).\n",
            p, pb, st, macs, act, actb);
  } else {
    fprintf(out, "network %s: input %s, %d classes, %d layers\n\n", net->name, in, net->classes, n);
    for (int i = 0; i <= n; i++)
      text_row(out, cells[i], w);
    fprintf(out, "\ntrainable parameters  %s (%s bytes as float)\n", p, pb);
    fprintf(out, "non-trainable state   %s (BN running mean and variance)\n", st);
    fprintf(out, "MACs per image        %s\n", macs);
    fprintf(out, "peak activation       %s values (%s bytes as float)\n", act, actb);
    train_summary(net, out);
  }
  free(cells);
}
