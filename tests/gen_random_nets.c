// gen_random_nets.c: draws random small networks from the .cnn grammar for
// tests/random_nets.sh, which checks, builds, compiles, trains and compiles
// the inference code of each. Shapes are tracked while drawing, so most nets
// are valid; a few get one deliberate mistake, to check that rejections are
// located. Every layer kind is one row of KINDS: to add a kind, write its
// draw/apply/print functions and add the row.
//   gen_random_nets nets SEED COUNT DIR [--infer-ok]
//                                          writes DIR/net_NNN.cnn and prints one
//                                          line per net: FILE NAME C H W CLASSES BATCH BAD
//                                          (BAD 1: it has a deliberate mistake;
//                                          --infer-ok: only layer orders the
//                                          inference code folds)
//   gen_random_nets idx DIR H W C N CLASSES SEED
//                                          writes DIR/{train,t10k}-{images,labels}
//                                          raw IDX files of N (t10k: 32) random
//                                          HxWxC images (IDX4 for C > 1)
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ------------------------------------------------------------------ random
static uint64_t rng_state;

// splitmix64: one seed gives the same nets on every machine.
static uint64_t next_u64(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform integer in [lo, hi] (hi < lo gives lo).
static int rnd(int lo, int hi) {
  if (hi <= lo)
    return lo;
  return lo + (int)(next_u64() % (uint64_t)(hi - lo + 1));
}

// True with probability pct/100.
static int chance(int pct) { return rnd(1, 100) <= pct; }

// ------------------------------------------------------------------- text
static char out[1 << 16];
static size_t out_len;

// Appends printf output to the net being written.
__attribute__((format(printf, 1, 2))) static void emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out + out_len, sizeof out - out_len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof out - out_len) {
    fprintf(stderr, "gen_random_nets: net text too long\n");
    exit(1);
  }
  out_len += (size_t)n;
}

// ------------------------------------------------------------------ shapes
typedef struct Shape {
  int c, h, w;
} Shape;

// Where a layer's values come from inside a block: literals, or the block's
// parameters `ch` (channels) and `k` (kernel).
typedef struct Env {
  int ch, k;
} Env;

// How a channel count is written: a literal or arithmetic on `ch`.
enum { C_LIT, C_CH, C_CH2, C_CH1 };
static const char *const C_EXPR[] = {"", "ch", "ch * 2", "ch + 1"};

// The layer kinds a body is drawn from (rows of KINDS). K_GAP and K_CONV are
// also used for the head.
enum { K_CONV, K_BN, K_DROPOUT, K_RELU, K_POOL, K_AVGPOOL, K_GAP, K_FLATTEN, K_DENSE, K_RES, N_KINDS,
       K_CALL = 100 };

// How a conv's padding is written: none, a number, rows x columns, same, valid.
enum { PAD_NONE, PAD_NUM, PAD_PAIR, PAD_SAME, PAD_VALID };

// One drawn layer (or block call, or residual): its arguments and how they are written.
typedef struct Item {
  int kind;        // index into KINDS, or K_CALL
  int c, k, kh, kw, sh, sw, ph, pw, bias, groups;
  int has_s, has_bias;
  int pad_mode;    // PAD_*
  int rect_k, rect_s; // kernel / stride written as RxC
  int g_ch;        // groups written as `ch` (depthwise in a block)
  int pct;         // dropout probability in percent
  int c_mode;      // C_LIT or an expression on ch
  int k_param;     // kernel written as `k`
  int block;       // K_CALL: which block
  int res;         // K_RES: index into res_pool
  int flat;        // K_DENSE: a flatten first
  int named;       // arguments written by name
  int bad;         // a deliberate mistake the checker must refuse
} Item;

// Output side of a window over a padded side, or <= 0 if none fits (as compiler/layers.c).
static int window_out(int in, int k, int s, int pad_lo, int pad_hi) {
  long span = (long)in + pad_lo + pad_hi - k;
  return span < 0 ? 0 : (int)(span / s + 1);
}

// 'same' padding of one side, Keras's split (as compiler/layers.c).
static void same_padding(int in, int k, int s, int *lo, int *hi) {
  long total = ((long)in + s - 1) / s * s - s + k - in;
  if (total < 0)
    total = 0;
  *lo = (int)(total / 2);
  *hi = (int)(total - total / 2);
}

// The smaller of two ints.
static int min2(int a, int b) { return a < b ? a : b; }

// Whether two shapes are equal.
static int same_shape(const Shape *a, const Shape *b) { return a->c == b->c && a->h == b->h && a->w == b->w; }

// ------------------------------------------------------------ layer kinds
typedef struct Kind {
  const char *name;
  int weight;                                   // relative frequency in a body
  int in_block;                                 // may appear in a block body
  void (*draw)(Item *it, const Shape *s, int in_block); // arguments that fit s
  int (*apply)(const Item *it, const Env *e, Shape *s);  // 0 if it fits; updates s
  void (*print)(const Item *it);
} Kind;

// A residual's layers: the body and the shortcut (none: identity).
#define MAX_RES 64
#define RES_BODY 3
typedef struct Res {
  int n, ns;
  Item body[RES_BODY], sc[2];
} Res;
static Res res_pool[MAX_RES];
static int n_res, res_depth;

// Set when a printed layer carries a deliberate mistake.
static int net_bad;

// With --infer-ok, only nets the inference code folds (see infer_apply).
static int infer_ok;

// The groups of a conv on c input channels, drawn into it: depthwise, a
// divisor of both counts, or (rarely, a mistake) one that divides neither.
static void draw_groups(Item *it, int c) {
  if (chance(50)) {
    it->groups = c; // depthwise, with a channel multiplier of 1 or 2
    it->c = c * rnd(1, 2);
  } else {
    int g = rnd(1, c);
    while (c % g)
      g--;
    it->groups = g;
    it->c = g * rnd(1, 12 / g > 0 ? 12 / g : 1);
  }
  if (chance(5)) {
    it->groups = c + 1; // never divides c
    it->bad = 1;
  }
}

// conv: channels 1..12, kernel up to 5 (square or RxC, never larger than the
// padded input), stride 1, 2 or RxC, padding a number, RxC, same or valid,
// groups sometimes, bias either way.
static void draw_conv(Item *it, const Shape *s, int in_block) {
  it->c = rnd(1, 12);
  int r = rnd(1, 100);
  it->pad_mode = r <= 60 ? PAD_NONE : r <= 72 ? PAD_NUM : r <= 80 ? PAD_PAIR : r <= 94 ? PAD_SAME : PAD_VALID;
  it->ph = it->pad_mode == PAD_NUM || it->pad_mode == PAD_PAIR ? rnd(0, 2) : 0;
  it->pw = it->pad_mode == PAD_PAIR ? rnd(0, 2) : it->ph;
  // 'same' fits any kernel; else the kernel fits the padded input.
  int same = it->pad_mode == PAD_SAME;
  int mh = same ? 5 : min2(5, s->h + 2 * it->ph), mw = same ? 5 : min2(5, s->w + 2 * it->pw);
  it->rect_k = chance(25);
  if (it->rect_k) {
    it->kh = rnd(1, mh);
    it->kw = rnd(1, mw);
  } else {
    it->kh = it->kw = rnd(1, min2(mh, mw));
  }
  // Padding below the kernel (one number: below both sides).
  if (it->pad_mode == PAD_PAIR) {
    it->ph = min2(it->ph, it->kh - 1);
    it->pw = min2(it->pw, it->kw - 1);
  } else {
    it->ph = it->pw = min2(it->ph, min2(it->kh, it->kw) - 1);
  }
  it->has_s = chance(25);
  it->rect_s = it->has_s && chance(30);
  it->sh = it->has_s ? rnd(1, 2) : 1;
  it->sw = it->rect_s ? rnd(1, 2) : it->sh;
  it->has_bias = chance(50);
  it->bias = chance(50);
  if (in_block) {
    it->c_mode = rnd(C_LIT, C_CH1);
    it->k_param = !it->rect_k && chance(50);
    if (it->c_mode == C_CH && chance(15))
      it->g_ch = 1; // depthwise on a ch-channel input
  } else if (chance(20)) {
    draw_groups(it, s->c);
  }
}

// conv's output shape, with the block's ch and k where it uses them.
static int apply_conv(const Item *it, const Env *e, Shape *s) {
  int c = it->c_mode == C_LIT ? it->c : it->c_mode == C_CH ? e->ch
        : it->c_mode == C_CH2 ? e->ch * 2 : e->ch + 1;
  int kh = it->k_param ? e->k : it->kh, kw = it->k_param ? e->k : it->kw;
  int g = it->g_ch ? e->ch : it->groups > 0 ? it->groups : 1;
  if (g <= 0 || ((s->c % g || c % g) && !it->bad))
    return -1;
  int pt = it->ph, pb = it->ph, pl = it->pw, pr = it->pw;
  if (it->pad_mode == PAD_SAME) {
    same_padding(s->h, kh, it->sh, &pt, &pb);
    same_padding(s->w, kw, it->sw, &pl, &pr);
  } else if (pt >= kh || pl >= kw) {
    return -1;
  }
  int oh = window_out(s->h, kh, it->sh, pt, pb), ow = window_out(s->w, kw, it->sw, pl, pr);
  if (oh <= 0 || ow <= 0)
    return -1;
  *s = (Shape){c, oh, ow};
  return 0;
}

// A window (kernel or stride): `N` or `RxC`.
static void print_window(int rect, int h, int w) {
  if (rect)
    emit("%dx%d", h, w);
  else
    emit("%d", h);
}

// conv(...) positionally or by name; optional arguments only when drawn.
static void print_conv(const Item *it) {
  if (it->c_mode == C_LIT)
    emit(it->named ? "conv(out_channels = %d, kernel = " : "conv(%d, ", it->c);
  else
    emit(it->named ? "conv(out_channels = %s, kernel = " : "conv(%s, ", C_EXPR[it->c_mode]);
  if (it->k_param)
    emit("k");
  else
    print_window(it->rect_k, it->kh, it->kw);
  if (it->has_s) {
    emit(", stride = ");
    print_window(it->rect_s, it->sh, it->sw);
  }
  switch (it->pad_mode) {
  case PAD_NUM: emit(", padding = %d", it->ph); break;
  case PAD_PAIR: emit(", padding = %dx%d", it->ph, it->pw); break;
  case PAD_SAME: emit(", padding = same"); break;
  case PAD_VALID: emit(", padding = valid"); break;
  default: break;
  }
  if (it->has_bias)
    emit(", bias = %s", it->bias ? "true" : "false");
  if (it->g_ch)
    emit(", groups = ch");
  else if (it->groups > 0)
    emit(", groups = %d", it->groups);
  emit(");");
}

// maxpool/avgpool: kernel up to 3 and the input (sometimes RxC), stride up
// to the kernel (or the default).
static void draw_pool(Item *it, const Shape *s, int in_block) {
  (void)in_block;
  int mh = min2(s->h, 3), mw = min2(s->w, 3);
  it->rect_k = chance(20);
  it->kh = it->rect_k ? rnd(1, mh) : rnd(1, min2(mh, mw));
  it->kw = it->rect_k ? rnd(1, mw) : it->kh;
  it->has_s = chance(40);
  it->rect_s = it->has_s && (it->rect_k || chance(20));
  it->sh = it->has_s ? rnd(1, it->kh) : it->kh;
  it->sw = !it->has_s ? it->kw : it->rect_s ? rnd(1, it->kw) : it->sh;
}

// A pool's output shape.
static int apply_pool(const Item *it, const Env *e, Shape *s) {
  (void)e;
  int oh = window_out(s->h, it->kh, it->sh, 0, 0), ow = window_out(s->w, it->kw, it->sw, 0, 0);
  if (oh <= 0 || ow <= 0)
    return -1;
  s->h = oh;
  s->w = ow;
  return 0;
}

// maxpool(k) or avgpool(k, stride = s) or by name.
static void print_pool(const Item *it) {
  emit(it->named ? "%s(kernel = " : "%s(", it->kind == K_POOL ? "maxpool" : "avgpool");
  print_window(it->rect_k, it->kh, it->kw);
  if (it->has_s) {
    emit(it->named || it->rect_s || chance(50) ? ", stride = " : ", ");
    print_window(it->rect_s, it->sh, it->sw);
  }
  emit(");");
}

// dropout: 0 to 50%.
static void draw_dropout(Item *it, const Shape *s, int in_block) {
  (void)s;
  (void)in_block;
  it->pct = chance(10) ? 0 : rnd(1, 50);
}

// Layers that keep the shape.
static int apply_same(const Item *it, const Env *e, Shape *s) {
  (void)it;
  (void)e;
  (void)s;
  return 0;
}

// dropout(p) as a percentage or a fraction.
static void print_dropout(const Item *it) {
  if (chance(50))
    emit("dropout(%s%d%%);", it->named ? "p = " : "", it->pct);
  else
    emit("dropout(%s%g);", it->named ? "p = " : "", it->pct / 100.0);
}

// Layers without arguments.
static void draw_none(Item *it, const Shape *s, int in_block) {
  (void)it;
  (void)s;
  (void)in_block;
}

// Global average pooling: one value per channel.
static int apply_gap(const Item *it, const Env *e, Shape *s) {
  (void)it;
  (void)e;
  s->h = s->w = 1;
  return 0;
}

// The next three print a layer without arguments.
static void print_bn(const Item *it) { (void)it; emit("batchnorm;"); }
// relu;
static void print_relu(const Item *it) { (void)it; emit("relu;"); }
// gap;
static void print_gap(const Item *it) { (void)it; emit("gap;"); }

// flatten: the map as one vector; kept small, as a dense layer follows.
static int apply_flatten(const Item *it, const Env *e, Shape *s) {
  (void)it;
  (void)e;
  long v = (long)s->c * s->h * s->w;
  if (v > 2000)
    return -1;
  *s = (Shape){(int)v, 1, 1};
  return 0;
}

// flatten;
static void print_flatten(const Item *it) { (void)it; emit("flatten;"); }

// dense: 2..16 units, a flatten first unless the map is 1x1 already.
static void draw_dense(Item *it, const Shape *s, int in_block) {
  (void)in_block;
  it->c = rnd(2, 16);
  it->flat = s->h != 1 || s->w != 1 || chance(30);
  it->has_bias = chance(30);
  it->bias = chance(30);
}

// dense's output: units on a flat input.
static int apply_dense(const Item *it, const Env *e, Shape *s) {
  if (it->flat && apply_flatten(it, e, s) != 0)
    return -1;
  if (s->h != 1 || s->w != 1)
    return -1;
  s->c = it->c;
  return 0;
}

// [flatten;] dense(units[, bias = ...]);
static void print_dense(const Item *it) {
  if (it->flat)
    emit("flatten; ");
  emit(it->named ? "dense(units = %d" : "dense(%d", it->c);
  if (it->has_bias)
    emit(", bias = %s", it->bias ? "true" : "false");
  emit(");");
}

static void draw_res(Item *it, const Shape *s, int in_block);
static int apply_res(const Item *it, const Env *e, Shape *s);
static void print_res(const Item *it);

static const Kind KINDS[N_KINDS] = {
    [K_CONV] = {"conv", 30, 1, draw_conv, apply_conv, print_conv},
    [K_BN] = {"batchnorm", 12, 1, draw_none, apply_same, print_bn},
    [K_DROPOUT] = {"dropout", 6, 1, draw_dropout, apply_same, print_dropout},
    [K_RELU] = {"relu", 15, 1, draw_none, apply_same, print_relu},
    [K_POOL] = {"maxpool", 7, 1, draw_pool, apply_pool, print_pool},
    [K_AVGPOOL] = {"avgpool", 5, 1, draw_pool, apply_pool, print_pool},
    [K_GAP] = {"gap", 2, 0, draw_none, apply_gap, print_gap},
    [K_FLATTEN] = {"flatten", 2, 0, draw_none, apply_flatten, print_flatten},
    [K_DENSE] = {"dense", 4, 0, draw_dense, apply_dense, print_dense},
    [K_RES] = {"residual", 12, 1, draw_res, apply_res, print_res},
};

// A kind drawn by weight (only those allowed in a block body when in_block).
static int draw_kind(int in_block) {
  int total = 0;
  for (int i = 0; i < N_KINDS; i++)
    total += in_block && !KINDS[i].in_block ? 0 : KINDS[i].weight;
  int r = rnd(1, total);
  for (int i = 0; i < N_KINDS; i++) {
    int w = in_block && !KINDS[i].in_block ? 0 : KINDS[i].weight;
    if (r <= w)
      return i;
    r -= w;
  }
  return 0;
}

// ------------------------------------------------------------------ blocks
#define MAX_BLOCKS 3
#define MAX_BODY 4
typedef struct Block {
  int n, has_k, k_default;
  Item body[MAX_BODY];
} Block;
static Block blocks[MAX_BLOCKS];
static int n_blocks;

static int apply_item(const Item *it, const Env *e, Shape *s);

// A call's shape: the block's body with the call's ch and k.
static int apply_call(const Item *it, const Env *e, Shape *s) {
  const Block *b = &blocks[it->block];
  // Inside a block, a call passes the caller's parameters on.
  Env inner = {it->c_mode == C_LIT ? it->c : e->ch, it->k_param ? e->k : it->k};
  if (!it->has_s && b->has_k)
    inner.k = b->k_default;
  for (int i = 0; i < b->n; i++)
    if (apply_item(&b->body[i], &inner, s) != 0)
      return -1;
  return 0;
}

// The shape after one item.
static int apply_item(const Item *it, const Env *e, Shape *s) {
  if (it->kind == K_CALL)
    return apply_call(it, e, s);
  return KINDS[it->kind].apply(it, e, s);
}

// uN(ch[, k = ...]) positionally or by name; has_s marks an explicit k.
static void print_call(const Item *it) {
  const Block *b = &blocks[it->block];
  char c[16];
  if (it->c_mode == C_LIT)
    snprintf(c, sizeof c, "%d", it->c);
  else
    snprintf(c, sizeof c, "ch");
  emit("u%d(%s%s", it->block, it->named ? "ch = " : "", c);
  if (b->has_k && it->has_s) {
    if (it->k_param)
      emit(", k = k");
    else
      emit(it->named || chance(50) ? ", k = %d" : ", %d", it->k);
  }
  emit(");");
}

// Prints one item.
static void print_item(const Item *it) {
  if (it->kind == K_CALL)
    print_call(it);
  else
    KINDS[it->kind].print(it);
}

// Whether an item (or a layer inside it) carries a deliberate mistake.
static int item_bad(const Item *it) {
  if (it->bad)
    return 1;
  if (it->kind != K_RES)
    return 0;
  const Res *r = &res_pool[it->res];
  for (int i = 0; i < r->n; i++)
    if (item_bad(&r->body[i]))
      return 1;
  for (int i = 0; i < r->ns; i++)
    if (item_bad(&r->sc[i]))
      return 1;
  return 0;
}

// --------------------------------------------------------------- residuals
// A conv that keeps a c-channel map's shape: stride 1, 'same' padding,
// sometimes RxC or depthwise. In a block its channels are the expression cm.
static void draw_keep_conv(Item *it, int c, int cm, int in_block) {
  memset(it, 0, sizeof *it);
  it->kind = K_CONV;
  it->pad_mode = PAD_SAME;
  it->rect_k = chance(25);
  it->kh = rnd(1, 3);
  it->kw = it->rect_k ? rnd(1, 3) : it->kh;
  it->sh = it->sw = 1;
  it->has_bias = chance(30);
  it->bias = chance(50);
  it->c_mode = in_block ? cm : C_LIT;
  it->c = c;
  if (chance(20)) {
    if (in_block)
      it->g_ch = 1; // ch divides ch and ch * 2
    else
      it->groups = c;
  }
}

// A shape-keeping item for a c-channel map: a conv, batchnorm, relu,
// dropout or (once deep) a nested residual. first: it reads the residual's
// input, which the add reads too, so --infer-ok wants an op there.
static void draw_keep(Item *it, const Shape *t, int cm, int in_block, int first) {
  int r = rnd(1, 100);
  if (r <= 40 || (first && infer_ok)) {
    draw_keep_conv(it, t->c, cm, in_block);
    return;
  }
  memset(it, 0, sizeof *it);
  if (r <= 50 && res_depth == 0 && (!in_block || cm == C_CH)) {
    it->kind = K_RES;
    draw_res(it, t, in_block);
    return;
  }
  it->kind = r <= 65 ? K_BN : r <= 85 ? K_RELU : K_DROPOUT;
  KINDS[it->kind].draw(it, t, in_block);
}

// residual { ... } [shortcut { ... }] on shape s: an identity residual whose
// body keeps the shape, or a body that starts with a strided / widening
// 'same' conv and a shortcut projecting the input alike (1x1 conv, maybe
// batchnorm). In the body of a program, sometimes (a mistake) a body that
// widens the map with no shortcut. In a block the channels are ch or ch * 2.
static void draw_res(Item *it, const Shape *s, int in_block) {
  if (n_res == MAX_RES || res_depth > 1) {
    it->kind = K_DROPOUT;
    draw_dropout(it, s, in_block);
    return;
  }
  it->res = n_res++;
  Res *r = &res_pool[it->res];
  memset(r, 0, sizeof *r);
  res_depth++;
  int proj = chance(40);
  Shape t = *s;
  int cm = C_CH;
  r->n = rnd(1, RES_BODY);
  int i = 0;
  if (proj || (!in_block && chance(6))) {
    // The body's first conv changes the shape; the shortcut follows it.
    Item *f = &r->body[i++];
    int sh = chance(50) ? 2 : 1, sw = chance(80) ? sh : 3 - sh;
    cm = in_block ? (chance(50) ? C_CH2 : C_CH) : C_LIT;
    draw_keep_conv(f, rnd(1, 12), cm, in_block);
    f->groups = f->g_ch = 0;
    f->has_s = sh != 1 || sw != 1;
    f->rect_s = sh != sw;
    f->sh = sh, f->sw = sw;
    Env none = {0, 0};
    if (!proj)
      f->c = s->c + 1; // no shortcut: the add's shapes differ
    f->bad = !proj;
    if (proj) {
      Item *p = &r->sc[r->ns++];
      draw_keep_conv(p, f->c, cm, in_block);
      p->groups = p->g_ch = 0;
      p->rect_k = 0;
      p->kh = p->kw = 1;
      p->has_s = f->has_s, p->rect_s = f->rect_s, p->sh = sh, p->sw = sw;
      if (chance(40)) {
        memset(&r->sc[r->ns], 0, sizeof r->sc[0]);
        r->sc[r->ns++].kind = K_BN;
      }
    }
    if (!in_block)
      apply_conv(f, &none, &t);
    else
      t.c = 0; // unknown until a call
  }
  for (; i < r->n; i++)
    draw_keep(&r->body[i], &t, cm, in_block, i == 0);
  res_depth--;
}

// The add's shape: the body's, which must equal the shortcut's (or the
// input's) unless it is a deliberate mistake.
static int apply_res(const Item *it, const Env *e, Shape *s) {
  const Res *r = &res_pool[it->res];
  Shape b = *s, sc = *s;
  for (int i = 0; i < r->n; i++)
    if (apply_item(&r->body[i], e, &b) != 0)
      return -1;
  for (int i = 0; i < r->ns; i++)
    if (apply_item(&r->sc[i], e, &sc) != 0)
      return -1;
  if (!same_shape(&b, &sc) && !item_bad(it))
    return -1;
  *s = b;
  return 0;
}

// residual { ... } [shortcut { ... }] on one line.
static void print_res(const Item *it) {
  const Res *r = &res_pool[it->res];
  emit("residual {");
  for (int i = 0; i < r->n; i++) {
    emit(" ");
    print_item(&r->body[i]);
  }
  emit(" }");
  if (r->ns) {
    emit(" shortcut {");
    for (int i = 0; i < r->ns; i++) {
      emit(" ");
      print_item(&r->sc[i]);
    }
    emit(" }");
  }
  emit(chance(20) ? "\n" : "");
}

// ---------------------------------------------------------- --infer-ok
// With --infer-ok, only nets the inference code folds (compiler/infer_plan.c):
// a conv or dense reads the input first, batchnorm only directly on a conv or
// dense output, and relu / batchnorm never on a tensor another layer also
// reads (a residual's input). Drawing them still finds the failures that the
// inference restrictions hide.
// What inference has made of the layers so far: the last op and what it absorbed.
typedef struct IState {
  int op;     // -1 (the input, or unknown), K_CONV (or dense), K_POOL (any pool), K_RES (an add)
  int relu, bn;
  int flat;   // a flatten since the op: batchnorm would not be per conv channel
  int shared; // the tensor is also read by a residual's add
} IState;

// Folds one item into the state; -1 if inference would refuse it.
static int infer_apply(const Item *it, IState *st) {
  if (it->kind == K_CALL) {
    const Block *b = &blocks[it->block];
    for (int i = 0; i < b->n; i++)
      if (infer_apply(&b->body[i], st) != 0)
        return -1;
    return 0;
  }
  switch (it->kind) {
  case K_CONV: case K_DENSE:
    // After a flatten only a dense knows the CHW order of its input.
    if (st->flat && it->kind != K_DENSE)
      return -1;
    *st = (IState){K_CONV, 0, 0, 0, 0};
    return 0;
  case K_POOL: case K_AVGPOOL: case K_GAP:
    if (st->op < 0 || st->flat)
      return -1;
    *st = (IState){K_POOL, 0, 0, 0, 0};
    return 0;
  case K_BN:
    if (st->op != K_CONV || st->relu || st->bn || st->flat || st->shared)
      return -1;
    st->bn = 1;
    return 0;
  case K_RELU:
    if (st->op < 0 || st->shared)
      return -1;
    st->relu = 1;
    return 0;
  case K_FLATTEN:
    st->flat = 1;
    return 0;
  case K_RES: {
    // Body and shortcut both read the input the add reads: nothing folds there.
    const Res *r = &res_pool[it->res];
    IState b = *st, sc = *st;
    b.shared = sc.shared = 1;
    if (st->op < 0 || st->flat)
      return -1;
    for (int i = 0; i < r->n; i++)
      if (infer_apply(&r->body[i], &b) != 0)
        return -1;
    for (int i = 0; i < r->ns; i++)
      if (infer_apply(&r->sc[i], &sc) != 0)
        return -1;
    *st = (IState){K_RES, 0, 0, 0, 0};
    return 0;
  }
  default:
    return 0;
  }
}

// Draws block definitions; a later block may call an earlier one.
static void draw_blocks(void) {
  n_blocks = chance(45) ? rnd(1, MAX_BLOCKS) : 0;
  for (int b = 0; b < n_blocks; b++) {
    Block *bl = &blocks[b];
    bl->has_k = chance(60);
    bl->n = rnd(1, MAX_BODY);
    Shape big = {4, 16, 16};
    // The body must fold on its own, whatever comes before a call.
    IState st = {-1, 0, 0, 0, 0};
    for (int i = 0; i < bl->n; i++) {
      Item *it = &bl->body[i];
      memset(it, 0, sizeof *it);
      it->named = chance(20);
      if (b > 0 && chance(20)) {
        it->kind = K_CALL;
        it->block = rnd(0, b - 1);
        it->c_mode = C_CH;
        // k passed on as `k`, as a literal, or left to the callee's default.
        const Block *callee = &blocks[it->block];
        it->has_s = callee->has_k && (callee->k_default < 0 || chance(50));
        it->k_param = it->has_s && bl->has_k && chance(50);
        it->k = rnd(1, 3);
      } else {
        it->kind = draw_kind(1);
        KINDS[it->kind].draw(it, &big, 1);
        if (!bl->has_k)
          it->k_param = 0;
        if (it->k_param && it->pad_mode != PAD_SAME)
          it->ph = it->pw = 0; // a parameter kernel may be 1
      }
      IState st2 = st;
      if (infer_ok && infer_apply(it, &st2) != 0) {
        memset(it, 0, sizeof *it);
        it->kind = K_DROPOUT;
        draw_dropout(it, &big, 1);
      }
      infer_apply(it, &st);
    }
    // k = 3 by default, or no default (every call passes k).
    bl->k_default = chance(50) ? 3 : -1;
    emit("block u%d(ch%s) {\n", b, !bl->has_k ? "" : bl->k_default > 0 ? ", k = 3" : ", k");
    for (int i = 0; i < bl->n; i++) {
      emit("    ");
      print_item(&bl->body[i]);
      emit("\n");
    }
    emit("}\n");
  }
}

// A call to block b that fits s, with a literal ch and k; -1 if none found.
static int draw_call(Item *it, int b, const Shape *s) {
  for (int tries = 0; tries < 20; tries++) {
    memset(it, 0, sizeof *it);
    it->kind = K_CALL;
    it->block = b;
    // A ch equal to the input's channels half the time, for residuals and groups = ch.
    it->c = chance(50) ? s->c : rnd(1, 8);
    it->named = chance(20);
    int need_k = blocks[b].has_k && blocks[b].k_default < 0;
    it->has_s = blocks[b].has_k && (need_k || chance(50));
    it->k = rnd(1, 3);
    Env none = {0, 0};
    Shape t = *s;
    if (apply_call(it, &none, &t) == 0 && t.h >= 1 && t.w >= 1)
      return 0;
  }
  return -1;
}

// ---------------------------------------------------------------- networks
// Names: mostly fresh identifiers, sometimes words C or the runtime use.
static const char *const RISKY_NAMES[] = {"cnn", "net", "main", "int", "train", "float", "data"};

// Draws one network into out; writes its shape, classes and batch.
static void draw_net(int index, Shape *in, int *classes, int *batch) {
  out_len = 0;
  n_res = 0;
  net_bad = 0;
  char name[32];
  if (chance(3))
    snprintf(name, sizeof name, "%s", RISKY_NAMES[rnd(0, 6)]);
  else
    snprintf(name, sizeof name, "r%c%d", 'a' + rnd(0, 25), index);
  in->h = rnd(1, 20);
  in->w = chance(75) ? in->h : rnd(1, 20);
  in->c = chance(80) ? 1 : rnd(2, 4);
  emit("// random net %d\nnetwork %s;\ninput %dx%dx%d;\n", index, name, in->h, in->w, in->c);
  draw_blocks();

  // The body: layers and block calls that fit the shape so far.
  Shape s = *in;
  IState st = {-1, 0, 0, 0, 0};
  int n = rnd(infer_ok, 8);
  for (int i = 0; i < n; i++) {
    Item it = {0};
    // A conv first (always with --infer-ok, else half the time): inference needs one there.
    if (i == 0 && (infer_ok || chance(50))) {
      it.kind = K_CONV;
      KINDS[K_CONV].draw(&it, &s, 0);
    } else if (n_blocks && chance(25)) {
      if (draw_call(&it, rnd(0, n_blocks - 1), &s) != 0)
        continue;
    } else {
      it.kind = draw_kind(0);
      it.named = chance(20);
      KINDS[it.kind].draw(&it, &s, 0);
    }
    Shape t = s;
    Env none = {0, 0};
    if (apply_item(&it, &none, &t) != 0)
      continue;
    IState st2 = st;
    if (infer_ok && infer_apply(&it, &st2) != 0)
      continue;
    st = st2;
    s = t;
    net_bad |= item_bad(&it);
    if (chance(10))
      emit("/* %dx%dx%d */ ", s.h, s.w, s.c);
    print_item(&it);
    emit(chance(10) ? "   // layer %d\n" : "\n", i);
  }
  // The head: down to 1x1 (gap, flatten + dense, or a conv over the whole
  // map), then maybe a fully connected conv, to 2..12 classes.
  if (s.h != 1 || s.w != 1) {
    if (s.h <= 5 && s.w <= 5 && chance(30)) {
      s.c = rnd(2, 12);
      if (s.h == s.w)
        emit("conv(%d, %d);\n", s.c, s.h);
      else
        emit("conv(%d, %dx%d);\n", s.c, s.h, s.w);
    } else if ((long)s.c * s.h * s.w <= 2000 && chance(30)) {
      s.c = rnd(2, 12);
      emit("flatten;\ndense(%d%s);\n", s.c, chance(20) ? ", bias = false" : "");
    } else {
      emit("gap;\n");
    }
    s.h = s.w = 1;
  } else if (chance(20) && !(infer_ok && st.flat)) {
    emit("gap;\n"); // gap on a 1x1 map
  }
  // After a flatten --infer-ok wants a dense (only it knows the CHW order).
  if (s.c < 2 || s.c > 12 || chance(40) || (infer_ok && st.flat)) {
    if (chance(30))
      emit(infer_ok ? "relu;\n" : "batchnorm;\nrelu;\n");
    s.c = rnd(2, 12);
    if (chance(50) && !(infer_ok && st.flat))
      emit("conv(%d, 1);\n", s.c);
    else
      emit("dense(%d);\n", s.c);
  }
  if (!chance(3))
    emit("log_softmax;\n");
  *classes = s.c;

  // The train section (absent: the defaults, batch 64).
  *batch = 64;
  if (chance(85)) {
    *batch = rnd(1, 16);
    emit("\ntrain {\n    epochs = %d;\n    batch = %d;\n    seed = %d;\n", rnd(1, 3), *batch,
         rnd(0, 1000));
    int mom = chance(60);
    emit("    optimizer = sgd(lr = %g", rnd(1, 20) / 200.0);
    if (mom)
      emit(", momentum = 0.9%s", chance(30) ? ", nesterov = true" : "");
    if (chance(20))
      emit(", weight_decay = 0.0005");
    emit(");\n");
    switch (rnd(0, 3)) {
    case 0: break;
    case 1: emit("    schedule = constant;\n"); break;
    case 2: emit("    schedule = step(step_size = 1, gamma = 0.5);\n"); break;
    default: emit("    schedule = onecycle(max_lr = 0.1, pct_start = 0.2);\n"); break;
    }
    if (chance(50))
      emit("    normalize(mean = 0.5, std = 0.25);\n");
    if (chance(30))
      emit("    augment(rotate = %d, shift = %d);\n", rnd(0, 10), rnd(0, 2));
    emit("}\n");
  }
}

// Mistakes: each goes before the body's first layer line, one the checker
// must refuse, or breaks the syntax.
static const char *const MISTAKES[] = {
    "conv(4, 99);\n",          // kernel larger than any input drawn
    "dropout(1);\n",           // p outside [0, 1)
    "pool(2);\n",              // unknown layer
    "conv(0);\n",              // no channels
    "maxpool(2, stride = 0);\n",
    "conv(4, 3, padding = 3);\n", // padding not below the kernel
    "log_softmax;\nrelu;\n",   // log_softmax not last
    "conv(4 3);\n",            // syntax error
    "u9(4);\n",                // undefined block
    "conv(channels);\n",       // undefined name
    "conv(5, 1, groups = 5);\n",  // groups not dividing the 1..4 input channels
    "conv(4, 3x0);\n",         // an empty window
    "conv(4, 1, padding = sam);\n", // neither a number nor same / valid
    "residual { conv(7, 1); }\n",   // the add of 7 and 1..4 channels
    "avgpool(2, stride = 1x0);\n",
    "dense(0);\n",
    "residual { }\n",
};

// Puts one mistake after the input line.
static void add_mistake(void) {
  char *p = strstr(out, "\ninput ");
  p = p ? strchr(p + 1, '\n') : NULL;
  if (!p)
    return;
  p++;
  const char *m = MISTAKES[rnd(0, (int)(sizeof MISTAKES / sizeof *MISTAKES) - 1)];
  size_t ml = strlen(m), at = (size_t)(p - out);
  if (out_len + ml >= sizeof out)
    return;
  memmove(out + at + ml, out + at, out_len - at + 1);
  memcpy(out + at, m, ml);
  out_len += ml;
  net_bad = 1;
}

// Writes COUNT nets of SEED into DIR and prints the manifest.
static int cmd_nets(uint64_t seed, int count, const char *dir) {
  for (int i = 0; i < count; i++) {
    // Each net has its own stream, so net i of a seed is the same whatever COUNT.
    rng_state = seed * 1000003u + (uint64_t)i;
    Shape in;
    int classes, batch;
    draw_net(i, &in, &classes, &batch);
    if (chance(8))
      add_mistake();
    char path[4096];
    snprintf(path, sizeof path, "%s/net_%03d.cnn", dir, i);
    FILE *f = fopen(path, "w");
    if (!f || fwrite(out, 1, out_len, f) != out_len || fclose(f) != 0) {
      perror(path);
      return 1;
    }
    char name[64] = "";
    sscanf(strstr(out, "network ") + 8, "%63[A-Za-z0-9_]", name);
    printf("%s %s %d %d %d %d %d %d\n", path, name, in.c, in.h, in.w, classes, batch, net_bad);
  }
  return 0;
}

// ---------------------------------------------------------------- IDX data
// Big-endian u32 for the IDX headers.
static void be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

// Writes one split of n random h x w x c images (IDX3 for one channel,
// IDX4 N x H x W x C for more) and labels < classes.
static int write_split(const char *dir, const char *split, int h, int w, int c, int n, int classes) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s-images-idx%d-ubyte", dir, split, c == 1 ? 3 : 4);
  FILE *f = fopen(p, "wb");
  unsigned char hd[20];
  int hl = c == 1 ? 16 : 20;
  be32(hd, c == 1 ? 0x803 : 0x804);
  be32(hd + 4, (uint32_t)n);
  be32(hd + 8, (uint32_t)h);
  be32(hd + 12, (uint32_t)w);
  be32(hd + 16, (uint32_t)c);
  if (!f || fwrite(hd, 1, (size_t)hl, f) != (size_t)hl)
    return -1;
  for (long i = 0; i < (long)n * h * w * c; i++)
    fputc((int)(next_u64() & 255), f);
  if (fclose(f) != 0)
    return -1;
  snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, split);
  f = fopen(p, "wb");
  be32(hd, 0x801);
  if (!f || fwrite(hd, 1, 8, f) != 8)
    return -1;
  for (int i = 0; i < n; i++)
    fputc(rnd(0, classes - 1), f);
  return fclose(f);
}

// Parses a positive int argument or exits.
static int arg_int(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*end || v < 0 || v > 100000000) {
    fprintf(stderr, "gen_random_nets: bad number '%s'\n", s);
    exit(2);
  }
  return (int)v;
}

// The two commands of the header comment.
int main(int argc, char **argv) {
  if ((argc == 5 || (argc == 6 && strcmp(argv[5], "--infer-ok") == 0)) &&
      strcmp(argv[1], "nets") == 0) {
    infer_ok = argc == 6;
    return cmd_nets((uint64_t)strtoull(argv[2], NULL, 10), arg_int(argv[3]), argv[4]);
  }
  if (argc == 9 && strcmp(argv[1], "idx") == 0) {
    int h = arg_int(argv[3]), w = arg_int(argv[4]), c = arg_int(argv[5]), n = arg_int(argv[6]),
        cl = arg_int(argv[7]);
    rng_state = (uint64_t)arg_int(argv[8]);
    // The test split: what tests/infer_nets.c compares inference on.
    if (write_split(argv[2], "train", h, w, c, n, cl) != 0 ||
        write_split(argv[2], "t10k", h, w, c, 32, cl) != 0) {
      perror(argv[2]);
      return 1;
    }
    return 0;
  }
  fprintf(stderr, "usage: gen_random_nets nets SEED COUNT DIR [--infer-ok]\n"
                  "       gen_random_nets idx DIR H W C N CLASSES SEED\n");
  return 2;
}
