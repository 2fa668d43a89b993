// main.c: the cnnc command line — check, summary, build and export.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "net_ckpt.h"
#include "emit.h"
#include "report.h"

#define CNNC_VERSION "0.1.0"

// The help text; also printed (to stderr) after a usage error.
static void usage(FILE *f) {
  fputs("usage: cnnc check FILE\n"
        "       cnnc summary FILE [--format text|markdown] [--weights CKPT]\n"
        "       cnnc build FILE -o DIR [--batch N]\n"
        "       cnnc build FILE -o DIR --infer --weights CKPT [--int8 --calib DIR [--calib-n N]]\n"
        "       cnnc export FILE --pytorch -o DIR [--weights CKPT]\n"
        "       cnnc --help | --version\n"
        "\n"
        "  check     parse FILE and check its shapes; report errors\n"
        "  summary   print the layer table: shapes, receptive field, params, MACs,\n"
        "            firmware flash and RAM (float and int8); --weights checks\n"
        "            that CKPT belongs to FILE and names it\n"
        "  build     write training C code (NAME_train.{c,h}) into DIR, or with\n"
        "            --infer inference C code with the weights of CKPT baked in\n"
        "  export    write DIR/NAME.py, the network as a PyTorch module that reads\n"
        "            and writes cnnc checkpoints; --weights also writes CKPT as\n"
        "            DIR/NAME.ckpt in checkpoint format v3\n",
        f);
}

// Reports a usage error; exit status 2.
static int usage_error(const char *fmt, const char *arg) {
  fputs("cnnc: error: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\n", stderr);
  usage(stderr);
  return 2;
}

// `cnnc summary`, after loading and matching the checkpoint at weights (or
// NULL): the memory figures do not need it, but a checkpoint of another net
// must not be reported as this one's. 0, or 1 after an error message.
static int summary(const Net *net, bool markdown, const char *weights) {
  if (!weights) {
    report_summary(net, stdout, markdown);
    return 0;
  }
  cnn_ckpt c;
  char err[512];
  if (net_ckpt_load(net, weights, &c, err, sizeof err) < 0) {
    fprintf(stderr, "cnnc: error: %s\n", err);
    cnn_ckpt_free(&c);
    return 1;
  }
  ReportWeights w = {.path = weights, .epoch = c.epoch, .step = (unsigned long long)c.step};
  report_summary_weights(net, stdout, markdown, &w);
  cnn_ckpt_free(&c);
  return 0;
}

// Parses a positive int option value; -1 if it is not one.
static int parse_count(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return *s && !*end && v > 0 && v <= 1000000 ? (int)v : -1;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage_error("%s", "no command given");
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    printf("cnnc " CNNC_VERSION "\n");
    return 0;
  }
  bool is_check = !strcmp(cmd, "check"), is_summary = !strcmp(cmd, "summary"),
       is_build = !strcmp(cmd, "build"), is_export = !strcmp(cmd, "export");
  if (!is_check && !is_summary && !is_build && !is_export)
    return usage_error(cmd[0] == '-' ? "unknown option '%s'" : "unknown command '%s'", cmd);

  const char *file = NULL, *outdir = NULL, *format = "text";
  EmitOptions opt = {0};
  bool infer = false, pytorch = false;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    // Options that take a value, and the commands they belong to.
    bool takes = !strcmp(a, "--format") || !strcmp(a, "-o") || !strcmp(a, "--batch") ||
                 !strcmp(a, "--weights") || !strcmp(a, "--calib") || !strcmp(a, "--calib-n");
    if (takes && i + 1 >= argc)
      return usage_error("option '%s' needs a value", a);
    if (!strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (is_summary && !strcmp(a, "--format")) {
      format = argv[++i];
      if (strcmp(format, "text") && strcmp(format, "markdown"))
        return usage_error("unknown format '%s' (text or markdown)", format);
    } else if ((is_build || is_export) && !strcmp(a, "-o")) {
      outdir = argv[++i];
    } else if (is_build && !strcmp(a, "--batch")) {
      if ((opt.batch = parse_count(argv[++i])) < 0)
        return usage_error("--batch takes a whole number from 1 to 1000000, not '%s'", argv[i]);
    } else if (is_build && !strcmp(a, "--infer")) {
      infer = true;
    } else if (is_export && !strcmp(a, "--pytorch")) {
      pytorch = true;
    } else if ((is_build || is_summary || is_export) && !strcmp(a, "--weights")) {
      opt.weights = argv[++i];
    } else if (is_build && !strcmp(a, "--int8")) {
      opt.int8 = true;
    } else if (is_build && !strcmp(a, "--calib")) {
      opt.calib_dir = argv[++i];
    } else if (is_build && !strcmp(a, "--calib-n")) {
      if ((opt.calib_n = parse_count(argv[++i])) < 0)
        return usage_error("--calib-n takes a whole number from 1 to 1000000, not '%s'", argv[i]);
    } else if (a[0] == '-' && a[1] != '\0') {
      return usage_error("unknown option '%s'", a);
    } else if (file) {
      return usage_error("unexpected argument '%s' (one FILE only)", a);
    } else {
      file = a;
    }
  }
  if (!file)
    return usage_error("%s", "no input FILE given");
  if (is_build) {
    if (!outdir)
      return usage_error("%s", "build needs -o DIR");
    if (!infer && (opt.weights || opt.int8 || opt.calib_dir || opt.calib_n))
      return usage_error("%s", "--weights, --int8 and --calib go with --infer");
    if (infer && !opt.weights)
      return usage_error("%s", "--infer needs --weights CKPT");
    if (opt.int8 && !opt.calib_dir)
      return usage_error("%s", "--int8 needs --calib DIR");
    if (!opt.int8 && (opt.calib_dir || opt.calib_n))
      return usage_error("%s", "--calib goes with --int8");
  }

  if (is_export && !outdir)
    return usage_error("%s", "export needs -o DIR");
  if (is_export && !pytorch)
    return usage_error("%s", "export needs a format: --pytorch");

  Net net;
  int errors = cnnc_load_file(file, &net);
  if (errors)
    return 1;
  int rc = 0;
  if (is_summary)
    rc = summary(&net, !strcmp(format, "markdown"), opt.weights);
  else if (is_build)
    rc = infer ? emit_infer(&net, outdir, &opt) : emit_train(&net, outdir, &opt);
  else if (is_export)
    rc = export_torch(&net, file, outdir, opt.weights);
  net_free(&net);
  if (fflush(stdout) != 0) {
    perror("cnnc: error: writing output");
    return 1;
  }
  return rc ? 1 : 0;
}
