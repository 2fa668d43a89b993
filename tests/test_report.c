// test_report.c: `cnnc summary` output against the committed golden files,
// and the cells the reference write-up's table has.
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
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
  Layer l = {.kind = L_CONV, .k = 5, .stride = 2, .pad = 2, .bias = true, .in = {3, 32, 32}, .out = {8, 16, 16}};
  CU_ASSERT_STRING_EQUAL(report_transform(&l, buf, sizeof buf), "(5x5x3)x8 s2 p2 +bias");
  l = (Layer){.kind = L_MAXPOOL, .k = 3, .stride = 2};
  CU_ASSERT_STRING_EQUAL(report_transform(&l, buf, sizeof buf), "MP(3x3 s2)");
  l = (Layer){.kind = L_DROPOUT, .p = 0.25};
  CU_ASSERT_STRING_EQUAL(report_transform(&l, buf, sizeof buf), "Dropout(25%)");
  l = (Layer){.kind = L_LOG_SOFTMAX};
  CU_ASSERT_STRING_EQUAL(report_transform(&l, buf, sizeof buf), "LogSoftmax");
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
}
