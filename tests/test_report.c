// test_report.c: `cnnc summary` output against the committed golden files,
// the cells the reference write-up's table has, and the firmware memory
// figures (the inference plan's, per layer and in total).
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "diag.h"
#include "infer_plan.h"
#include "report.h"

// Reads a whole file, or NULL.
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  int ch;
  while ((ch = fgetc(f)) != EOF)
    fputc(ch, m);
  fclose(m);
  fclose(f);
  return buf;
}

// The summary of a model, as report_summary prints it.
static char *summary(const char *model, bool markdown) {
  char path[256];
  snprintf(path, sizeof path, "models/%s.cnn", model);
  Net net;
  if (cnnc_load_file(path, &net) != 0)
    return NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  report_summary(&net, m, markdown);
  fclose(m);
  net_free(&net);
  return buf;
}

// Compares a model's summary with tests/golden/MODEL.{txt,md}.
static void golden(const char *model, bool markdown) {
  char path[256];
  snprintf(path, sizeof path, "tests/golden/%s.%s", model, markdown ? "md" : "txt");
  char *want = slurp(path), *got = summary(model, markdown);
  CU_ASSERT_PTR_NOT_NULL_FATAL(want);
  CU_ASSERT_PTR_NOT_NULL_FATAL(got);
  CU_ASSERT_STRING_EQUAL(got, want);
  if (strcmp(got, want) != 0)
    fprintf(stderr, "\n%s differs; got:\n%s", path, got);
  free(want);
  free(got);
}

static void test_golden_14k_text(void) { golden("mnist14k", false); }
static void test_golden_14k_md(void) { golden("mnist14k", true); }
static void test_golden_8ch_text(void) { golden("mnist8ch", false); }
static void test_golden_8ch_md(void) { golden("mnist8ch", true); }
static void test_golden_fc_text(void) { golden("mnist8ch_gap_fc", false); }
static void test_golden_fc_md(void) { golden("mnist8ch_gap_fc", true); }

static void test_cells(void) {
  char *s = summary("mnist14k", false);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "28x28x1   (3x3x1)x16   26x26x16   3     144"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "BN(16)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "Dropout(3%)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "MP(2x2)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "(1x1x24)x10"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "14,112"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "3,116,272"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "train: 20 epochs, batch 64, seed 1"));
  free(s);
  s = summary("mnist14k", true);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "| Layer | Input | Transform | Output | RF | Params | MACs | Activation |"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "| 9x9x24 | (3x3x24)x24 | 7x7x24 | 16 | 5,184 | 254,016 | 1,176 |"));
  CU_ASSERT_PTR_NULL(strstr(s, "train:"));
  free(s);
}

static void test_transform_cells(void) {
  char buf[64];
  Layer l = {.kind = L_CONV, .kh = 5, .kw = 5, .sh = 2, .sw = 2, .pt = 2, .pb = 2, .pl = 2, .pr = 2, .groups = 1,
             .bias = true, .in = {3, 32, 32}, .out = {8, 16, 16}};
  CU_ASSERT_STRING_EQUAL(report_transform(&l, buf, sizeof buf), "(5x5x3)x8 s2 p2 +bias");
  l = (Layer){.kind = L_MAXPOOL, .kh = 3, .kw = 3, .sh = 2, .sw = 2};
  CU_ASSERT_STRING_EQUAL(report_transform(&l, buf, sizeof buf), "MP(3x3 s2)");
  l = (Layer){.kind = L_DROPOUT, .p = 0.25};
  CU_ASSERT_STRING_EQUAL(report_transform(&l, buf, sizeof buf), "Dropout(25%)");
  l = (Layer){.kind = L_LOG_SOFTMAX};
  CU_ASSERT_STRING_EQUAL(report_transform(&l, buf, sizeof buf), "LogSoftmax");
}

// The text line of layer i (0-based) in a text summary, NUL-terminated in buf.
static const char *table_line(const char *s, int i, char *buf, size_t n) {
  const char *p = strstr(s, "\nLayer ");
  for (int k = 0; p && k <= i; k++)
    p = strchr(p + 1, '\n');
  if (!p)
    return "";
  p++;
  size_t len = strcspn(p, "\n");
  snprintf(buf, n, "%.*s", (int)(len < n ? len : n - 1), p);
  return buf;
}

// "a / b" as the Flash and RAM cells write a float/int8 pair.
static void pair(char *buf, size_t n, long a, long b) {
  char x[32], y[32];
  snprintf(buf, n, "%s / %s", fmt_count(x, sizeof x, a), fmt_count(y, sizeof y, b));
}

// Every model's summary shows the plan's flash and RAM: totals in text and
// markdown, each layer's share on its own row, and the shares add up.
static void test_memory(void) {
  const char *models[] = {"mnist14k", "mnist8ch", "mnist8ch_gap_fc"};
  for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
    char path[256];
    snprintf(path, sizeof path, "models/%s.cnn", models[m]);
    Net net;
    CU_ASSERT_EQUAL_FATAL(cnnc_load_file(path, &net), 0);
    long flash[2], ram[2], lf[2][64], lr[2][64];
    CU_ASSERT_FATAL(net.n_layers <= 64);
    for (int q = 0; q < 2; q++)
      CU_ASSERT_EQUAL_FATAL(infer_memory(&net, q == 1, &flash[q], &ram[q], lf[q], lr[q]), 0);
    char *text = summary(models[m], false), *md = summary(models[m], true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(md);
    char a[4][32], want[256];
    fmt_count(a[0], 32, flash[0]);
    fmt_count(a[1], 32, flash[1]);
    fmt_count(a[2], 32, ram[0]);
    fmt_count(a[3], 32, ram[1]);
    snprintf(want, sizeof want, "\n  flash (weights)     %s B float, %s B int8\n", a[0], a[1]);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    snprintf(want, sizeof want, "\n  RAM (arena)         %s B float, %s B int8\n", a[2], a[3]);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
    snprintf(want, sizeof want, "flash (weights) %s B float, %s B int8; RAM (arena) %s B float, %s B int8.",
             a[0], a[1], a[2], a[3]);
    CU_ASSERT_PTR_NOT_NULL(strstr(md, want));
    long sum[4] = {0, 0, 0, 0};
    for (int i = 0; i < net.n_layers; i++) {
      char line[512], cell[64];
      table_line(text, i, line, sizeof line);
      CU_ASSERT_PTR_NOT_NULL(strstr(line, layer_kind_name(net.layers[i].kind)));
      if (lf[0][i] || lf[1][i]) {
        pair(cell, sizeof cell, lf[0][i], lf[1][i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(line, cell));
      }
      if (lr[0][i] || lr[1][i]) {
        pair(cell, sizeof cell, lr[0][i], lr[1][i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(line, cell));
      }
      sum[0] += lf[0][i];
      sum[1] += lf[1][i];
      sum[2] += lr[0][i];
      sum[3] += lr[1][i];
    }
    CU_ASSERT(sum[0] == flash[0] && sum[1] == flash[1]);
    CU_ASSERT(sum[2] == ram[0] && sum[3] == ram[1]);
    free(text);
    free(md);
    net_free(&net);
  }
  // The figures of the write-up, as the generated mnist14k headers have them.
  char *s = summary("mnist14k", false);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "flash (weights)     56,040 B float, 14,986 B int8"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "RAM (arena)         18,816 B float, 4,736 B int8"));
  CU_ASSERT_PTR_NOT_NULL(strstr(s, "Activation  Flash f32/int8   RAM f32/int8\n"));
  // The first conv's tables on its row, its fused ring on the ReLU row.
  char line[512];
  CU_ASSERT_PTR_NOT_NULL(strstr(table_line(s, 0, line, sizeof line), "10,816       640 / 288"));
  CU_ASSERT_PTR_NOT_NULL(strstr(table_line(s, 3, line, sizeof line), "cbr/relu"));
  CU_ASSERT_PTR_NOT_NULL(strstr(line, "4,992 / 1,248"));
  // No row ends in the blanks of empty memory cells.
  CU_ASSERT_PTR_NULL(strstr(s, " \n"));
  free(s);
}

// A layer order the inference code cannot run: the summary still prints,
// says why there are no firmware figures, and leaves their columns out.
static void test_memory_refused(void) {
  const char *src = "network badorder;\ninput 28x28x1;\nconv(8, 3, bias = false);\nrelu;\n"
                    "batchnorm;\nconv(10, 1);\ngap;\nlog_softmax;\n";
  Net net;
  CU_ASSERT_EQUAL_FATAL(cnnc_load_string("bad.cnn", src, strlen(src), &net), 0);
  CU_ASSERT_EQUAL(infer_memory(&net, false, NULL, NULL, NULL, NULL), -1);
  for (int md = 0; md < 2; md++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    report_summary(&net, m, md);
    fclose(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, md ? "| Activation |\n" : "  Activation\n"));
    CU_ASSERT_PTR_NULL(strstr(buf, "Flash"));
    // The reason is located at the layer in the source.
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, md ? "**Firmware inference:** not available (bad.cnn:5:1: layer 3: "
                                          : "\nfirmware inference: not available (bad.cnn:5:1: layer 3: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "follows a relu"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "102,752")); // the MACs are still there
    free(buf);
  }
  net_free(&net);
}

// With a checkpoint, the summary names it and its progress.
static void test_weights_line(void) {
  Net net;
  CU_ASSERT_EQUAL_FATAL(cnnc_load_file("models/mnist14k.cnn", &net), 0);
  ReportWeights w = {.path = "x/mnist14k.ckpt", .epoch = 20, .step = 18760};
  for (int md = 0; md < 2; md++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    report_summary_weights(&net, m, md, &w);
    fclose(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, md ? "**Weights:** `x/mnist14k.ckpt`, epoch 20, step 18760."
                                          : "\nweights x/mnist14k.ckpt: epoch 20, step 18760\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "14,112"));
    free(buf);
  }
  net_free(&net);
}

void register_tests(void) {
  CU_pSuite s = CU_add_suite("report", NULL, NULL);
  CU_add_test(s, "golden mnist14k text", test_golden_14k_text);
  CU_add_test(s, "golden mnist14k markdown", test_golden_14k_md);
  CU_add_test(s, "golden mnist8ch text", test_golden_8ch_text);
  CU_add_test(s, "golden mnist8ch markdown", test_golden_8ch_md);
  CU_add_test(s, "golden mnist8ch_gap_fc text", test_golden_fc_text);
  CU_add_test(s, "golden mnist8ch_gap_fc markdown", test_golden_fc_md);
  CU_add_test(s, "reference cells", test_cells);
  CU_add_test(s, "transform cells", test_transform_cells);
  CU_add_test(s, "firmware memory figures", test_memory);
  CU_add_test(s, "firmware memory refused", test_memory_refused);
  CU_add_test(s, "weights line", test_weights_line);
}
