/* parser.y: the grammar of a .cnn file. It only builds the tree; check.c
   gives it meaning. Statement-level `error` rules let one run report
   several syntax errors. */
%define api.pure full
%locations
%define parse.error verbose
%expect 0
%param {void *scanner}
%parse-param {ParseCtx *ctx}

%code requires {
#include "ast.h"
}

%code provides {
#define YYMAXDEPTH 1000
}

%union {
  struct { double v; bool is_int, percent; } num;
  struct { long v[3]; int n; } dims;
  char *str;
  Expr *expr;
  struct { Arg *head, *tail; } args;
  Arg *arg;
  struct { Param *head, *tail; } params;
  Param *param;
  struct { Call *head, *tail; } calls;
  Call *call;
}

%code {
#include <string.h>

#include "lexer.h"

static void yyerror(YYLTYPE *loc, void *scanner, ParseCtx *ctx, const char *msg);
static Span span_of(ParseCtx *c, YYLTYPE l);
static Expr *new_expr(ParseCtx *c, ExprKind k, YYLTYPE l);
static Call *new_call(ParseCtx *c, char *name, YYLTYPE l, Arg *args);
static Arg *new_arg(ParseCtx *c, char *name, YYLTYPE nl, Expr *v, YYLTYPE l);
}

%token END 0 "end of file"
%token NETWORK "network" INPUT "input" BLOCK "block" TRAIN "train"
%token TRUE "true" FALSE "false" RESIDUAL "residual" SHORTCUT "shortcut"
%token <str> IDENT "identifier"
%token <num> NUMBER "number"
%token <dims> DIMS "dimensions"

%type <expr> expr
%type <args> args args_opt
%type <arg> arg
%type <params> params params_opt
%type <param> param
%type <calls> stmts
%type <call> call residual

%left '+' '-'
%left '*' '/'
%precedence NEG

%%

file: items ;

items: %empty | items item ;

item:
  NETWORK IDENT ';' {
    if (ctx->prog.network)
      diag_error(ctx->diag, span_of(ctx, @1), "duplicate 'network' declaration");
    else {
      ctx->prog.network = $2;
      ctx->prog.network_span = span_of(ctx, @2);
    }
  }
| INPUT DIMS ';' {
    if (ctx->prog.has_input)
      diag_error(ctx->diag, span_of(ctx, @1), "duplicate 'input' declaration");
    else if ($2.n != 3)
      diag_error(ctx->diag, span_of(ctx, @2), "input needs three dimensions, HxWxC (like 28x28x1)");
    else {
      ctx->prog.has_input = true;
      memcpy(ctx->prog.input, $2.v, sizeof $2.v);
      ctx->prog.input_n = $2.n;
      ctx->prog.input_span = span_of(ctx, @2);
    }
  }
| BLOCK IDENT params_opt '{' stmts '}' {
    Block *b = arena_alloc(ctx->arena, sizeof *b);
    b->name = $2;
    b->span = span_of(ctx, @2);
    b->params = $3.head;
    b->body = $5.head;
    *ctx->block_tail = b;
    ctx->block_tail = &b->next;
  }
| call ';' {
    *ctx->call_tail = $1;
    ctx->call_tail = &$1->next;
  }
| residual {
    *ctx->call_tail = $1;
    ctx->call_tail = &$1->next;
  }
| TRAIN '{' train_items '}' {
    if (ctx->prog.has_train)
      diag_error(ctx->diag, span_of(ctx, @1), "duplicate 'train' section");
    ctx->prog.has_train = true;
    ctx->prog.train_span = span_of(ctx, @1);
  }
| error ';' { yyerrok; }
| error '}' { yyerrok; }
;

params_opt:
  %empty { $$.head = $$.tail = NULL; }
| '(' ')' { $$.head = $$.tail = NULL; }
| '(' params ')' { $$ = $2; }
;

params:
  param { $$.head = $$.tail = $1; }
| params ',' param { $$ = $1; $$.tail->next = $3; $$.tail = $3; }
;

param:
  IDENT {
    $$ = arena_alloc(ctx->arena, sizeof *$$);
    $$->name = $1;
    $$->span = span_of(ctx, @1);
  }
| IDENT '=' expr {
    $$ = arena_alloc(ctx->arena, sizeof *$$);
    $$->name = $1;
    $$->span = span_of(ctx, @1);
    $$->def = $3;
  }
;

stmts:
  %empty { $$.head = $$.tail = NULL; }
| stmts call ';' {
    $$ = $1;
    if ($$.tail)
      $$.tail->next = $2;
    else
      $$.head = $2;
    $$.tail = $2;
  }
| stmts residual {
    $$ = $1;
    if ($$.tail)
      $$.tail->next = $2;
    else
      $$.head = $2;
    $$.tail = $2;
  }
| stmts error ';' { $$ = $1; yyerrok; }
;

residual:
  RESIDUAL '{' stmts '}' {
    $$ = new_call(ctx, NULL, @1, NULL);
    $$->residual = true;
    $$->body = $3.head;
  }
| RESIDUAL '{' stmts '}' SHORTCUT '{' stmts '}' {
    $$ = new_call(ctx, NULL, @1, NULL);
    $$->residual = true;
    $$->body = $3.head;
    $$->shortcut = $7.head;
    $$->has_shortcut = true;
  }
;

call:
  IDENT { $$ = new_call(ctx, $1, @1, NULL); }
| IDENT '(' args_opt ')' { $$ = new_call(ctx, $1, @1, $3.head); }
;

args_opt:
  %empty { $$.head = $$.tail = NULL; }
| args
;

args:
  arg { $$.head = $$.tail = $1; }
| args ',' arg { $$ = $1; $$.tail->next = $3; $$.tail = $3; }
;

arg:
  expr { $$ = new_arg(ctx, NULL, @1, $1, @$); }
| IDENT '=' expr { $$ = new_arg(ctx, $1, @1, $3, @$); }
;

expr:
  NUMBER {
    $$ = new_expr(ctx, E_NUM, @$);
    $$->num = $1.v;
    $$->is_int = $1.is_int;
    $$->percent = $1.percent;
  }
| DIMS {
    $$ = new_expr(ctx, E_DIMS, @$);
    memcpy($$->dims, $1.v, sizeof $1.v);
    $$->ndims = $1.n;
  }
| TRUE { $$ = new_expr(ctx, E_BOOL, @$); $$->b = true; }
| FALSE { $$ = new_expr(ctx, E_BOOL, @$); $$->b = false; }
| IDENT { $$ = new_expr(ctx, E_NAME, @$); $$->name = $1; }
| IDENT '(' args_opt ')' {
    $$ = new_expr(ctx, E_CALL, @$);
    $$->name = $1;
    $$->args = $3.head;
  }
| '(' expr ')' { $$ = $2; $$->span = span_of(ctx, @$); }
| '-' expr %prec NEG { $$ = new_expr(ctx, E_NEG, @$); $$->lhs = $2; }
| expr '+' expr { $$ = new_expr(ctx, E_BIN, @$); $$->op = '+'; $$->lhs = $1; $$->rhs = $3; }
| expr '-' expr { $$ = new_expr(ctx, E_BIN, @$); $$->op = '-'; $$->lhs = $1; $$->rhs = $3; }
| expr '*' expr { $$ = new_expr(ctx, E_BIN, @$); $$->op = '*'; $$->lhs = $1; $$->rhs = $3; }
| expr '/' expr { $$ = new_expr(ctx, E_BIN, @$); $$->op = '/'; $$->lhs = $1; $$->rhs = $3; }
;

train_items: %empty | train_items train_item ;

train_item:
  IDENT '=' expr ';' {
    TrainItem *t = arena_alloc(ctx->arena, sizeof *t);
    t->key = $1;
    t->span = span_of(ctx, @1);
    t->value = $3;
    *ctx->train_tail = t;
    ctx->train_tail = &t->next;
  }
| call ';' {
    TrainItem *t = arena_alloc(ctx->arena, sizeof *t);
    t->key = $1->name;
    t->span = $1->span;
    t->args = $1->args;
    t->is_call = true;
    *ctx->train_tail = t;
    ctx->train_tail = &t->next;
  }
| error ';' { yyerrok; }
;

%%

// Reports a syntax error; bison's stack limit becomes a nesting error.
static void yyerror(YYLTYPE *loc, void *scanner, ParseCtx *ctx, const char *msg) {
  (void)scanner;
  if (strcmp(msg, "memory exhausted") == 0)
    diag_error(ctx->diag, span_of(ctx, *loc), "too deeply nested (the parser's limit is %d levels)",
               YYMAXDEPTH);
  else
    diag_error(ctx->diag, span_of(ctx, *loc), "%s", msg);
}

// A bison location as a Span; multi-line spans underline to the line's end.
static Span span_of(ParseCtx *c, YYLTYPE l) {
  int len = l.last_line == l.first_line ? l.last_column - l.first_column : 1 << 30;
  return (Span){c->file, l.first_line, l.first_column, len > 0 ? len : 1};
}

static Expr *new_expr(ParseCtx *c, ExprKind k, YYLTYPE l) {
  Expr *e = arena_alloc(c->arena, sizeof *e);
  e->kind = k;
  e->span = span_of(c, l);
  return e;
}

static Call *new_call(ParseCtx *c, char *name, YYLTYPE l, Arg *args) {
  Call *call = arena_alloc(c->arena, sizeof *call);
  call->name = name;
  call->span = span_of(c, l);
  call->args = args;
  return call;
}

static Arg *new_arg(ParseCtx *c, char *name, YYLTYPE nl, Expr *v, YYLTYPE l) {
  Arg *a = arena_alloc(c->arena, sizeof *a);
  a->name = name;
  a->name_span = span_of(c, nl);
  a->value = v;
  a->span = span_of(c, l);
  return a;
}

// Reports the first byte that is not valid UTF-8; false if there is one.
static bool check_utf8(ParseCtx *c, const char *src, size_t len) {
  const unsigned char *s = (const unsigned char *)src;
  int line = 1, col = 1;
  for (size_t i = 0; i < len;) {
    unsigned char b = s[i];
    size_t n = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3
             : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    bool ok = n > 0 && i + n <= len;
    for (size_t k = 1; ok && k < n; k++)
      ok = (s[i + k] & 0xc0) == 0x80;
    // Overlong forms, surrogates and code points past U+10FFFF.
    if (ok && n == 3 && ((b == 0xe0 && s[i + 1] < 0xa0) || (b == 0xed && s[i + 1] >= 0xa0)))
      ok = false;
    if (ok && n == 4 && ((b == 0xf0 && s[i + 1] < 0x90) || (b == 0xf4 && s[i + 1] >= 0x90)))
      ok = false;
    if (!ok) {
      diag_error(c->diag, (Span){c->file, line, col, 1}, "invalid UTF-8 (byte 0x%02x)", b);
      return false;
    }
    if (b == '\n') {
      line++;
      col = 1;
    } else {
      col += (int)n;
    }
    i += n;
  }
  return true;
}

int cnnc_parse(ParseCtx *ctx, const char *src, size_t len) {
  ctx->block_tail = &ctx->prog.blocks;
  ctx->call_tail = &ctx->prog.calls;
  ctx->train_tail = &ctx->prog.train;
  if (!check_utf8(ctx, src, len))
    return ctx->diag->errors;
  yyscan_t scanner;
  if (yylex_init_extra(ctx, &scanner) != 0)
    return ++ctx->diag->errors;
  YY_BUFFER_STATE buf = yy_scan_bytes(src, (int)len, scanner);
  yyparse(scanner, ctx);
  yy_delete_buffer(buf, scanner);
  yylex_destroy(scanner);
  return ctx->diag->errors;
}

int cnnc_lex(Diag *d, const char *src, size_t len, TokInfo *out, int max) {
  Arena *arena = arena_new();
  ParseCtx ctx = {.arena = arena, .diag = d, .file = d->file};
  yyscan_t scanner;
  int n = 0;
  if (yylex_init_extra(&ctx, &scanner) == 0) {
    YY_BUFFER_STATE buf = yy_scan_bytes(src, (int)len, scanner);
    YYSTYPE v;
    YYLTYPE l = {1, 1, 1, 1};
    int k;
    while (n < max && (k = yylex(&v, &l, scanner)) != 0) {
      TokInfo *t = &out[n++];
      memset(t, 0, sizeof *t);
      t->kind = k;
      t->span = span_of(&ctx, l);
      if (k == NUMBER) {
        t->num = v.num.v;
        t->is_int = v.num.is_int;
        t->percent = v.num.percent;
      } else if (k == IDENT) {
        snprintf(t->text, sizeof t->text, "%s", v.str);
      } else if (k == DIMS) {
        snprintf(t->text, sizeof t->text, "%ldx%ldx%ld", v.dims.v[0], v.dims.n > 1 ? v.dims.v[1] : 0,
                 v.dims.n > 2 ? v.dims.v[2] : 0);
      }
    }
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
  }
  arena_free(arena);
  return n;
}
