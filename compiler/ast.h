// ast.h: the syntax tree of a .cnn file. Every node keeps its source span;
// all nodes and strings live in one arena freed at once.
#ifndef CNNC_AST_H
#define CNNC_AST_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "net.h"

typedef struct Arena Arena;

typedef enum ExprKind {
  E_NUM,  // 3, 0.03, 3%, 1e4
  E_BOOL, // true, false
  E_NAME, // a block parameter, or a bare word like `constant`
  E_CALL, // sgd(lr = 0.01): only in train values
  E_NEG,  // -x
  E_BIN,  // x + y, x - y, x * y, x / y
  E_DIMS, // 10x4: a kernel or stride as rows x columns
} ExprKind;

typedef struct Arg Arg;
typedef struct Expr Expr;

struct Expr {
  ExprKind kind;
  Span span;
  double num;     // E_NUM (percent already divided by 100)
  bool is_int;    // E_NUM written without '.', exponent or '%'
  bool percent;   // E_NUM written as 3%
  bool b;         // E_BOOL
  char *name;     // E_NAME, E_CALL
  Arg *args;      // E_CALL
  int op;         // E_BIN: '+', '-', '*', '/'
  Expr *lhs, *rhs; // E_BIN; E_NEG uses lhs
  long dims[3];   // E_DIMS, as written
  int ndims;
};

// One argument: positional (name == NULL) or named.
struct Arg {
  char *name;
  Span span;      // the whole argument
  Span name_span;
  Expr *value;
  Arg *next;
};

// A layer or block call: `conv(16, bias = false);`, `relu;` — or a
// residual block, `residual { body } [shortcut { layers }]` (name NULL):
// its output is body(x) + shortcut(x), the shortcut x itself when absent.
typedef struct Call {
  char *name;
  Span span;      // the name, or the `residual` keyword
  Arg *args;
  struct Call *body, *shortcut;
  bool residual, has_shortcut;
  struct Call *next;
} Call;

typedef struct Param {
  char *name;
  Span span;
  Expr *def;      // default, or NULL
  struct Param *next;
} Param;

typedef struct Block {
  char *name;
  Span span;
  Param *params;
  Call *body;
  struct Block *next;
} Block;

// `key = value;` or `key(args);` inside `train { ... }`.
typedef struct TrainItem {
  char *key;
  Span span;
  Expr *value;    // key = value
  Arg *args;      // key(args)
  bool is_call;
  struct TrainItem *next;
} TrainItem;

typedef struct Program {
  char *network;
  Span network_span;
  bool has_input;
  long input[3];  // H, W, C as written
  int input_n;    // how many dimensions were written
  Span input_span;
  Block *blocks;
  Call *calls;    // top-level layer and block calls, in order
  bool has_train;
  Span train_span;
  TrainItem *train;
} Program;

// What the parser and scanner share: the tree, the arena and diagnostics.
typedef struct ParseCtx {
  Arena *arena;
  Diag *diag;
  const char *file;
  Program prog;
  Block **block_tail;
  Call **call_tail;
  TrainItem **train_tail;
  int comment_line, comment_col; // where an open /* comment began
} ParseCtx;

Arena *arena_new(void);
void *arena_alloc(Arena *a, size_t n);
char *arena_strndup(Arena *a, const char *s, size_t n);
void arena_free(Arena *a);

// Parses src into ctx->prog; returns the number of errors so far.
int cnnc_parse(ParseCtx *ctx, const char *src, size_t len);

// One token, for tests of the scanner.
typedef struct TokInfo {
  int kind;       // a parser token number, or a character
  Span span;
  double num;
  bool is_int, percent;
  char text[32];  // identifier text, truncated
} TokInfo;

// Scans src into at most max tokens; returns the count.
int cnnc_lex(Diag *d, const char *src, size_t len, TokInfo *out, int max);

#endif
