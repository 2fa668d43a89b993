// test_parser.c: the grammar — trees of good files, recovery from bad ones.
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"

static char *errbuf;
static size_t errlen;
static Arena *arena;
static Diag diag;

// Parses src into a fresh context; diagnostics land in errbuf.
static ParseCtx parse(const char *src) {
  free(errbuf);
  errbuf = NULL;
  arena_free(arena);
  arena = arena_new();
  FILE *f = open_memstream(&errbuf, &errlen);
  diag_init(&diag, "p.cnn", src, strlen(src), f);
  ParseCtx ctx = {.arena = arena, .diag = &diag, .file = "p.cnn"};
  cnnc_parse(&ctx, src, strlen(src));
  fclose(f);
  return ctx;
}

// Counts the "error:" lines of the last parse.
static int count_errors(void) {
  int n = 0;
  for (const char *p = errbuf; (p = strstr(p, ": error: ")); p++)
    n++;
  return n;
}

static void test_good_file(void) {
  ParseCtx c = parse("network net;\ninput 32x30x3;\n"
                     "block cbr(ch, k = 3) { conv(ch, k, bias = false); batchnorm; relu; }\n"
                     "cbr(16);\nmaxpool(2, stride = 2);\ngap;\n"
                     "train { epochs = 5; optimizer = sgd(lr = 0.1); normalize(mean = 0.5, std = 0.25); }\n");
  CU_ASSERT_EQUAL(diag.errors, 0);
  Program *p = &c.prog;
  CU_ASSERT_STRING_EQUAL(p->network, "net");
  CU_ASSERT_TRUE(p->has_input);
  CU_ASSERT_EQUAL(p->input[0], 32);
  CU_ASSERT_EQUAL(p->input[1], 30);
  CU_ASSERT_EQUAL(p->input[2], 3);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p->blocks);
  CU_ASSERT_STRING_EQUAL(p->blocks->name, "cbr");
  CU_ASSERT_STRING_EQUAL(p->blocks->params->name, "ch");
  CU_ASSERT_PTR_NULL(p->blocks->params->def);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p->blocks->params->next->def);
  CU_ASSERT_DOUBLE_EQUAL(p->blocks->params->next->def->num, 3, 0);
  const Call *body = p->blocks->body;
  CU_ASSERT_STRING_EQUAL(body->name, "conv");
  const Arg *a3 = body->args->next->next;
  CU_ASSERT_STRING_EQUAL(a3->name, "bias");
  CU_ASSERT_EQUAL(a3->value->kind, E_BOOL);
  CU_ASSERT_STRING_EQUAL(body->next->name, "batchnorm");
  const Call *top = p->calls;
  CU_ASSERT_STRING_EQUAL(top->name, "cbr");
  CU_ASSERT_EQUAL(top->span.line, 4);
  CU_ASSERT_EQUAL(top->span.col, 1);
  CU_ASSERT_STRING_EQUAL(top->next->name, "maxpool");
  CU_ASSERT_STRING_EQUAL(top->next->next->name, "gap");
  CU_ASSERT_PTR_NULL(top->next->next->next);
  CU_ASSERT_TRUE(p->has_train);
  const TrainItem *t = p->train;
  CU_ASSERT_STRING_EQUAL(t->key, "epochs");
  CU_ASSERT_STRING_EQUAL(t->next->key, "optimizer");
  CU_ASSERT_EQUAL(t->next->value->kind, E_CALL);
  CU_ASSERT_TRUE(t->next->next->is_call);
}

static void test_expressions(void) {
  ParseCtx c = parse("conv(2 * c + 1, -(3));");
  CU_ASSERT_EQUAL(diag.errors, 0);
  const Expr *e = c.prog.calls->args->value;
  CU_ASSERT_EQUAL_FATAL(e->kind, E_BIN);
  CU_ASSERT_EQUAL(e->op, '+');
  CU_ASSERT_EQUAL(e->lhs->kind, E_BIN);
  CU_ASSERT_EQUAL(e->lhs->op, '*');
  CU_ASSERT_EQUAL(e->span.col, 6);
  CU_ASSERT_EQUAL(e->span.len, 9);
  CU_ASSERT_EQUAL(c.prog.calls->args->next->value->kind, E_NEG);
}

static void test_recovery(void) {
  parse("network n;\ninput 28x28x1;\nconv(16 3);\nrelu\ngap;\nconv(,);\nlog_softmax;\n");
  CU_ASSERT_TRUE(count_errors() >= 3);
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "p.cnn:3:9: error: syntax error, unexpected number, expecting ')'"));
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "p.cnn:5:1: error: syntax error, unexpected identifier"));
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "p.cnn:6:6: error: syntax error, unexpected ','"));
}

static void test_caret(void) {
  parse("network n;\n  conv(16 3);\n");
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "\n   conv(16 3);\n           ^\n"));
}

static void test_duplicates_and_dims(void) {
  parse("network a;\nnetwork b;\ninput 28x28;\n");
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "p.cnn:2:1: error: duplicate 'network' declaration"));
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "p.cnn:3:7: error: input needs three dimensions"));
}

static void test_deep_nesting(void) {
  size_t n = 5000;
  char *s = malloc(2 * n + 16);
  strcpy(s, "conv(");
  size_t o = 5;
  for (size_t i = 0; i < n; i++)
    s[o++] = '(';
  s[o++] = '1';
  for (size_t i = 0; i < n; i++)
    s[o++] = ')';
  strcpy(s + o, ");");
  parse(s);
  free(s);
  CU_ASSERT_EQUAL(diag.errors, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "too deeply nested"));
}

static void test_error_cap(void) {
  char *s = malloc(100 * 8 + 1);
  s[0] = '\0';
  for (int i = 0; i < 100; i++)
    strcat(s, "conv(;\n");
  parse(s);
  free(s);
  CU_ASSERT_EQUAL(count_errors(), DIAG_MAX_ERRORS + 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "p.cnn: error: too many errors, stopping"));
  CU_ASSERT_TRUE(diag.stop);
}

static void test_invalid_utf8(void) {
  parse("network n; // caf\xc3\xa9 ok\ninput 28x28x1; // \xff\n");
  CU_ASSERT_EQUAL(diag.errors, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "p.cnn:2:19: error: invalid UTF-8 (byte 0xff)"));
}

// Frees what the last parse left.
static int cleanup(void) {
  free(errbuf);
  arena_free(arena);
  errbuf = NULL;
  arena = NULL;
  return 0;
}

void register_tests(void) {
  CU_pSuite s = CU_add_suite("parser", NULL, cleanup);
  CU_add_test(s, "good file", test_good_file);
  CU_add_test(s, "expressions", test_expressions);
  CU_add_test(s, "recovery gives several errors", test_recovery);
  CU_add_test(s, "source line and caret", test_caret);
  CU_add_test(s, "duplicate declarations, bad dims", test_duplicates_and_dims);
  CU_add_test(s, "deep nesting is bounded", test_deep_nesting);
  CU_add_test(s, "error cap", test_error_cap);
  CU_add_test(s, "invalid UTF-8", test_invalid_utf8);
}
