// report.c: the layer table. Cells are formatted first and columns sized to
// their widest cell, so the text form lines up for any network.
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "infer_plan.h"
#include "layers.h"

// The last two columns (firmware memory) exist only when the net has an
// inference plan; a net the inference code refuses keeps the plain table.
enum { COL_LAYER, COL_IN, COL_TRANSFORM, COL_OUT, COL_RF, COL_PARAMS, COL_MACS, COL_ACT,
       COL_FLASH, COL_RAM, N_COLS };

static const char *const headers[N_COLS] = {"Layer", "Input",  "Transform", "Output",
                                             "RF",    "Params", "MACs",      "Activation",
                                             "Flash f32/int8", "RAM f32/int8"};
// Numbers are right-aligned in text.
static const bool right[N_COLS] = {false, false, false, false, true, true, true, true, true, true};

// The firmware inference memory of a net, float [0] and int8 [1], from the
// plan emit_infer.c follows; per layer as infer_memory() attributes it (a
// conv's tables to the conv, an op's ring to the last layer fused into it).
typedef struct Memory {
  bool ok;
  char why[256];          // when !ok: the layer order inference cannot run
  long flash[2], ram[2];
  long *layer_flash[2], *layer_ram[2];
} Memory;

#define CELL 64

// An activation shape as the reference writes it: HxWxC.
static void shape_str(Shape s, char *buf) {
  snprintf(buf, CELL, "%dx%dx%d", s.h, s.w, s.c);
}

const char *report_transform(const Layer *l, char *buf, size_t n) {
  layer_def(l->kind)->transform(l, buf, n);
  return buf;
}

// Fills m for net; m->ok false (with the reason) when there is no plan.
static void memory_get(const Net *net, Memory *m) {
  memset(m, 0, sizeof *m);
  size_t n = (size_t)net->n_layers + 1;
  for (int q = 0; q < 2; q++) {
    m->layer_flash[q] = calloc(n, sizeof(long));
    m->layer_ram[q] = calloc(n, sizeof(long));
    if (!m->layer_flash[q] || !m->layer_ram[q]) {
      snprintf(m->why, sizeof m->why, "out of memory");
      return;
    }
  }
  for (int q = 0; q < 2; q++)
    if (infer_memory(net, q == 1, &m->flash[q], &m->ram[q], m->layer_flash[q], m->layer_ram[q]) < 0) {
      // infer_memory gives no reason; the plan builder does.
      InferPlan p;
      if (infer_plan_build(net, q == 1, &p, m->why, sizeof m->why) == 0) {
        infer_plan_free(&p);
        snprintf(m->why, sizeof m->why, "no inference plan");
      }
      return;
    }
  m->ok = true;
}

// Frees what memory_get allocated.
static void memory_free(Memory *m) {
  for (int q = 0; q < 2; q++) {
    free(m->layer_flash[q]);
    free(m->layer_ram[q]);
  }
}

// A float/int8 pair of byte counts, blank when the layer holds none.
static void pair_str(long f, long q, char *buf) {
  if (f == 0 && q == 0) {
    buf[0] = '\0';
    return;
  }
  char a[28], b[28]; // a long with separators fits; both and " / " fit a cell
  fmt_count(a, sizeof a, f);
  fmt_count(b, sizeof b, q);
  snprintf(buf, CELL, "%s / %s", a, b);
}

// A count with separators, or "-" for zero.
static void count_str(long v, char *buf) {
  if (v == 0)
    snprintf(buf, CELL, "-");
  else
    fmt_count(buf, CELL, v);
}

// Formats every cell of layer i's row.
static void row_cells(const Net *net, int i, const Memory *m, char cells[N_COLS][CELL]) {
  const Layer *l = &net->layers[i];
  if (l->block)
    snprintf(cells[COL_LAYER], CELL, "%.40s/%s", l->block, layer_kind_name(l->kind));
  else
    snprintf(cells[COL_LAYER], CELL, "%s", layer_kind_name(l->kind));
  shape_str(l->in, cells[COL_IN]);
  report_transform(l, cells[COL_TRANSFORM], CELL);
  shape_str(l->out, cells[COL_OUT]);
  // The RF changes only where a window is applied; elementwise rows leave it blank.
  if (layer_def(l->kind)->window && l->rf == l->rf_w)
    snprintf(cells[COL_RF], CELL, "%d", l->rf);
  else if (layer_def(l->kind)->window)
    snprintf(cells[COL_RF], CELL, "%dx%d", l->rf, l->rf_w);
  else
    cells[COL_RF][0] = '\0';
  count_str(l->n_params, cells[COL_PARAMS]);
  count_str(l->macs, cells[COL_MACS]);
  fmt_count(cells[COL_ACT], CELL, l->act_size);
  if (m->ok) {
    pair_str(m->layer_flash[0][i], m->layer_flash[1][i], cells[COL_FLASH]);
    pair_str(m->layer_ram[0][i], m->layer_ram[1][i], cells[COL_RAM]);
  }
}

// Prints the first ncols cells of one text row padded to the column widths,
// without the trailing blanks of empty last cells.
static void text_row(FILE *out, char cells[N_COLS][CELL], const int *w, int ncols) {
  char line[N_COLS * (CELL + 2) + 1];
  int len = 0;
  for (int j = 0; j < ncols; j++) {
    const char *sep = j == 0 ? "" : "  ";
    int o = snprintf(line + len, sizeof line - (size_t)len, right[j] ? "%s%*s" : "%s%-*s", sep,
                     w[j], cells[j]);
    if (o > 0)
      len += o;
    if (len >= (int)sizeof line) { // cannot happen: cells and widths are at most CELL
      len = (int)sizeof line - 1;
      break;
    }
  }
  while (len > 0 && line[len - 1] == ' ')
    len--;
  fprintf(out, "%.*s\n", len, line);
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
  if (t->label_smoothing != 0)
    fprintf(out, "  loss       cross-entropy, label_smoothing %g\n", t->label_smoothing);
}

void report_summary(const Net *net, FILE *out, bool markdown) {
  report_summary_weights(net, out, markdown, NULL);
}

void report_summary_weights(const Net *net, FILE *out, bool markdown, const ReportWeights *wt) {
  int n = net->n_layers;
  char (*cells)[N_COLS][CELL] = calloc((size_t)n + 1, sizeof *cells);
  if (!cells)
    return;
  Memory m;
  memory_get(net, &m);
  int ncols = m.ok ? N_COLS : COL_FLASH;
  int w[N_COLS];
  for (int j = 0; j < N_COLS; j++) {
    snprintf(cells[0][j], CELL, "%s", headers[j]);
    w[j] = (int)strlen(headers[j]);
  }
  for (int i = 0; i < n; i++) {
    row_cells(net, i, &m, cells[i + 1]);
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
  char ff[CELL], fq[CELL], rf[CELL], rq[CELL];
  fmt_count(ff, CELL, m.flash[0]);
  fmt_count(fq, CELL, m.flash[1]);
  fmt_count(rf, CELL, m.ram[0]);
  fmt_count(rq, CELL, m.ram[1]);
  if (markdown) {
    fprintf(out, "### %s: %s → %d classes\n\n", net->name, in, net->classes);
    for (int i = 0; i <= n; i++) {
      for (int j = 0; j < ncols; j++)
        fprintf(out, "| %s ", cells[i][j]);
      fputs("|\n", out);
      if (i == 0) {
        for (int j = 0; j < ncols; j++)
          fputs(right[j] ? "|---:" : "|---", out);
        fputs("|\n", out);
      }
    }
    fprintf(out,
            "\n**Total:** %s trainable parameters (%s bytes as float), %s non-trainable state values "
            "(BN running mean and variance), %s MACs per image, peak activation %s values (%s bytes).\n",
            p, pb, st, macs, act, actb);
    if (m.ok)
      fprintf(out,
              "\n**Firmware inference** (BatchNorm, dropout and ReLU folded into the conv before "
              "them; each op streams its output through a ring of rows): flash (weights) %s B "
              "float, %s B int8; RAM (arena) %s B float, %s B int8.\n",
              ff, fq, rf, rq);
    else
      fprintf(out, "\n**Firmware inference:** not available (%s).\n", m.why);
    if (wt)
      fprintf(out, "\n**Weights:** `%s`, epoch %lu, step %llu.\n", wt->path, wt->epoch, wt->step);
  } else {
    fprintf(out, "network %s: input %s, %d classes, %d layers\n\n", net->name, in, net->classes, n);
    for (int i = 0; i <= n; i++)
      text_row(out, cells[i], w, ncols);
    fprintf(out, "\ntrainable parameters  %s (%s bytes as float)\n", p, pb);
    fprintf(out, "non-trainable state   %s (BN running mean and variance)\n", st);
    fprintf(out, "MACs per image        %s\n", macs);
    fprintf(out, "peak activation       %s values (%s bytes as float)\n", act, actb);
    if (m.ok) {
      fprintf(out, "\nfirmware inference (BN, dropout, ReLU folded into the conv before them; row rings):\n");
      fprintf(out, "  flash (weights)     %s B float, %s B int8\n", ff, fq);
      fprintf(out, "  RAM (arena)         %s B float, %s B int8\n", rf, rq);
    } else {
      fprintf(out, "\nfirmware inference: not available (%s)\n", m.why);
    }
    if (wt)
      fprintf(out, "\nweights %s: epoch %lu, step %llu\n", wt->path, wt->epoch, wt->step);
    train_summary(net, out);
  }
  memory_free(&m);
  free(cells);
}
