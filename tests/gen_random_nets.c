// gen_random_nets.c: draws random small networks from the .cnn grammar for
// tests/random_nets.sh, which checks, builds, compiles, trains and compiles
// the inference code of each. Shapes are tracked while drawing, so most nets
// are valid; a few get one deliberate mistake, to check that rejections are
// located. Every layer kind is one row of KINDS: to add a kind, write its
// draw/apply/print functions and add the row.
//   gen_random_nets nets SEED COUNT DIR [--infer-ok]
//                                          writes DIR/net_NNN.cnn and prints one
//                                          line per net: FILE NAME C H W CLASSES BATCH
//                                          (--infer-ok: only layer orders today's
//                                          inference code folds)
//   gen_random_nets idx DIR H W N CLASSES SEED
//                                          writes DIR/{train,t10k}-{images,labels}
//                                          raw IDX files of N random images
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

// One drawn layer (or block call): its arguments and how they are written.
typedef struct Item {
  int kind;        // index into KINDS, or K_CALL
  int c, k, s, pad, bias;
  int has_s, has_pad, has_bias;
  int pct;         // dropout probability in percent
  int c_mode;      // C_LIT or an expression on ch
  int k_param;     // kernel written as `k`
  int block;       // K_CALL: which block
  int named;       // arguments written by name
} Item;

// Output side of a k x k window, or <= 0 if none fits (as compiler/net.c).
static int window_out(int in, int k, int s, int pad) {
  long span = (long)in + 2L * pad - k;
  return span < 0 ? 0 : (int)(span / s + 1);
}

// ------------------------------------------------------------ layer kinds
typedef struct Kind {
  const char *name;
  int weight;                                   // relative frequency in a body
  int in_block;                                 // may appear in a block body
  void (*draw)(Item *it, const Shape *s, int in_block); // arguments that fit s
  int (*apply)(const Item *it, const Env *e, Shape *s);  // 0 if it fits; updates s
  void (*print)(const Item *it);
} Kind;

// conv: channels 1..12, kernel up to 5 (never larger than the padded input),
// stride 1 or 2, padding below the kernel, bias either way.
static void draw_conv(Item *it, const Shape *s, int in_block) {
  int m = s->h < s->w ? s->h : s->w;
  it->c = rnd(1, 12);
  it->has_pad = chance(25);
  it->pad = it->has_pad ? rnd(0, 2) : 0;
  it->k = rnd(1, m + 2 * it->pad < 5 ? m + 2 * it->pad : 5);
  if (it->pad >= it->k)
    it->pad = it->k - 1;
  it->has_s = chance(20);
  it->s = it->has_s ? rnd(1, 2) : 1;
  it->has_bias = chance(50);
  it->bias = chance(50);
  if (in_block) {
    it->c_mode = rnd(C_LIT, C_CH1);
    it->k_param = chance(50);
  }
}

// conv's output shape, with the block's ch and k where it uses them.
static int apply_conv(const Item *it, const Env *e, Shape *s) {
  int c = it->c_mode == C_LIT ? it->c : it->c_mode == C_CH ? e->ch
        : it->c_mode == C_CH2 ? e->ch * 2 : e->ch + 1;
  int k = it->k_param ? e->k : it->k;
  if (it->pad >= k)
    return -1;
  int oh = window_out(s->h, k, it->s, it->pad), ow = window_out(s->w, k, it->s, it->pad);
  if (oh <= 0 || ow <= 0)
    return -1;
  *s = (Shape){c, oh, ow};
  return 0;
}

// conv(...) positionally or by name; optional arguments only when drawn.
static void print_conv(const Item *it) {
  char c[32], k[16];
  if (it->c_mode == C_LIT)
    snprintf(c, sizeof c, "%d", it->c);
  else
    snprintf(c, sizeof c, "%s", C_EXPR[it->c_mode]);
  if (it->k_param)
    snprintf(k, sizeof k, "k");
  else
    snprintf(k, sizeof k, "%d", it->k);
  if (it->named)
    emit("conv(out_channels = %s, kernel = %s", c, k);
  else
    emit("conv(%s, %s", c, k);
  if (it->has_s)
    emit(", stride = %d", it->s);
  if (it->has_pad)
    emit(", padding = %d", it->pad);
  if (it->has_bias)
    emit(", bias = %s", it->bias ? "true" : "false");
  emit(");");
}

// maxpool: kernel up to 3 and the input, stride up to the kernel (or default).
static void draw_pool(Item *it, const Shape *s, int in_block) {
  (void)in_block;
  int m = s->h < s->w ? s->h : s->w;
  it->k = rnd(1, m < 3 ? m : 3);
  it->has_s = chance(40);
  it->s = it->has_s ? rnd(1, it->k) : it->k;
}

// maxpool's output shape.
static int apply_pool(const Item *it, const Env *e, Shape *s) {
  (void)e;
  int oh = window_out(s->h, it->k, it->s, 0), ow = window_out(s->w, it->k, it->s, 0);
  if (oh <= 0 || ow <= 0)
    return -1;
  s->h = oh;
  s->w = ow;
  return 0;
}

// maxpool(k) or maxpool(k, stride = s) or by name.
static void print_pool(const Item *it) {
  if (it->named)
    emit("maxpool(kernel = %d", it->k);
  else
    emit("maxpool(%d", it->k);
  if (it->has_s)
    emit(it->named || chance(50) ? ", stride = %d" : ", %d", it->s);
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

// The layer kinds a body is drawn from. K_GAP and K_CONV are also used for the head.
enum { K_CONV, K_BN, K_DROPOUT, K_RELU, K_POOL, K_GAP, N_KINDS, K_CALL = 100 };
static const Kind KINDS[N_KINDS] = {
    [K_CONV] = {"conv", 30, 1, draw_conv, apply_conv, print_conv},
    [K_BN] = {"batchnorm", 12, 1, draw_none, apply_same, print_bn},
    [K_DROPOUT] = {"dropout", 8, 1, draw_dropout, apply_same, print_dropout},
    [K_RELU] = {"relu", 15, 1, draw_none, apply_same, print_relu},
    [K_POOL] = {"maxpool", 10, 1, draw_pool, apply_pool, print_pool},
    [K_GAP] = {"gap", 2, 0, draw_none, apply_gap, print_gap},
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

// With --infer-ok, only nets today's inference code takes: a conv first, and
// batchnorm only on a conv's output (compiler/infer_plan.c). Drawing them
// still finds the failures that the inference restrictions hide.
static int infer_ok;

// What inference has made of the layers so far: the last op and what it absorbed.
typedef struct IState {
  int op; // -1 (none or unknown), K_CONV, K_POOL, K_GAP
  int relu, bn;
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
  case K_CONV: case K_POOL: case K_GAP:
    *st = (IState){it->kind, 0, 0};
    return 0;
  case K_BN:
    if (st->op != K_CONV || st->relu || st->bn)
      return -1;
    st->bn = 1;
    return 0;
  case K_RELU:
    if (st->op < 0)
      return -1;
    st->relu = 1;
    return 0;
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
        continue;
      }
      it->kind = draw_kind(1);
      if (infer_ok) {
        // The body must fold on its own, whatever comes before a call.
        IState st = {-1, 0, 0};
        for (int j = 0; j < i; j++)
          infer_apply(&bl->body[j], &st);
        Item probe = {.kind = it->kind};
        if (infer_apply(&probe, &st) != 0)
          it->kind = K_DROPOUT;
      }
      KINDS[it->kind].draw(it, &big, 1);
      if (!bl->has_k)
        it->k_param = 0;
      if (it->k_param && it->pad > 0)
        it->pad = 0; // a parameter kernel may be 1
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
    it->c = rnd(1, 8);
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
  char name[32];
  if (chance(3))
    snprintf(name, sizeof name, "%s", RISKY_NAMES[rnd(0, 6)]);
  else
    snprintf(name, sizeof name, "r%c%d", 'a' + rnd(0, 25), index);
  in->h = rnd(1, 20);
  in->w = chance(75) ? in->h : rnd(1, 20);
  in->c = chance(90) ? 1 : rnd(2, 3);
  emit("// random net %d\nnetwork %s;\ninput %dx%dx%d;\n", index, name, in->h, in->w, in->c);
  draw_blocks();

  // The body: layers and block calls that fit the shape so far.
  Shape s = *in;
  IState st = {-1, 0, 0};
  int n = rnd(infer_ok, 8);
  for (int i = 0; i < n; i++) {
    Item it = {0};
    if (infer_ok && i == 0) {
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
    if (chance(10))
      emit("/* %dx%dx%d */ ", s.h, s.w, s.c);
    print_item(&it);
    emit(chance(10) ? "   // layer %d\n" : "\n", i);
  }
  // The head: down to 1x1 (gap, or a conv over the whole map), then maybe a
  // fully connected conv, to 2..12 classes.
  if (s.h != 1 || s.w != 1) {
    if (s.h == s.w && s.h <= 5 && chance(30)) {
      s.c = rnd(2, 12);
      emit("conv(%d, %d);\n", s.c, s.h);
    } else {
      emit("gap;\n");
    }
    s.h = s.w = 1;
  } else if (chance(20)) {
    emit("gap;\n"); // gap on a 1x1 map
  }
  if (s.c < 2 || s.c > 12 || chance(40)) {
    if (chance(30))
      emit(infer_ok ? "relu;\n" : "batchnorm;\nrelu;\n");
    s.c = rnd(2, 12);
    emit("conv(%d, 1);\n", s.c);
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

// Mistakes: each replaces the body's first layer line with one the checker
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
    printf("%s %s %d %d %d %d %d\n", path, name, in.c, in.h, in.w, classes, batch);
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

// Writes one split of n random h x w images and labels < classes.
static int write_split(const char *dir, const char *split, int h, int w, int n, int classes) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, split);
  FILE *f = fopen(p, "wb");
  unsigned char hd[16];
  be32(hd, 0x803);
  be32(hd + 4, (uint32_t)n);
  be32(hd + 8, (uint32_t)h);
  be32(hd + 12, (uint32_t)w);
  if (!f || fwrite(hd, 1, 16, f) != 16)
    return -1;
  for (long i = 0; i < (long)n * h * w; i++)
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
  if (argc == 8 && strcmp(argv[1], "idx") == 0) {
    int h = arg_int(argv[3]), w = arg_int(argv[4]), n = arg_int(argv[5]), cl = arg_int(argv[6]);
    rng_state = (uint64_t)arg_int(argv[7]);
    if (write_split(argv[2], "train", h, w, n, cl) != 0 ||
        write_split(argv[2], "t10k", h, w, n < 16 ? n : 16, cl) != 0) {
      perror(argv[2]);
      return 1;
    }
    return 0;
  }
  fprintf(stderr, "usage: gen_random_nets nets SEED COUNT DIR [--infer-ok]\n"
                  "       gen_random_nets idx DIR H W N CLASSES SEED\n");
  return 2;
}
