// check.c: gives the syntax tree meaning. Blocks are expanded into the flat
// layer array of net.h, every argument is checked against its layer's
// parameter table, net_infer() checks the shapes, and the train section
// fills a TrainSpec.
#include "check.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "diag.h"

typedef enum VKind { V_NUM, V_BOOL } VKind;

// An evaluated argument; span is where its value was written.
typedef struct Value {
  VKind kind;
  double num;
  bool is_int, percent, b;
  Span span;
} Value;

typedef struct Binding {
  const char *name;
  Value v;
} Binding;

// A block's parameters while its body expands (NULL at the top level).
typedef struct Env {
  const Binding *b;
  int n;
} Env;

typedef enum PType { T_INT, T_NUM, T_BOOL } PType;

// One parameter of a built-in layer or train call.
typedef struct PSpec {
  const char *name, *alias;
  PType type;
  bool required;
} PSpec;

#define MAX_PARAMS 8

typedef struct Ck {
  Diag *d;
  Program *p;
  const char *file;
  Layer *layers;
  Span *sites;            // for each layer, the top-level call it came from
  int n, cap;
  bool too_many;
  const Block *stack[CNNC_MAX_BLOCK_DEPTH];
  int depth;
  Span site;              // the top-level call being expanded
  const Block **table;    // open-addressed hash of blocks by name
  size_t table_cap;
} Ck;

static const PSpec conv_spec[] = {
    {"out_channels", "channels", T_INT, true}, {"kernel", "k", T_INT, false},
    {"stride", NULL, T_INT, false}, {"padding", "pad", T_INT, false},
    {"bias", NULL, T_BOOL, false}};
static const PSpec pool_spec[] = {{"kernel", "k", T_INT, true}, {"stride", NULL, T_INT, false}};
static const PSpec drop_spec[] = {{"p", NULL, T_NUM, true}};

typedef struct LayerDef {
  const char *name;
  LayerKind kind;
  const PSpec *spec;
  int n;
} LayerDef;

static const LayerDef layer_defs[] = {
    {"conv", L_CONV, conv_spec, 5},         {"batchnorm", L_BATCHNORM, NULL, 0},
    {"dropout", L_DROPOUT, drop_spec, 1},   {"relu", L_RELU, NULL, 0},
    {"maxpool", L_MAXPOOL, pool_spec, 2},   {"gap", L_GAP, NULL, 0},
    {"log_softmax", L_LOG_SOFTMAX, NULL, 0},
};
#define N_LAYER_DEFS (int)(sizeof layer_defs / sizeof layer_defs[0])

// The built-in layer called name, or NULL.
static const LayerDef *find_layer(const char *name) {
  for (int i = 0; i < N_LAYER_DEFS; i++)
    if (strcmp(layer_defs[i].name, name) == 0)
      return &layer_defs[i];
  return NULL;
}

// FNV-1a of a name, for the block table.
static size_t hash_str(const char *s) {
  size_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

// The block called name, or NULL.
static const Block *find_block(const Ck *c, const char *name) {
  if (!c->table_cap)
    return NULL;
  for (size_t i = hash_str(name) & (c->table_cap - 1);; i = (i + 1) & (c->table_cap - 1)) {
    if (!c->table[i])
      return NULL;
    if (strcmp(c->table[i]->name, name) == 0)
      return c->table[i];
  }
}

// Enters every block in the table; reports duplicates and bad parameter lists.
static void index_blocks(Ck *c) {
  size_t n = 0;
  for (const Block *b = c->p->blocks; b; b = b->next)
    n++;
  c->table_cap = 16;
  while (c->table_cap < 2 * n)
    c->table_cap *= 2;
  c->table = calloc(c->table_cap, sizeof *c->table);
  if (!c->table) {
    fputs("cnnc: error: out of memory\n", stderr);
    exit(1);
  }
  for (const Block *b = c->p->blocks; b && !c->d->stop; b = b->next) {
    if (find_layer(b->name)) {
      diag_error(c->d, b->span, "block '%s' has the name of a built-in layer", b->name);
      continue;
    }
    const Block *old = find_block(c, b->name);
    if (old) {
      if (diag_error(c->d, b->span, "block '%s' is already defined", b->name))
        diag_note(c->d, old->span, "'%s' was first defined here", b->name);
      continue;
    }
    size_t i = hash_str(b->name) & (c->table_cap - 1);
    while (c->table[i])
      i = (i + 1) & (c->table_cap - 1);
    c->table[i] = b;
    bool seen_default = false;
    for (const Param *p = b->params; p; p = p->next) {
      for (const Param *q = b->params; q != p; q = q->next)
        if (strcmp(q->name, p->name) == 0) {
          diag_error(c->d, p->span, "duplicate parameter '%s' in block '%s'", p->name, b->name);
          break;
        }
      if (p->def)
        seen_default = true;
      else if (seen_default)
        diag_error(c->d, p->span, "parameter '%s' needs a default, as the ones before it have",
                   p->name);
    }
  }
}

// Evaluates an argument expression with block parameters in env.
static bool eval(Ck *c, const Expr *e, const Env *env, Value *out) {
  memset(out, 0, sizeof *out);
  out->span = e->span;
  switch (e->kind) {
  case E_NUM:
    out->kind = V_NUM;
    out->num = e->num;
    out->is_int = e->is_int;
    out->percent = e->percent;
    return true;
  case E_BOOL:
    out->kind = V_BOOL;
    out->b = e->b;
    return true;
  case E_NAME:
    for (int i = env ? env->n - 1 : -1; i >= 0; i--)
      if (strcmp(env->b[i].name, e->name) == 0) {
        *out = env->b[i].v;
        return true;
      }
    diag_error(c->d, e->span, "undefined name '%s'", e->name);
    return false;
  case E_CALL:
    diag_error(c->d, e->span, "'%s(...)' is not a value here", e->name);
    return false;
  case E_NEG:
  case E_BIN: {
    Value l, r;
    if (!eval(c, e->lhs, env, &l) || (e->kind == E_BIN && !eval(c, e->rhs, env, &r)))
      return false;
    if (l.kind != V_NUM || (e->kind == E_BIN && r.kind != V_NUM)) {
      diag_error(c->d, e->span, "arithmetic needs numbers, not true or false");
      return false;
    }
    out->kind = V_NUM;
    out->span = e->span;
    if (e->kind == E_NEG) {
      out->num = -l.num;
      out->is_int = l.is_int;
      return true;
    }
    out->is_int = l.is_int && r.is_int;
    switch (e->op) {
    case '+': out->num = l.num + r.num; break;
    case '-': out->num = l.num - r.num; break;
    case '*': out->num = l.num * r.num; break;
    default:
      if (r.num == 0) {
        diag_error(c->d, e->rhs->span, "division by zero");
        return false;
      }
      out->num = l.num / r.num;
      out->is_int = out->is_int && fmod(l.num, r.num) == 0;
      break;
    }
    if (!isfinite(out->num) || (out->is_int && fabs(out->num) > 9007199254740992.0)) {
      diag_error(c->d, e->span, "number is too large");
      return false;
    }
    return true;
  }
  }
  return false;
}

// Adds a note pointing at the top-level call when inside a block.
static void site_note(Ck *c, bool reported) {
  if (reported && c->depth > 0)
    diag_note(c->d, c->site, "in block '%s' called here", c->stack[0]->name);
}

// Binds a call's arguments to a parameter table, checking count and types.
static bool bind(Ck *c, const char *what, Span call, const Arg *args, const PSpec *spec, int n,
                 const Env *env, Value *vals, bool *has) {
  bool ok = true, named = false;
  int pos = 0;
  for (int i = 0; i < n; i++)
    has[i] = false;
  for (const Arg *a = args; a && !c->d->stop; a = a->next) {
    int slot = -1;
    if (a->name) {
      named = true;
      for (int i = 0; i < n && slot < 0; i++)
        if (strcmp(spec[i].name, a->name) == 0 || (spec[i].alias && strcmp(spec[i].alias, a->name) == 0))
          slot = i;
      if (slot < 0) {
        site_note(c, diag_error(c->d, a->name_span, "%s has no parameter '%s'", what, a->name));
        ok = false;
        continue;
      }
      if (has[slot]) {
        site_note(c, diag_error(c->d, a->name_span, "duplicate argument '%s' to %s", spec[slot].name, what));
        ok = false;
        continue;
      }
    } else {
      if (named) {
        site_note(c, diag_error(c->d, a->span, "positional argument after a named one"));
        ok = false;
        continue;
      }
      if (pos >= n) {
        if (n == 0)
          site_note(c, diag_error(c->d, a->span, "%s takes no arguments", what));
        else
          site_note(c, diag_error(c->d, a->span, "too many arguments to %s (it takes at most %d)", what, n));
        return false;
      }
      slot = pos++;
    }
    Value v;
    if (!eval(c, a->value, env, &v)) {
      ok = false;
      continue;
    }
    const char *pn = spec[slot].name;
    if (spec[slot].type == T_BOOL && v.kind != V_BOOL) {
      site_note(c, diag_error(c->d, v.span, "%s '%s' must be true or false", what, pn));
      ok = false;
      continue;
    }
    if (spec[slot].type != T_BOOL && v.kind != V_NUM) {
      site_note(c, diag_error(c->d, v.span, "%s '%s' must be a number, not %s", what, pn, v.b ? "true" : "false"));
      ok = false;
      continue;
    }
    if (spec[slot].type == T_INT && !v.is_int) {
      site_note(c, diag_error(c->d, v.span, "%s '%s' must be a whole number, not %g%s", what, pn,
                              v.percent ? v.num * 100 : v.num, v.percent ? "%" : ""));
      ok = false;
      continue;
    }
    vals[slot] = v;
    has[slot] = true;
  }
  for (int i = 0; ok && i < n; i++)
    if (spec[i].required && !has[i]) {
      site_note(c, diag_error(c->d, call, "%s needs argument '%s'", what, spec[i].name));
      ok = false;
    }
  return ok;
}

// An integer argument as an int, at least min; reports it otherwise.
static bool to_int(Ck *c, const Value *v, const char *what, const char *pn, int min, int *out) {
  if (v->num < min) {
    site_note(c, diag_error(c->d, v->span, "%s %s must be %s, not %g", what, pn,
                            min > 0 ? "positive" : "zero or more", v->num));
    return false;
  }
  if (v->num > 1000000) {
    site_note(c, diag_error(c->d, v->span, "%s %s %.0f is too large", what, pn, v->num));
    return false;
  }
  *out = (int)v->num;
  return true;
}

// Appends one built-in layer, its arguments checked.
static void add_layer(Ck *c, const LayerDef *def, const Call *call, const Env *env) {
  Value v[MAX_PARAMS];
  bool has[MAX_PARAMS];
  if (!bind(c, def->name, call->span, call->args, def->spec, def->n, env, v, has))
    return;
  Layer l = {.kind = def->kind, .span = call->span, .stride = 1, .bias = true};
  l.block = c->depth > 0 ? c->stack[c->depth - 1]->name : NULL;
  bool ok = true;
  switch (def->kind) {
  case L_CONV:
    ok = to_int(c, &v[0], "conv", "out_channels", 1, &l.out.c);
    l.k = 3;
    if (has[1])
      ok &= to_int(c, &v[1], "conv", "kernel", 1, &l.k);
    if (has[2])
      ok &= to_int(c, &v[2], "conv", "stride", 1, &l.stride);
    if (has[3])
      ok &= to_int(c, &v[3], "conv", "padding", 0, &l.pad);
    if (has[4])
      l.bias = v[4].b;
    break;
  case L_MAXPOOL:
    ok = to_int(c, &v[0], "maxpool", "kernel", 1, &l.k);
    l.stride = l.k;
    if (has[1])
      ok &= to_int(c, &v[1], "maxpool", "stride", 1, &l.stride);
    l.bias = false;
    break;
  case L_DROPOUT:
    l.p = v[0].num;
    if (!(l.p >= 0 && l.p < 1)) {
      site_note(c, diag_error(c->d, v[0].span, "dropout probability %g is outside [0, 1)", l.p));
      ok = false;
    }
    l.bias = false;
    break;
  default:
    l.bias = false;
    break;
  }
  if (!ok)
    return;
  if (c->n == CNNC_MAX_LAYERS) {
    site_note(c, diag_error(c->d, call->span, "the network has more than %d layers", CNNC_MAX_LAYERS));
    c->too_many = true;
    return;
  }
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 32;
    c->layers = realloc(c->layers, (size_t)c->cap * sizeof *c->layers);
    c->sites = realloc(c->sites, (size_t)c->cap * sizeof *c->sites);
    if (!c->layers || !c->sites) {
      fputs("cnnc: error: out of memory\n", stderr);
      exit(1);
    }
  }
  c->sites[c->n] = c->depth > 0 ? c->site : call->span;
  c->layers[c->n++] = l;
}

static void expand(Ck *c, const Call *calls, const Env *env);

// Expands one call of a user block: binds its parameters, then its body.
static void call_block(Ck *c, const Block *b, const Call *call, const Env *env) {
  for (int i = 0; i < c->depth; i++)
    if (c->stack[i] == b) {
      char chain[256];
      size_t o = 0;
      for (int j = i; j < c->depth && o < sizeof chain - 1; j++)
        o += (size_t)snprintf(chain + o, sizeof chain - o, "%s -> ", c->stack[j]->name);
      if (o < sizeof chain - 1)
        snprintf(chain + o, sizeof chain - o, "%s", b->name);
      diag_error(c->d, call->span, "block '%s' calls itself (%s)", b->name, chain);
      return;
    }
  if (c->depth == CNNC_MAX_BLOCK_DEPTH) {
    site_note(c, diag_error(c->d, call->span, "blocks are nested too deeply (more than %d levels)",
                            CNNC_MAX_BLOCK_DEPTH));
    return;
  }
  int np = 0;
  for (const Param *p = b->params; p; p = p->next)
    np++;
  Binding *bind_v = calloc((size_t)np + 1, sizeof *bind_v);
  if (!bind_v)
    exit(1);
  const Param **ps = calloc((size_t)np + 1, sizeof *ps);
  if (!ps)
    exit(1);
  np = 0;
  for (const Param *p = b->params; p; p = p->next)
    ps[np++] = p;
  bool *has = calloc((size_t)np + 1, sizeof *has);
  if (!has)
    exit(1);
  bool ok = true, named = false;
  int pos = 0;
  char what[80];
  snprintf(what, sizeof what, "block '%.60s'", b->name);
  for (const Arg *a = call->args; a && ok; a = a->next) {
    int slot = -1;
    if (a->name) {
      named = true;
      for (int i = 0; i < np && slot < 0; i++)
        if (strcmp(ps[i]->name, a->name) == 0)
          slot = i;
      if (slot < 0) {
        site_note(c, diag_error(c->d, a->name_span, "%s has no parameter '%s'", what, a->name));
        ok = false;
      } else if (has[slot]) {
        site_note(c, diag_error(c->d, a->name_span, "duplicate argument '%s' to %s", a->name, what));
        ok = false;
      }
    } else if (named) {
      site_note(c, diag_error(c->d, a->span, "positional argument after a named one"));
      ok = false;
    } else if (pos >= np) {
      site_note(c, diag_error(c->d, a->span, "too many arguments to %s (it takes %d)", what, np));
      ok = false;
    } else {
      slot = pos++;
    }
    if (ok && eval(c, a->value, env, &bind_v[slot].v))
      has[slot] = true;
    else
      ok = false;
  }
  // Defaults see the parameters before them, and nothing of the caller.
  Env inner = {bind_v, 0};
  for (int i = 0; ok && i < np; i++) {
    bind_v[i].name = ps[i]->name;
    if (!has[i]) {
      if (!ps[i]->def) {
        site_note(c, diag_error(c->d, call->span, "%s needs argument '%s'", what, ps[i]->name));
        ok = false;
      } else if (!eval(c, ps[i]->def, &inner, &bind_v[i].v)) {
        ok = false;
      }
    }
    inner.n = i + 1;
  }
  if (ok) {
    if (c->depth == 0)
      c->site = call->span;
    c->stack[c->depth++] = b;
    expand(c, b->body, &inner);
    c->depth--;
  }
  free(bind_v);
  free(ps);
  free(has);
}

// Expands a list of calls in order.
static void expand(Ck *c, const Call *calls, const Env *env) {
  for (const Call *call = calls; call && !c->d->stop && !c->too_many; call = call->next) {
    const LayerDef *def = find_layer(call->name);
    const Block *b;
    if (def)
      add_layer(c, def, call, env);
    else if ((b = find_block(c, call->name)))
      call_block(c, b, call, env);
    else
      site_note(c, diag_error(c->d, call->span, "unknown layer or block '%s'", call->name));
  }
}

// ---------------------------------------------------------------- train

static const PSpec sgd_spec[] = {{"lr", NULL, T_NUM, false},           {"momentum", NULL, T_NUM, false},
                                 {"nesterov", NULL, T_BOOL, false},    {"weight_decay", NULL, T_NUM, false},
                                 {"dampening", NULL, T_NUM, false}};
static const PSpec step_spec[] = {{"step_size", NULL, T_INT, true}, {"gamma", NULL, T_NUM, false}};
static const PSpec onecycle_spec[] = {
    {"max_lr", NULL, T_NUM, false},      {"pct_start", NULL, T_NUM, false},
    {"div_factor", NULL, T_NUM, false},  {"final_div_factor", NULL, T_NUM, false},
    {"cycle_momentum", NULL, T_BOOL, false}, {"base_momentum", NULL, T_NUM, false},
    {"max_momentum", NULL, T_NUM, false}};
static const PSpec norm_spec[] = {{"mean", NULL, T_NUM, true}, {"std", NULL, T_NUM, true}};
static const PSpec aug_spec[] = {{"rotate", NULL, T_NUM, false}, {"shift", NULL, T_NUM, false}};

// Reports a train value outside its range; true if it is inside.
static bool in_range(Ck *c, const Value *v, const char *name, double lo, bool lo_open, double hi,
                     bool hi_open) {
  double x = v->num;
  bool ok = (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
  if (!ok) {
    char range[64];
    if (isinf(hi))
      snprintf(range, sizeof range, "%s %g", lo_open ? "greater than" : "at least", lo);
    else
      snprintf(range, sizeof range, "in %c%g, %g%c", lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
    diag_error(c->d, v->span, "%s must be %s, not %g", name, range, x);
  }
  return ok;
}

// Takes the call form of a value (`sgd(...)` or a bare `constant`).
static bool callee(Ck *c, const TrainItem *t, const char **name, const Arg **args, Span *span) {
  if (t->is_call) {
    diag_error(c->d, t->span, "'%s' is set with '=', like %s = ...;", t->key, t->key);
    return false;
  }
  if (t->value->kind == E_CALL || t->value->kind == E_NAME) {
    *name = t->value->name;
    *args = t->value->args;
    *span = t->value->span;
    return true;
  }
  diag_error(c->d, t->value->span, "'%s' needs a name, like %s", t->key,
             strcmp(t->key, "optimizer") == 0 ? "sgd(lr = 0.01)" : "step(step_size = 6)");
  return false;
}

// Fills one train setting.
static void train_item(Ck *c, const TrainItem *t, TrainSpec *ts) {
  Value v[MAX_PARAMS];
  bool has[MAX_PARAMS];
  const char *k = t->key;
  if (!strcmp(k, "epochs") || !strcmp(k, "batch") || !strcmp(k, "seed")) {
    if (t->is_call) {
      diag_error(c->d, t->span, "'%s' is set with '=', like %s = 20;", k, k);
      return;
    }
    PSpec s = {k, NULL, T_INT, true};
    Arg a = {.value = t->value, .span = t->value->span};
    if (!bind(c, "train setting", t->span, &a, &s, 1, NULL, v, has))
      return;
    if (!strcmp(k, "seed")) {
      if (in_range(c, &v[0], "seed", 0, false, INFINITY, false))
        ts->seed = (uint64_t)v[0].num;
    } else if (in_range(c, &v[0], k, 0, true, INFINITY, false)) {
      if (v[0].num > 1000000)
        diag_error(c->d, v[0].span, "%s %.0f is too large", k, v[0].num);
      else
        *(!strcmp(k, "epochs") ? &ts->epochs : &ts->batch) = (int)v[0].num;
    }
  } else if (!strcmp(k, "optimizer")) {
    const char *name;
    const Arg *args;
    Span sp;
    if (!callee(c, t, &name, &args, &sp))
      return;
    if (strcmp(name, "sgd") != 0) {
      diag_error(c->d, sp, "unknown optimizer '%s' (cnnc knows sgd)", name);
      return;
    }
    if (!bind(c, "sgd", sp, args, sgd_spec, 5, NULL, v, has))
      return;
    if (has[0] && in_range(c, &v[0], "lr", 0, true, INFINITY, false))
      ts->lr = v[0].num;
    if (has[1] && in_range(c, &v[1], "momentum", 0, false, 1, true))
      ts->momentum = v[1].num;
    if (has[2])
      ts->nesterov = v[2].b;
    if (has[3] && in_range(c, &v[3], "weight_decay", 0, false, INFINITY, false))
      ts->weight_decay = v[3].num;
    if (has[4] && in_range(c, &v[4], "dampening", 0, false, 1, false))
      ts->dampening = v[4].num;
    if (ts->nesterov && (ts->momentum <= 0 || ts->dampening != 0))
      diag_error(c->d, has[2] ? v[2].span : sp, "nesterov needs a momentum and zero dampening");
  } else if (!strcmp(k, "schedule")) {
    const char *name;
    const Arg *args;
    Span sp;
    if (!callee(c, t, &name, &args, &sp))
      return;
    if (!strcmp(name, "constant")) {
      if (bind(c, "constant", sp, args, NULL, 0, NULL, v, has))
        ts->sched = SCHED_CONSTANT;
    } else if (!strcmp(name, "step")) {
      if (!bind(c, "step", sp, args, step_spec, 2, NULL, v, has))
        return;
      ts->sched = SCHED_STEP;
      if (in_range(c, &v[0], "step_size", 0, true, 1000000, false))
        ts->step_size = (int)v[0].num;
      if (has[1] && in_range(c, &v[1], "gamma", 0, true, INFINITY, false))
        ts->gamma = v[1].num;
    } else if (!strcmp(name, "onecycle")) {
      if (!bind(c, "onecycle", sp, args, onecycle_spec, 7, NULL, v, has))
        return;
      ts->sched = SCHED_ONECYCLE;
      if (has[0] && in_range(c, &v[0], "max_lr", 0, true, INFINITY, false))
        ts->max_lr = v[0].num;
      if (has[1] && in_range(c, &v[1], "pct_start", 0, true, 1, true))
        ts->pct_start = v[1].num;
      if (has[2] && in_range(c, &v[2], "div_factor", 0, true, INFINITY, false))
        ts->div_factor = v[2].num;
      if (has[3] && in_range(c, &v[3], "final_div_factor", 0, true, INFINITY, false))
        ts->final_div_factor = v[3].num;
      if (has[4])
        ts->cycle_momentum = v[4].b;
      if (has[5] && in_range(c, &v[5], "base_momentum", 0, false, 1, true))
        ts->base_momentum = v[5].num;
      if (has[6] && in_range(c, &v[6], "max_momentum", 0, false, 1, true))
        ts->max_momentum = v[6].num;
      if (ts->base_momentum > ts->max_momentum)
        diag_error(c->d, sp, "base_momentum %g is larger than max_momentum %g", ts->base_momentum,
                   ts->max_momentum);
    } else {
      diag_error(c->d, sp, "unknown schedule '%s' (cnnc knows constant, step and onecycle)", name);
    }
  } else if (!strcmp(k, "normalize") || !strcmp(k, "augment")) {
    bool norm = k[0] == 'n';
    if (!t->is_call) {
      diag_error(c->d, t->span, "'%s' is written as a call, like %s", k,
                 norm ? "normalize(mean = 0.1307, std = 0.3081)" : "augment(rotate = 7, shift = 2)");
      return;
    }
    if (!bind(c, k, t->span, t->args, norm ? norm_spec : aug_spec, 2, NULL, v, has))
      return;
    if (norm) {
      ts->mean = v[0].num;
      if (in_range(c, &v[1], "std", 0, true, INFINITY, false))
        ts->std = v[1].num;
    } else {
      if (has[0] && in_range(c, &v[0], "rotate", 0, false, 180, false))
        ts->rotate = v[0].num;
      if (has[1] && in_range(c, &v[1], "shift", 0, false, 1e6, false))
        ts->shift = v[1].num;
    }
  } else {
    diag_error(c->d, t->span,
               "unknown train setting '%s' (cnnc knows epochs, batch, seed, optimizer, schedule, "
               "normalize and augment)",
               k);
  }
}

// Reads the train section; repeated settings are errors.
static void check_train(Ck *c, TrainSpec *ts) {
  train_spec_default(ts);
  for (const TrainItem *t = c->p->train; t && !c->d->stop; t = t->next) {
    const TrainItem *first = NULL;
    for (const TrainItem *u = c->p->train; u != t && !first; u = u->next)
      if (strcmp(u->key, t->key) == 0)
        first = u;
    if (first) {
      if (diag_error(c->d, t->span, "duplicate train setting '%s'", t->key))
        diag_note(c->d, first->span, "'%s' was first set here", t->key);
      continue;
    }
    train_item(c, t, ts);
  }
}

// ---------------------------------------------------------------- driver

// Copies the file name and every block name into one block the Net owns.
static void own_strings(Net *net, const char *file) {
  size_t n = strlen(file) + 1;
  for (int i = 0; i < net->n_layers; i++)
    if (net->layers[i].block)
      n += strlen(net->layers[i].block) + 1;
  char *s = malloc(n), *p = s;
  if (!s) {
    fputs("cnnc: error: out of memory\n", stderr);
    exit(1);
  }
  strcpy(p, file);
  const char *f = p;
  p += strlen(file) + 1;
  for (int i = 0; i < net->n_layers; i++) {
    Layer *l = &net->layers[i];
    l->span.file = f;
    if (l->block) {
      strcpy(p, l->block);
      l->block = p;
      p += strlen(p) + 1;
    }
  }
  net->strings = s;
}

// Checks a parsed program into *out; shape errors point at their layer.
static void check_program(Ck *c, Net *out) {
  Program *p = c->p;
  Span none = {c->file, 0, 0, 0};
  if (!p->network)
    diag_error(c->d, none, "missing 'network NAME;' declaration");
  if (!p->has_input)
    diag_error(c->d, none, "missing 'input HxWxC;' declaration (like input 28x28x1;)");
  else if (p->input[0] <= 0 || p->input[1] <= 0 || p->input[2] <= 0)
    diag_error(c->d, p->input_span, "input dimensions must be positive, not %ldx%ldx%ld", p->input[0],
               p->input[1], p->input[2]);
  index_blocks(c);
  expand(c, p->calls, NULL);
  check_train(c, &out->train);
  out->has_train = p->has_train;
  if (c->d->errors)
    return;
  if (c->n == 0) {
    diag_error(c->d, p->network_span, "network '%s' has no layers", p->network);
    return;
  }
  for (int i = 0; i + 1 < c->n; i++)
    if (c->layers[i].kind == L_LOG_SOFTMAX) {
      diag_error(c->d, c->layers[i].span, "log_softmax must be the last layer");
      return;
    }
  out->input = (Shape){(int)p->input[2], (int)p->input[0], (int)p->input[1]};
  out->layers = c->layers;
  out->n_layers = c->n;
  c->layers = NULL;
  char msg[256];
  int bad = net_infer(out, msg, sizeof msg);
  if (bad >= 0) {
    const Layer *l = &out->layers[bad];
    if (diag_error(c->d, l->span, "%s", msg) && l->block)
      diag_note(c->d, c->sites[bad], "in block '%s' called here", l->block);
    return;
  }
  out->name = strdup(p->network);
  if (!out->name)
    exit(1);
}

int cnnc_load_string_diag(const char *filename, const char *src, size_t len, Net *out, FILE *dout) {
  Diag d;
  diag_init(&d, filename, src, len, dout);
  Arena *arena = arena_new();
  ParseCtx ctx = {.arena = arena, .diag = &d, .file = filename};
  memset(out, 0, sizeof *out);
  cnnc_parse(&ctx, src, len);
  Ck c = {.d = &d, .p = &ctx.prog, .file = filename};
  if (!d.stop)
    check_program(&c, out);
  if (d.errors == 0)
    own_strings(out, filename);
  else
    net_free(out);
  free(c.layers);
  free(c.sites);
  free(c.table);
  arena_free(arena);
  if (d.errors == 0)
    return 0;
  return d.errors;
}

int cnnc_load_string(const char *filename, const char *src, size_t len, Net *out) {
  return cnnc_load_string_diag(filename, src, len, out, stderr);
}

int cnnc_load_file(const char *path, Net *out) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cnnc: error: cannot open '%s': %s\n", path, strerror(errno));
    return 1;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fputs("cnnc: error: out of memory\n", stderr);
      fclose(f);
      return 1;
    }
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap)
      break;
    cap *= 2;
    char *nb = realloc(buf, cap);
    if (!nb)
      free(buf);
    buf = nb;
  }
  if (ferror(f)) {
    fprintf(stderr, "cnnc: error: cannot read '%s': %s\n", path, strerror(errno));
    fclose(f);
    free(buf);
    return 1;
  }
  fclose(f);
  int errors = cnnc_load_string(path, buf, n, out);
  free(buf);
  return errors;
}
