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
#include "layers.h"

typedef enum VKind { V_NUM, V_BOOL, V_DIMS } VKind;

// An evaluated argument; span is where its value was written.
typedef struct Value {
  VKind kind;
  double num;
  bool is_int, percent, b;
  long dims[2];   // V_DIMS: rows x columns
  const char *word; // a bare word a P_PAD parameter takes (same, valid)
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
  int next_src;           // the tensor the next layer reads (a residual's input), or -1
  const Block **table;    // open-addressed hash of blocks by name
  size_t table_cap;
  bool *called;           // per table slot: the block was expanded at least once
} Ck;

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

// Records that block b was expanded.
static void mark_called(Ck *c, const Block *b) {
  for (size_t i = hash_str(b->name) & (c->table_cap - 1); c->table[i]; i = (i + 1) & (c->table_cap - 1))
    if (c->table[i] == b) {
      c->called[i] = true;
      return;
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
  c->called = calloc(c->table_cap, sizeof *c->called);
  if (!c->table || !c->called) {
    fputs("cnnc: error: out of memory\n", stderr);
    exit(1);
  }
  for (const Block *b = c->p->blocks; b && !c->d->stop; b = b->next) {
    if (layer_find(b->name) >= 0) {
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
  case E_DIMS:
    if (e->ndims != 2) {
      diag_error(c->d, e->span, "a window is rows x columns, like 10x4, not %d dimensions", e->ndims);
      return false;
    }
    out->kind = V_DIMS;
    out->dims[0] = e->dims[0];
    out->dims[1] = e->dims[1];
    out->is_int = true;
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
      diag_error(c->d, e->span, "arithmetic needs numbers, not %s",
                 l.kind == V_DIMS || r.kind == V_DIMS ? "windows like 3x3" : "true or false");
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

static bool bound(const Env *env, const char *name);

// Adds a note pointing at the top-level call when inside a block.
static void site_note(Ck *c, bool reported) {
  if (reported && c->depth > 0)
    diag_note(c->d, c->site, "in block '%s' called here", c->stack[0]->name);
}

// Binds a call's arguments to a parameter table, checking count and types.
static bool bind(Ck *c, const char *what, Span call, const Arg *args, const ParamSpec *spec, int n,
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
    ParamType ty = spec[slot].type;
    const char *pn = spec[slot].name;
    if (ty == P_PAD && a->value->kind == E_NAME && !bound(env, a->value->name)) {
      // padding = same | valid: words, unless a block parameter has the name.
      if (strcmp(a->value->name, "same") && strcmp(a->value->name, "valid")) {
        site_note(c, diag_error(c->d, a->value->span, "%s '%s' must be a number, same or valid, not '%s'", what, pn,
                                a->value->name));
        ok = false;
        continue;
      }
      memset(&v, 0, sizeof v);
      v.kind = V_NUM;
      v.word = a->value->name[0] == 's' ? "same" : "valid";
      v.span = a->value->span;
      vals[slot] = v;
      has[slot] = true;
      continue;
    }
    if (!eval(c, a->value, env, &v)) {
      ok = false;
      continue;
    }
    if (ty == P_BOOL && v.kind != V_BOOL) {
      site_note(c, diag_error(c->d, v.span, "%s '%s' must be true or false", what, pn));
      ok = false;
      continue;
    }
    if (v.kind == V_DIMS && ty != P_PAIR && ty != P_PAD) {
      site_note(c, diag_error(c->d, v.span, "%s '%s' must be a number, not a window", what, pn));
      ok = false;
      continue;
    }
    if (ty != P_BOOL && v.kind == V_BOOL) {
      site_note(c, diag_error(c->d, v.span, "%s '%s' must be a number, not %s", what, pn, v.b ? "true" : "false"));
      ok = false;
      continue;
    }
    // 1e4 is a whole number too; 3.5 and 3% are not.
    if (!v.is_int && !v.percent && v.num == floor(v.num) && fabs(v.num) <= 9007199254740992.0)
      v.is_int = true;
    if (ty != P_NUM && ty != P_BOOL && !v.is_int) {
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

// Whether a block parameter called name is in scope.
static bool bound(const Env *env, const char *name) {
  for (int i = env ? env->n - 1 : -1; i >= 0; i--)
    if (strcmp(env->b[i].name, name) == 0)
      return true;
  return false;
}

#define ARG_MAX 1000000

// A whole number as an int in [min, ARG_MAX]; reports it otherwise.
static bool to_int(Ck *c, double num, Span span, const char *what, const char *pn, int min, int *out) {
  if (num < min) {
    site_note(c, diag_error(c->d, span, "%s %s must be %s, not %g", what, pn, min > 0 ? "positive" : "zero or more",
                            num));
    return false;
  }
  if (num > ARG_MAX) {
    site_note(c, diag_error(c->d, span, "%s %s %.0f is too large (at most %d)", what, pn, num, ARG_MAX));
    return false;
  }
  *out = (int)num;
  return true;
}

// The arguments of one call as the layer modules read them.
static void to_arglist(Ck *c, const char *what, Span call, const Value *v, const bool *has, ArgList *a) {
  memset(a, 0, sizeof *a);
  a->ck = c;
  a->what = what;
  a->call = call;
  for (int i = 0; i < MAX_PARAMS; i++) {
    a->has[i] = has[i];
    if (!has[i])
      continue;
    ArgValue *x = &a->v[i];
    x->num = v[i].num;
    x->is_int = v[i].is_int;
    x->percent = v[i].percent;
    x->b = v[i].b;
    x->word = v[i].word;
    x->span = v[i].span;
    if (v[i].kind == V_DIMS) {
      x->ndims = 2;
      x->dims[0] = v[i].dims[0];
      x->dims[1] = v[i].dims[1];
    }
  }
}

bool arg_int(ArgList *a, int slot, const char *pname, int min, int def, int *out) {
  if (!a->has[slot]) {
    *out = def;
    return true;
  }
  return to_int(a->ck, a->v[slot].num, a->v[slot].span, a->what, pname, min, out);
}

bool arg_pair(ArgList *a, int slot, const char *pname, int min, int def, int *h, int *w) {
  if (!a->has[slot]) {
    *h = *w = def;
    return true;
  }
  const ArgValue *x = &a->v[slot];
  if (x->ndims == 2)
    return to_int(a->ck, (double)x->dims[0], x->span, a->what, pname, min, h) &&
           to_int(a->ck, (double)x->dims[1], x->span, a->what, pname, min, w);
  if (!to_int(a->ck, x->num, x->span, a->what, pname, min, h))
    return false;
  *w = *h;
  return true;
}

bool arg_padding(ArgList *a, int slot, Layer *l) {
  l->pt = l->pb = l->pl = l->pr = 0;
  l->same = false;
  if (!a->has[slot])
    return true;
  if (a->v[slot].word) {
    l->same = a->v[slot].word[0] == 's';
    return true;
  }
  int h, w;
  if (!arg_pair(a, slot, "padding", 0, 0, &h, &w))
    return false;
  l->pt = l->pb = h;
  l->pl = l->pr = w;
  return true;
}

bool arg_prob(ArgList *a, int slot, const char *pname, double *out) {
  *out = a->v[slot].num;
  if (!(*out >= 0 && *out < 1)) {
    site_note(a->ck, diag_error(((Ck *)a->ck)->d, a->v[slot].span, "%s %g is outside [0, 1)", pname, *out));
    return false;
  }
  return true;
}

// Appends a layer; false when the network is too large (reported).
static bool push_layer(Ck *c, const Layer *l, Span call) {
  if (c->n == CNNC_MAX_LAYERS) {
    site_note(c, diag_error(c->d, call, "the network has more than %d layers", CNNC_MAX_LAYERS));
    c->too_many = true;
    return false;
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
  c->sites[c->n] = c->depth > 0 ? c->site : call;
  c->layers[c->n++] = *l;
  return true;
}

// A new layer of kind k made by the call at span, reading the current tensor.
static Layer new_layer(Ck *c, LayerKind k, Span span) {
  Layer l = {.kind = k, .span = span, .sh = 1, .sw = 1, .groups = 1, .src2 = -1};
  l.src = c->next_src >= 0 ? c->next_src : c->n;
  c->next_src = -1;
  l.block = c->depth > 0 ? c->stack[c->depth - 1]->name : NULL;
  return l;
}

// Appends one built-in layer, its arguments checked by its module.
static void add_layer(Ck *c, LayerKind kind, const Call *call, const Env *env) {
  const LayerDef *def = layer_def(kind);
  Value v[MAX_PARAMS] = {0};
  bool has[MAX_PARAMS] = {0};
  if (!bind(c, def->name, call->span, call->args, def->params, def->n_params, env, v, has))
    return;
  ArgList a;
  to_arglist(c, def->name, call->span, v, has, &a);
  int src = c->next_src;
  Layer l = new_layer(c, kind, call->span);
  if (def->args && !def->args(&a, &l)) {
    c->next_src = src;
    return;
  }
  push_layer(c, &l, call->span);
}

static void expand(Ck *c, const Call *calls, const Env *env);

// Expands one call of a user block: binds its parameters, then its body.
static void call_block(Ck *c, const Block *b, const Call *call, const Env *env) {
  mark_called(c, b);
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

// Expands `residual { body } [shortcut { layers }]`: the body and the
// shortcut both read the block's input, and an add joins their outputs.
static void expand_residual(Ck *c, const Call *call, const Env *env) {
  if (!call->body) {
    site_note(c, diag_error(c->d, call->span, "residual block has no layers"));
    return;
  }
  int t_in = c->next_src >= 0 ? c->next_src : c->n, first = c->n;
  c->next_src = t_in;
  expand(c, call->body, env);
  c->next_src = -1;
  int body_out = c->n;
  if (body_out == t_in || c->d->errors)
    return;
  int short_out = t_in;
  if (call->shortcut) {
    c->next_src = t_in;
    expand(c, call->shortcut, env);
    c->next_src = -1;
    if (c->n > body_out)
      short_out = c->n;
  }
  Layer l = new_layer(c, L_ADD, call->span);
  l.src = body_out;
  l.src2 = short_out;
  l.first = first;
  push_layer(c, &l, call->span);
}

// Expands a list of calls in order.
static void expand(Ck *c, const Call *calls, const Env *env) {
  for (const Call *call = calls; call && !c->d->stop && !c->too_many; call = call->next) {
    int kind = call->residual ? -1 : layer_find(call->name);
    const Block *b;
    if (call->residual)
      expand_residual(c, call, env);
    else if (kind >= 0)
      add_layer(c, (LayerKind)kind, call, env);
    else if ((b = find_block(c, call->name)))
      call_block(c, b, call, env);
    else
      site_note(c, diag_error(c->d, call->span, "unknown layer or block '%s'", call->name));
  }
}

// The checks a block body can have without being called (its arguments
// are unknown): names of layers, blocks and named arguments.
static void lint_calls(Ck *c, const Block *owner, const Call *calls) {
  for (const Call *call = calls; call && !c->d->stop; call = call->next) {
    if (call->residual) {
      lint_calls(c, owner, call->body);
      lint_calls(c, owner, call->shortcut);
      continue;
    }
    int kind = layer_find(call->name);
    const Block *b = kind < 0 ? find_block(c, call->name) : NULL;
    if (kind < 0 && !b) {
      if (diag_error(c->d, call->span, "unknown layer or block '%s'", call->name))
        diag_note(c->d, owner->span, "in block '%s', which is never called", owner->name);
      continue;
    }
    for (const Arg *a = call->args; a; a = a->next) {
      if (!a->name)
        continue;
      bool found = false;
      if (kind >= 0) {
        const LayerDef *def = layer_def((LayerKind)kind);
        for (int i = 0; i < def->n_params && !found; i++)
          found = !strcmp(def->params[i].name, a->name) ||
                  (def->params[i].alias && !strcmp(def->params[i].alias, a->name));
      } else {
        for (const Param *p = b->params; p && !found; p = p->next)
          found = !strcmp(p->name, a->name);
      }
      if (!found && diag_error(c->d, a->name_span, "%s has no parameter '%s'", call->name, a->name))
        diag_note(c->d, owner->span, "in block '%s', which is never called", owner->name);
    }
  }
}

// Reports what can be found wrong in blocks no call expanded.
static void lint_uncalled(Ck *c) {
  for (size_t i = 0; i < c->table_cap && !c->d->stop; i++)
    if (c->table[i] && !c->called[i])
      lint_calls(c, c->table[i], c->table[i]->body);
}

// ---------------------------------------------------------------- train

static const ParamSpec sgd_spec[] = {{"lr", NULL, P_NUM, false},           {"momentum", NULL, P_NUM, false},
                                 {"nesterov", NULL, P_BOOL, false},    {"weight_decay", NULL, P_NUM, false},
                                 {"dampening", NULL, P_NUM, false}};
static const ParamSpec step_spec[] = {{"step_size", NULL, P_INT, true}, {"gamma", NULL, P_NUM, false}};
static const ParamSpec onecycle_spec[] = {
    {"max_lr", NULL, P_NUM, false},      {"pct_start", NULL, P_NUM, false},
    {"div_factor", NULL, P_NUM, false},  {"final_div_factor", NULL, P_NUM, false},
    {"cycle_momentum", NULL, P_BOOL, false}, {"base_momentum", NULL, P_NUM, false},
    {"max_momentum", NULL, P_NUM, false}};
static const ParamSpec norm_spec[] = {{"mean", NULL, P_NUM, true}, {"std", NULL, P_NUM, true}};
static const ParamSpec aug_spec[] = {{"rotate", NULL, P_NUM, false}, {"shift", NULL, P_NUM, false}};

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
    ParamSpec s = {k, NULL, P_INT, true};
    Arg a = {.value = t->value, .span = t->value->span};
    if (!bind(c, "train setting", t->span, &a, &s, 1, NULL, v, has))
      return;
    if (!strcmp(k, "seed")) {
      if (in_range(c, &v[0], "seed", 0, false, INFINITY, false))
        ts->seed = (uint64_t)v[0].num;
    } else if (in_range(c, &v[0], k, 0, true, INFINITY, false)) {
      if (v[0].num > 1000000)
        diag_error(c->d, v[0].span, "%s %.0f is too large (at most 1000000)", k, v[0].num);
      else
        *(!strcmp(k, "epochs") ? &ts->epochs : &ts->batch) = (int)v[0].num;
    }
  } else if (!strcmp(k, "label_smoothing")) {
    if (t->is_call) {
      diag_error(c->d, t->span, "'%s' is set with '=', like %s = 0.1;", k, k);
      return;
    }
    ParamSpec s = {k, NULL, P_NUM, true};
    Arg a = {.value = t->value, .span = t->value->span};
    if (bind(c, "train setting", t->span, &a, &s, 1, NULL, v, has) &&
        in_range(c, &v[0], k, 0, false, 1, true))
      ts->label_smoothing = v[0].num;
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
               "normalize, augment and label_smoothing)",
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

// What makes a shape-correct network untrainable: no loss head, fewer than
// two classes, nothing to train, BatchNorm over a single value.
static bool check_trainable(Ck *c, const Net *net) {
  const Layer *last = &net->layers[net->n_layers - 1];
  const Span at = last->span;
  if (!layer_def(last->kind)->head) {
    diag_error(c->d, at, "the network must end with log_softmax: training minimizes the NLL of its "
                         "log-probabilities (add log_softmax; as the last layer)");
    return false;
  }
  if (net->classes < 2) {
    diag_error(c->d, at, "the network gives %d class; a classifier needs at least 2", net->classes);
    return false;
  }
  if (net->n_params == 0) {
    diag_error(c->d, c->p->network_span, "network '%s' has no trainable parameters: nothing to train",
               c->p->network);
    return false;
  }
  int i = net_single_value_bn(net, net->train.batch);
  if (i >= 0) {
    const Layer *l = &net->layers[i];
    if (diag_error(c->d, l->span, "batchnorm over one value per channel (a 1x1 map, batch 1) normalizes "
                                  "everything to its shift; use a batch of 2 or more") && l->block)
      diag_note(c->d, c->sites[i], "in block '%s' called here", l->block);
    return false;
  }
  return true;
}

// Checks a parsed program into *out; shape errors point at their layer.
static void check_program(Ck *c, Net *out) {
  Program *p = c->p;
  Span none = {c->file, 0, 0, 0};
  if (!p->network)
    diag_error(c->d, none, "missing 'network NAME;' declaration");
  else if (strlen(p->network) > CNNC_MAX_NAME)
    diag_error(c->d, p->network_span, "network name is %zu bytes long; at most %d (checkpoints store it)",
               strlen(p->network), CNNC_MAX_NAME);
  else if (!strcmp(p->network, "cnn") || !strncmp(p->network, "cnn_", 4) || !strncmp(p->network, "CNN_", 4))
    diag_error(c->d, p->network_span,
               "network name '%s' collides with the runtime's names (cnn_*); choose another", p->network);
  if (!p->has_input)
    diag_error(c->d, none, "missing 'input HxWxC;' declaration (like input 28x28x1;)");
  else if (p->input[0] <= 0 || p->input[1] <= 0 || p->input[2] <= 0)
    diag_error(c->d, p->input_span, "input dimensions must be positive, not %ldx%ldx%ld", p->input[0],
               p->input[1], p->input[2]);
  index_blocks(c);
  expand(c, p->calls, NULL);
  if (!c->d->errors)
    lint_uncalled(c);
  check_train(c, &out->train);
  out->has_train = p->has_train;
  if (c->d->errors)
    return;
  if (c->n == 0) {
    diag_error(c->d, p->network_span, "network '%s' has no layers", p->network);
    return;
  }
  for (int i = 0; i + 1 < c->n; i++)
    if (layer_def(c->layers[i].kind)->head) {
      diag_error(c->d, c->layers[i].span, "%s must be the last layer", layer_kind_name(c->layers[i].kind));
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
  if (!check_trainable(c, out))
    return;
  out->name = strdup(p->network);
  if (!out->name)
    exit(1);
}

int cnnc_load_string_diag(const char *filename, const char *src, size_t len, Net *out, FILE *dout) {
  // A UTF-8 byte order mark (editors on Windows write one) reads as blanks,
  // so columns still count bytes.
  char *nobom = NULL;
  if (len >= 3 && !memcmp(src, "\xef\xbb\xbf", 3)) {
    nobom = malloc(len);
    if (!nobom) {
      fputs("cnnc: error: out of memory\n", stderr);
      exit(1);
    }
    memcpy(nobom, src, len);
    memset(nobom, ' ', 3);
    src = nobom;
  }
  Diag d;
  diag_init(&d, filename, src, len, dout);
  Arena *arena = arena_new();
  ParseCtx ctx = {.arena = arena, .diag = &d, .file = filename};
  memset(out, 0, sizeof *out);
  cnnc_parse(&ctx, src, len);
  Ck c = {.d = &d, .p = &ctx.prog, .file = filename, .next_src = -1};
  if (!d.stop)
    check_program(&c, out);
  if (d.errors == 0)
    own_strings(out, filename);
  else
    net_free(out);
  free(c.layers);
  free(c.sites);
  free(c.table);
  free(c.called);
  free(nobom);
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
