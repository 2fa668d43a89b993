// test_lexer.c: the scanner — tokens, numbers, percent, comments, locations.
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "parser.h"

static TokInfo toks[64];
static char *errbuf;
static size_t errlen;

// Scans src; diagnostics land in errbuf.
static int lex(const char *src, size_t len) {
  free(errbuf);
  errbuf = NULL;
  FILE *f = open_memstream(&errbuf, &errlen);
  Diag d;
  diag_init(&d, "t.cnn", src, len, f);
  int n = cnnc_lex(&d, src, len, toks, 64);
  fclose(f);
  return n;
}

static void test_keywords_and_punct(void) {
  const char *s = "network n; input 28x28x1; block b(c = 3) { relu; } train { }";
  int n = lex(s, strlen(s));
  int want[] = {NETWORK, IDENT, ';', INPUT, DIMS, ';', BLOCK, IDENT, '(', IDENT, '=', NUMBER, ')',
                '{', IDENT, ';', '}', TRAIN, '{', '}'};
  CU_ASSERT_EQUAL_FATAL(n, (int)(sizeof want / sizeof want[0]));
  for (int i = 0; i < n; i++)
    CU_ASSERT_EQUAL(toks[i].kind, want[i]);
  CU_ASSERT_STRING_EQUAL(toks[1].text, "n");
  CU_ASSERT_STRING_EQUAL(toks[4].text, "28x28x1");
  CU_ASSERT_STRING_EQUAL(errbuf, "");
}

static void test_numbers(void) {
  const char *s = "3 0.03 3% 1e4 .5 2.5e-1 true false";
  int n = lex(s, strlen(s));
  CU_ASSERT_EQUAL_FATAL(n, 8);
  CU_ASSERT_DOUBLE_EQUAL(toks[0].num, 3, 0);
  CU_ASSERT_TRUE(toks[0].is_int);
  CU_ASSERT_DOUBLE_EQUAL(toks[1].num, 0.03, 1e-15);
  CU_ASSERT_FALSE(toks[1].is_int);
  CU_ASSERT_DOUBLE_EQUAL(toks[2].num, 0.03, 1e-15);
  CU_ASSERT_TRUE(toks[2].percent);
  CU_ASSERT_FALSE(toks[2].is_int);
  CU_ASSERT_DOUBLE_EQUAL(toks[3].num, 1e4, 0);
  CU_ASSERT_FALSE(toks[3].is_int);
  CU_ASSERT_DOUBLE_EQUAL(toks[4].num, 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(toks[5].num, 0.25, 1e-15);
  CU_ASSERT_EQUAL(toks[6].kind, TRUE);
  CU_ASSERT_EQUAL(toks[7].kind, FALSE);
  CU_ASSERT_STRING_EQUAL(errbuf, "");
}

static void test_number_overflow(void) {
  const char *s = "99999999999999999999 1e999";
  int n = lex(s, strlen(s));
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "t.cnn:1:1: error: number '99999999999999999999' is too large"));
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "t.cnn:1:22: error: number '1e999' is too large"));
}

static void test_comments_and_locations(void) {
  const char *s = "// line comment\n  conv /* multi\nline */ (16);\n\tgap";
  int n = lex(s, strlen(s));
  CU_ASSERT_EQUAL_FATAL(n, 6);
  CU_ASSERT_STRING_EQUAL(toks[0].text, "conv");
  CU_ASSERT_EQUAL(toks[0].span.line, 2);
  CU_ASSERT_EQUAL(toks[0].span.col, 3);
  CU_ASSERT_EQUAL(toks[0].span.len, 4);
  CU_ASSERT_EQUAL(toks[1].kind, '(');
  CU_ASSERT_EQUAL(toks[1].span.line, 3);
  CU_ASSERT_EQUAL(toks[1].span.col, 9);
  CU_ASSERT_EQUAL(toks[2].span.col, 10);
  CU_ASSERT_EQUAL(toks[2].span.len, 2);
  CU_ASSERT_EQUAL(toks[5].span.line, 4);
  CU_ASSERT_EQUAL(toks[5].span.col, 2);
}

static void test_stray_and_unterminated(void) {
  const char s[] = "relu @ \x01 /* open";
  int n = lex(s, sizeof s - 1);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "t.cnn:1:6: error: unexpected character '@'"));
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "t.cnn:1:8: error: unexpected byte 0x01"));
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "t.cnn:1:10: error: unterminated comment"));
}

static void test_nul_and_malformed(void) {
  const char s[] = "gap\0 3abc";
  int n = lex(s, sizeof s - 1);
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "t.cnn:1:4: error: unexpected NUL byte"));
  CU_ASSERT_PTR_NOT_NULL(strstr(errbuf, "t.cnn:1:6: error: malformed number '3abc'"));
}

void register_tests(void) {
  CU_pSuite s = CU_add_suite("lexer", NULL, NULL);
  CU_add_test(s, "keywords and punctuation", test_keywords_and_punct);
  CU_add_test(s, "numbers", test_numbers);
  CU_add_test(s, "number overflow", test_number_overflow);
  CU_add_test(s, "comments and locations", test_comments_and_locations);
  CU_add_test(s, "stray bytes, unterminated comment", test_stray_and_unterminated);
  CU_add_test(s, "NUL byte, malformed number", test_nul_and_malformed);
}
