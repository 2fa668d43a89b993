// test_check.c: block expansion, shapes, costs, receptive fields and the
// train section, on the three models and on small bad programs.
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static char *errbuf;
static size_t errlen;

// Checks src; diagnostics land in errbuf. Returns the error count.
static int load(const char *src, Net *net) {
  free(errbuf);
  errbuf = NULL;
  FILE *f = open_memstream(&errbuf, &errlen);
  int n = cnnc_load_string_diag("c.cnn", src, strlen(src), net, f);
  fclose(f);
  return n;
}

// Expects src to fail with msg somewhere in its diagnostics.
static void expect_error(const char *src, const char *msg) {
  Net net;
  int n = load(src, &net);
  CU_ASSERT_TRUE(n > 0);
  CU_ASSERT_PTR_NULL(net.layers);
  if (!strstr(errbuf, msg)) {
    fprintf(stderr, "\nwanted: %s\ngot:    %s\n", msg, errbuf);
    CU_FAIL("message not found");
  }
}

static void test_mnist14k(void) {
  Net net;
  CU_ASSERT_EQUAL_FATAL(cnnc_load_file("models/mnist14k.cnn", &net), 0);
  CU_ASSERT_STRING_EQUAL(net.name, "mnist14k");
  CU_ASSERT_EQUAL(net.n_params, 14112);
  CU_ASSERT_EQUAL(net.n_state, 224);
  CU_ASSERT_EQUAL(net.macs, 3116272);
  CU_ASSERT_EQUAL(net.classes, 10);
  CU_ASSERT_EQUAL(net.max_act, 26 * 26 * 16);
  int rf[16], n_rf = 0;
  long conv_params = 0;
  for (int i = 0; i < net.n_layers; i++) {
    const Layer *l = &net.layers[i];
    if ((l->kind == L_CONV || l->kind == L_MAXPOOL) && n_rf < 16)
      rf[n_rf++] = l->rf;
    if (l->kind == L_CONV) {
      conv_params += l->n_params;
      CU_ASSERT_FALSE(l->bias);
    }
  }
  int want[] = {3, 5, 7, 8, 8, 12, 16, 16};
  CU_ASSERT_EQUAL_FATAL(n_rf, 8);
  for (int i = 0; i < 8; i++)
    CU_ASSERT_EQUAL(rf[i], want[i]);
  CU_ASSERT_EQUAL(conv_params, 13888);
  // 6 cbr blocks of 4 layers, maxpool, conv, gap, log_softmax.
  CU_ASSERT_EQUAL_FATAL(net.n_layers, 28);
  const Layer *l0 = &net.layers[0];
  CU_ASSERT_STRING_EQUAL(l0->block, "cbr");
  CU_ASSERT_EQUAL(l0->out.h, 26);
  CU_ASSERT_EQUAL(l0->out.c, 16);
  CU_ASSERT_EQUAL(net.layers[2].kind, L_DROPOUT);
  CU_ASSERT_DOUBLE_EQUAL(net.layers[2].p, 0.03, 1e-12);
  // The layer's span is the call inside the block: "conv(channels, ...)".
  CU_ASSERT_STRING_EQUAL(l0->span.file, "models/mnist14k.cnn");
  CU_ASSERT_EQUAL(l0->span.col, 5);
  CU_ASSERT_EQUAL(net.layers[13].kind, L_CONV);
  CU_ASSERT_EQUAL(net.layers[13].kh, 1);
  CU_ASSERT_EQUAL(net.layers[26].out.h, 1);
  CU_ASSERT_TRUE(net.has_train);
  CU_ASSERT_EQUAL(net.train.epochs, 20);
  CU_ASSERT_EQUAL(net.train.batch, 64);
  CU_ASSERT_EQUAL(net.train.seed, 1);
  CU_ASSERT_DOUBLE_EQUAL(net.train.lr, 0.01, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(net.train.momentum, 0.9, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(net.train.mean, 0.1307, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(net.train.std, 0.3081, 1e-15);
  CU_ASSERT_EQUAL(net.train.sched, SCHED_ONECYCLE);
  CU_ASSERT_DOUBLE_EQUAL(net.train.max_lr, 0.1, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(net.train.pct_start, 0.2, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(net.train.div_factor, 25, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(net.train.rotate, 7, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(net.train.shift, 0, 1e-15);
  CU_ASSERT_NOT_EQUAL(net.shape_hash, 0);
  net_free(&net);
}

static void test_mnist8ch_models(void) {
  Net a, b;
  CU_ASSERT_EQUAL_FATAL(cnnc_load_file("models/mnist8ch.cnn", &a), 0);
  CU_ASSERT_EQUAL_FATAL(cnnc_load_file("models/mnist8ch_gap_fc.cnn", &b), 0);
  CU_ASSERT_EQUAL(a.n_params, 72 + 576 + 1152 + 128 + 576 + 1152 + 160);
  CU_ASSERT_EQUAL(b.n_params, 3816);
  CU_ASSERT_EQUAL(a.n_state, 0);
  CU_ASSERT_EQUAL(a.classes, 10);
  CU_ASSERT_EQUAL(b.classes, 10);
  // 1x1 -> GAP: the 1x1 conv runs on 7x7; GAP -> 1x1: on one pixel.
  CU_ASSERT_EQUAL(a.macs - b.macs, 49 * 160 - 160);
  const Layer *fc = &b.layers[b.n_layers - 2];
  CU_ASSERT_EQUAL(fc->kind, L_CONV);
  CU_ASSERT_EQUAL(fc->in.h, 1);
  CU_ASSERT_EQUAL(fc->in.c, 16);
  CU_ASSERT_EQUAL(fc->out.c, 10);
  CU_ASSERT_NOT_EQUAL(a.shape_hash, b.shape_hash);
  net_free(&a);
  net_free(&b);
}

// Trainable parameters and MACs of a conv with bias, counted by hand.
static long conv_p(long k_h, long k_w, long cin, long cout) {
  return k_h * k_w * cin * cout + cout;
}
static long conv_m(long oh, long ow, long k_h, long k_w, long cin, long cout) {
  return oh * ow * k_h * k_w * cin * cout;
}

// ResNet-8 of MLPerf Tiny, counted from its Keras definition: convs with
// bias, BN (2 trainable + 2 running per channel), a dense 64 -> 10.
static void test_resnet8(void) {
  Net net;
  CU_ASSERT_EQUAL_FATAL(cnnc_load_file("models/resnet8.cnn", &net), 0);
  long p = conv_p(3, 3, 3, 16) + 2 * conv_p(3, 3, 16, 16)                        // stem, stack 1
           + conv_p(3, 3, 16, 32) + conv_p(3, 3, 32, 32) + conv_p(1, 1, 16, 32)   // stack 2
           + conv_p(3, 3, 32, 64) + conv_p(3, 3, 64, 64) + conv_p(1, 1, 32, 64)   // stack 3
           + 64 * 10 + 10;
  long bn = 16 * 3 + 32 * 2 + 64 * 2; // BN channels
  long m = conv_m(32, 32, 3, 3, 3, 16) + 2 * conv_m(32, 32, 3, 3, 16, 16) +
           conv_m(16, 16, 3, 3, 16, 32) + conv_m(16, 16, 3, 3, 32, 32) + conv_m(16, 16, 1, 1, 16, 32) +
           conv_m(8, 8, 3, 3, 32, 64) + conv_m(8, 8, 3, 3, 64, 64) + conv_m(8, 8, 1, 1, 32, 64) + 64 * 10;
  CU_ASSERT_EQUAL(p + 2 * bn, 78186);
  CU_ASSERT_EQUAL(net.n_params, p + 2 * bn);
  CU_ASSERT_EQUAL(net.n_state, 2 * bn);
  CU_ASSERT_EQUAL(net.n_state, 480);
  CU_ASSERT_EQUAL(net.macs, m);
  CU_ASSERT_EQUAL(net.classes, 10);
  // A stride-2 'same' 3x3 conv on 32x32 pads only the bottom and right.
  const Layer *l = &net.layers[10];
  CU_ASSERT_EQUAL(l->kind, L_CONV);
  CU_ASSERT_EQUAL(l->out.h, 16);
  CU_ASSERT(l->pt == 0 && l->pb == 1 && l->pl == 0 && l->pr == 1);
  // Its projection shortcut reads the stack's input, and the add joins both.
  const Layer *sc = &net.layers[15], *add = &net.layers[16];
  CU_ASSERT(sc->kind == L_CONV && sc->kh == 1 && sc->src == 10 && sc->in.h == 32);
  CU_ASSERT(add->kind == L_ADD && add->src == 15 && add->src2 == 16);
  net_free(&net);
}

// DS-CNN of MLPerf Tiny: a 10x4 stride-2 'same' conv, four depthwise-
// separable blocks, a 24x5 average pool, dense 64 -> 12.
static void test_dscnn(void) {
  Net net;
  CU_ASSERT_EQUAL_FATAL(cnnc_load_file("models/dscnn.cnn", &net), 0);
  long dw = 3 * 3 * 64 + 64, pw = conv_p(1, 1, 64, 64);
  long p = conv_p(10, 4, 1, 64) + 4 * (dw + pw) + 64 * 12 + 12;
  long bn = 9 * 64;
  long m = conv_m(25, 5, 10, 4, 1, 64) + 4 * (25 * 5 * 64 * 9 + conv_m(25, 5, 1, 1, 64, 64)) + 64 * 12;
  CU_ASSERT_EQUAL(p + 2 * bn, 23756);
  CU_ASSERT_EQUAL(net.n_params, p + 2 * bn);
  CU_ASSERT_EQUAL(net.n_state, 1152);
  CU_ASSERT_EQUAL(net.macs, m);
  CU_ASSERT_EQUAL(net.classes, 12);
  const Layer *l = &net.layers[0];
  CU_ASSERT(l->out.h == 25 && l->out.w == 5);
  CU_ASSERT(l->pt == 4 && l->pb == 5 && l->pl == 1 && l->pr == 1);
  CU_ASSERT(net.layers[4].groups == 64 && net.layers[4].n_params == dw);
  net_free(&net);
}

static void test_args_and_defaults(void) {
  Net net;
  int n = load("network t; input 9x9x2;\n"
               "block b(c, k = c - 1, s = 1) { conv(out_channels = c, kernel = k, stride = s, padding = 1); }\n"
               "b(4); b(c = 6, s = 2); maxpool(2, stride = 1); conv(3, 1, bias = true); gap; log_softmax;\n"
               "train { schedule = step(step_size = 6, gamma = 0.5); optimizer = sgd(0.1, 0.8, true);"
               " augment(rotate = 7, shift = 2); seed = 42; label_smoothing = 5%; }",
               &net);
  CU_ASSERT_EQUAL_FATAL(n, 0);
  const Layer *l = net.layers;
  CU_ASSERT_EQUAL(l[0].kh, 3);          // k = c - 1 = 3
  CU_ASSERT_EQUAL(l[0].pt, 1);
  CU_ASSERT_EQUAL(l[0].out.h, 9);
  CU_ASSERT_EQUAL(l[1].kh, 5);
  CU_ASSERT_EQUAL(l[1].sh, 2);
  CU_ASSERT_EQUAL(l[1].out.h, 4);      // (9 + 2 - 5) / 2 + 1
  CU_ASSERT_EQUAL(l[1].n_params, 4 * 6 * 25 + 6);
  CU_ASSERT_EQUAL(l[2].out.h, 3);
  CU_ASSERT_EQUAL(l[3].n_params, 6 * 3 + 3);
  CU_ASSERT_EQUAL(net.train.sched, SCHED_STEP);
  CU_ASSERT_EQUAL(net.train.step_size, 6);
  CU_ASSERT_DOUBLE_EQUAL(net.train.gamma, 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(net.train.lr, 0.1, 0);
  CU_ASSERT_TRUE(net.train.nesterov);
  CU_ASSERT_DOUBLE_EQUAL(net.train.rotate, 7, 0);
  CU_ASSERT_EQUAL(net.train.seed, 42);
  CU_ASSERT_EQUAL(net.train.epochs, 20); // the default
  CU_ASSERT_DOUBLE_EQUAL(net.train.label_smoothing, 0.05, 1e-15);
  net_free(&net);
}

static void test_shape_errors(void) {
  expect_error("network t; input 5x5x1;\nconv(4);\nconv(4, 5);\ngap;",
               "c.cnn:3:1: error: conv kernel 5x5 is larger than its 3x3x4 input");
  expect_error("network t; input 5x5x1;\nblock b(k) {\n  conv(4, k);\n}\nb(7); gap;",
               "c.cnn:3:3: error: conv kernel 7x7 is larger than its 5x5x1 input\n");
  expect_error("network t; input 5x5x1;\nblock b(k) {\n  conv(4, k);\n}\nb(7); gap;",
               "c.cnn:5:1: note: in block 'b' called here");
  expect_error("network t; input 5x5x1; conv(4); log_softmax;", "log_softmax needs one value per class");
  expect_error("network t; input 5x5x1; conv(4);", "the network must end in one value per class");
  expect_error("network t; input 5x5x1; gap; log_softmax; relu;", "log_softmax must be the last layer");
  expect_error("network t; input 0x5x1; gap;", "input dimensions must be positive");
}

static void test_argument_errors(void) {
  expect_error("network t; input 5x5x1; conv(0); gap;", "c.cnn:1:30: error: conv out_channels must be positive, not 0");
  expect_error("network t; input 5x5x1; conv(2, -1); gap;", "conv kernel must be positive, not -1");
  expect_error("network t; input 5x5x1; conv(2, padding = -1); gap;", "conv padding must be zero or more, not -1");
  expect_error("network t; input 5x5x1; conv(2, k = 1, kernel = 1); gap;", "duplicate argument 'kernel' to conv");
  expect_error("network t; input 5x5x1; conv(2, bias = 1); gap;", "conv 'bias' must be true or false");
  expect_error("network t; input 5x5x1; conv(true); gap;", "conv 'out_channels' must be a number, not true");
  expect_error("network t; input 5x5x1; dropout(1); gap;", "dropout probability 1 is outside [0, 1)");
  expect_error("network t; input 5x5x1; relu(1); gap;", "relu takes no arguments");
  expect_error("network t; input 5x5x1; conv(kernel = 1); gap;", "conv needs argument 'out_channels'");
  expect_error("network t; input 5x5x1; pool(2); gap;", "unknown layer or block 'pool'");
  expect_error("network t; input 5x5x1; conv(x); gap;", "undefined name 'x'");
  expect_error("network t; input 5x5x1; conv(4 / (2 - 2)); gap;", "division by zero");
  expect_error("network t; input 5x5x1; conv(3000000); gap;", "conv out_channels 3000000 is too large");
}

static void test_block_errors(void) {
  expect_error("network t; input 5x5x1; block a { a; } a; gap;", "block 'a' calls itself (a -> a)");
  expect_error("network t; input 5x5x1; block a { b; } block b { a; } a; gap;",
               "block 'a' calls itself (a -> b -> a)");
  expect_error("network t; input 5x5x1; block a(x) { relu; } a; gap;", "block 'a' needs argument 'x'");
  expect_error("network t; input 5x5x1; block a(x) { relu; } a(1, 2); gap;", "too many arguments to block 'a'");
  expect_error("network t; input 5x5x1; block a(x) { relu; } a(y = 1); gap;", "block 'a' has no parameter 'y'");
  expect_error("network t; input 5x5x1; block a { relu; } block a { gap; } a;", "block 'a' is already defined");
  expect_error("network t; input 5x5x1; block relu { gap; } gap;", "block 'relu' has the name of a built-in layer");
  expect_error("network t; input 5x5x1; block a(x, x) { relu; } gap;", "duplicate parameter 'x' in block 'a'");
  // A chain of 200 blocks is deeper than the expansion limit.
  size_t cap = 200 * 40 + 100;
  char *s = malloc(cap);
  size_t o = (size_t)snprintf(s, cap, "network t; input 5x5x1; b0; gap;\n");
  for (int i = 0; i < 200; i++)
    o += (size_t)snprintf(s + o, cap - o, "block b%d { b%d; }\n", i, i + 1);
  snprintf(s + o, cap - o, "block b200 { relu; }\n");
  expect_error(s, "blocks are nested too deeply (more than 100 levels)");
  free(s);
  // Doubling blocks would expand to 2^40 layers; the layer cap stops it.
  s = malloc(cap);
  o = (size_t)snprintf(s, cap, "network t; input 5x5x1; d40; gap;\nblock d0 { relu; }\n");
  for (int i = 1; i <= 40; i++)
    o += (size_t)snprintf(s + o, cap - o, "block d%d { d%d; d%d; }\n", i, i - 1, i - 1);
  expect_error(s, "the network has more than 1000 layers");
  free(s);
}

static void test_missing_and_train_errors(void) {
  expect_error("input 5x5x1; gap;", "c.cnn: error: missing 'network NAME;' declaration");
  expect_error("network t; gap;", "c.cnn: error: missing 'input HxWxC;' declaration");
  expect_error("network t; input 5x5x1;", "network 't' has no layers");
  expect_error("network t; input 5x5x1; gap; train { epochs = 0; }", "epochs must be greater than 0, not 0");
  expect_error("network t; input 5x5x1; gap; train { batch = -4; }", "batch must be greater than 0, not -4");
  expect_error("network t; input 5x5x1; gap; train { epochs = 2.5; }", "train setting 'epochs' must be a whole number, not 2.5");
  expect_error("network t; input 5x5x1; gap; train { epochs = 2; epochs = 3; }", "duplicate train setting 'epochs'");
  expect_error("network t; input 5x5x1; gap; train { optimizer = sgd(lr = 0); }", "lr must be greater than 0, not 0");
  expect_error("network t; input 5x5x1; gap; train { optimizer = adam(lr = 1); }", "unknown optimizer 'adam'");
  expect_error("network t; input 5x5x1; gap; train { optimizer = sgd(lr = 1, momentum = 1); }",
               "momentum must be in [0, 1), not 1");
  expect_error("network t; input 5x5x1; gap; train { label_smoothing = -0.1; }",
               "label_smoothing must be in [0, 1), not -0.1");
  expect_error("network t; input 5x5x1; gap; train { schedule = cosine; }", "unknown schedule 'cosine'");
  expect_error("network t; input 5x5x1; gap; train { normalize(mean = 0.1); }", "normalize needs argument 'std'");
  expect_error("network t; input 5x5x1; gap; train { normalize(mean = 0.1, std = 0); }", "std must be greater than 0");
  expect_error("network t; input 5x5x1; gap; train { lr = 0.1; }", "unknown train setting 'lr'");
  expect_error("network t; input 5x5x1; gap; train { optimizer = sgd(lr = 1, nesterov = true); }",
               "nesterov needs a momentum and zero dampening");
}

static int cleanup(void) {
  free(errbuf);
  errbuf = NULL;
  return 0;
}

void register_tests(void) {
  CU_pSuite s = CU_add_suite("check", NULL, cleanup);
  CU_add_test(s, "mnist14k: params, state, MACs, RF, train", test_mnist14k);
  CU_add_test(s, "mnist8ch and its GAP->1x1 variant", test_mnist8ch_models);
  CU_add_test(s, "resnet8: params, state, MACs by hand, same padding, residuals", test_resnet8);
  CU_add_test(s, "dscnn: params, state, MACs by hand, 10x4 same, depthwise", test_dscnn);
  CU_add_test(s, "arguments, defaults, expressions", test_args_and_defaults);
  CU_add_test(s, "shape errors at the failing layer", test_shape_errors);
  CU_add_test(s, "argument errors", test_argument_errors);
  CU_add_test(s, "block errors, depth and size limits", test_block_errors);
  CU_add_test(s, "missing declarations, train errors", test_missing_and_train_errors);
}
