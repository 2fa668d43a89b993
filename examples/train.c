// train.c: a trainer for any network cnnc generates. Built against one
// generated header (NET_HEADER, descriptor NET); everything it knows of the
// network comes through the cnn_net descriptor and its train config.
//
//   build/mnist14k-train [--data DIR] [--epochs N] [--seed S] [--threads T]
//                        [--save FILE] [--resume FILE] [--eval FILE]
//                        [--log-csv FILE] [--limit-batches N] [--valid N]
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "checkpoint.h"
#include "datadir.h"
#include "dataset.h"
#include "idx.h"
#include "progress.h"
#include "schedule.h"
#include "sgd.h"

#include NET_HEADER

_Static_assert(sizeof(cnn_real) == sizeof(float), "the trainer drives a float network");

typedef struct Options {
  const char *data, *save, *resume, *eval, *log_csv;
  int epochs, threads;
  int valid;                   // > 0: hold out the last `valid` training images, evaluate on them
  long limit_batches;
  uint64_t seed;
  int have_seed;
  const char *train_opt;       // the first option given that only training uses
} Options;

// Option limits, stated in the usage and in every range error.
#define MAX_EPOCHS 1000000
#define MAX_THREADS 1024
#define MAX_LIMIT_BATCHES INT_MAX

// One epoch's figures, for the log lines and the CSV.
typedef struct EpochStats {
  double train_loss, test_loss, seconds;
  long train_correct, train_total, test_correct, test_total;
  double lr;
} EpochStats;

static const char *prog = "train";

// Prints the usage to out.
static void usage(FILE *out) {
  fprintf(out,
          "usage: %s [options]\n"
          "Trains the network %s with the settings of its train section.\n"
          "  --data DIR         MNIST-format directory (default: $MNIST_DIR,\n"
          "                     ../shared/data/mnist, data/mnist)\n"
          "  --epochs N         epochs to train, 1 to %d (default %d)\n"
          "  --seed S           random seed, 0 to %lld (default %llu)\n"
          "  --threads T        threads, 1 to %d (default: all cores)\n"
          "  --save FILE        write a checkpoint after every epoch\n"
          "  --resume FILE      continue from a checkpoint\n"
          "  --eval FILE        only evaluate a checkpoint on the test set (takes\n"
          "                     --data and --threads, no training option)\n"
          "  --log-csv FILE     write per-epoch loss and accuracy\n"
          "  --limit-batches N  train at most N batches per epoch, 1 to %d (smoke tests)\n"
          "  --valid N          train on all but the last N training images and evaluate\n"
          "                     on those N instead of the test set, which is not read\n"
          "The data must fit the network (%dx%dx%d images, labels below %d); a checkpoint\n"
          "must be of this network, trained with its normalize(mean, std).\n",
          prog, NET.name, MAX_EPOCHS, NET.train->epochs, LLONG_MAX,
          (unsigned long long)NET.train->seed, MAX_THREADS, MAX_LIMIT_BATCHES, NET.in_h, NET.in_w,
          NET.in_c, NET.classes);
}

// Exits with a message naming the program.
static void die(const char *msg) {
  fprintf(stderr, "%s: error: %s\n", prog, msg);
  exit(1);
}

// Parses a whole decimal number in [lo, hi] for option opt, or exits.
static long long parse_num(const char *opt, const char *s, long long lo, long long hi) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno || v < lo || v > hi) {
    fprintf(stderr, "%s: error: %s takes a whole number from %lld to %lld, not '%s'\n", prog, opt,
            lo, hi, s);
    exit(2);
  }
  return v;
}

// Reads the command line into o, or exits with the usage.
static void parse_args(int argc, char **argv, Options *o) {
  *o = (Options){.epochs = NET.train->epochs, .seed = NET.train->seed};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      exit(0);
    }
    if (i + 1 >= argc || strncmp(a, "--", 2)) {
      fprintf(stderr, "%s: error: %s '%s'\n", prog,
              strncmp(a, "--", 2) ? "unexpected argument" : "missing value for", a);
      usage(stderr);
      exit(2);
    }
    const char *v = argv[++i];
    int training = 1;
    if (!strcmp(a, "--data")) o->data = v, training = 0;
    else if (!strcmp(a, "--save")) o->save = v;
    else if (!strcmp(a, "--resume")) o->resume = v;
    else if (!strcmp(a, "--eval")) o->eval = v, training = 0;
    else if (!strcmp(a, "--log-csv")) o->log_csv = v;
    else if (!strcmp(a, "--epochs")) o->epochs = (int)parse_num(a, v, 1, MAX_EPOCHS);
    else if (!strcmp(a, "--threads")) o->threads = (int)parse_num(a, v, 1, MAX_THREADS), training = 0;
    else if (!strcmp(a, "--limit-batches")) o->limit_batches = (long)parse_num(a, v, 1, MAX_LIMIT_BATCHES);
    else if (!strcmp(a, "--valid")) o->valid = (int)parse_num(a, v, 1, INT_MAX);
    else if (!strcmp(a, "--seed")) o->seed = (uint64_t)parse_num(a, v, 0, LLONG_MAX), o->have_seed = 1;
    else {
      fprintf(stderr, "%s: error: unknown option '%s'\n", prog, a);
      usage(stderr);
      exit(2);
    }
    if (training && !o->train_opt)
      o->train_opt = a;
  }
  // --eval trains nothing: an option that only training reads would be ignored.
  if (o->eval && o->train_opt) {
    fprintf(stderr,
            "%s: error: --eval and %s do not go together: --eval only evaluates the checkpoint "
            "it names (it takes --data and --threads)%s\n",
            prog, o->train_opt,
            !strcmp(o->train_opt, "--resume") ? "; --resume continues training from one" : "");
    exit(2);
  }
}

// Monotonic seconds.
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Counts the images of the last forward whose most likely class is the label.
static long count_correct(const uint8_t *y, int k) {
  long correct = 0;
  for (int i = 0; i < k; i++) {
    const cnn_real *lp = NET.logprobs + (size_t)i * NET.classes;
    int best = 0;
    for (int c = 1; c < NET.classes; c++)
      if (lp[c] > lp[best])
        best = c;
    correct += best == y[i];
  }
  return correct;
}

// Mean NLL and correct count over a split, in eval mode.
static void evaluate(cnn_dataset *d, float *x, uint8_t *y, double *loss, long *correct) {
  cnn_dataset_sequential(d);
  double sum = 0;
  long ok = 0;
  int nb = cnn_dataset_batches(d, NET.batch);
  for (int b = 0; b < nb; b++) {
    int k = cnn_dataset_batch(d, b, NET.batch, x, y, NULL);
    sum += NET.forward(x, y, k, 0, NULL) * k;
    ok += count_correct(y, k);
  }
  *loss = sum / d->n;
  *correct = ok;
}

// Loads a checkpoint of this network into the descriptor's params and state
// and returns it (for the optimizer and rng); exits on any mismatch.
static cnn_ckpt load_checkpoint(const char *path) {
  char err[512];
  cnn_ckpt c;
  if (cnn_ckpt_load(path, &c, err, sizeof err) ||
      cnn_ckpt_check(&c, path, NET.name, NET.shape_hash, NET.n_params, NET.n_state,
                     NET.train->mean, NET.train->std, NET.tensors, NET.n_tensors, err,
                     sizeof err))
    die(err);
  memcpy(NET.params, c.params, NET.n_params * sizeof(float));
  memcpy(NET.state, c.state, NET.n_state * sizeof(float));
  return c;
}

// Writes the checkpoint of the state after `epoch` epochs.
static void save_checkpoint(const char *path, int epoch, uint64_t step, const cnn_sgd *opt,
                            const cnn_rng *rng) {
  char err[512];
  cnn_ckpt c = {.shape_hash = NET.shape_hash, .n_params = NET.n_params,
                .n_state = NET.n_state, .epoch = (uint32_t)epoch, .step = step,
                .sgd_steps = opt->steps, .rng = *rng, .params = NET.params,
                .state = NET.state, .momentum = opt->has_buf ? opt->buf : NULL,
                .has_norm = 1, .mean = NET.train->mean, .std = NET.train->std,
                .tensors = NET.tensors, .n_tensors = NET.n_tensors};
  snprintf(c.name, sizeof c.name, "%s", NET.name);
  if (cnn_ckpt_save(path, &c, err, sizeof err))
    die(err);
}

// Rewrites the CSV of all epochs so far through a temporary file, which a
// failure removes again.
static void write_csv(const char *path, const EpochStats *s, int first, int last) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    fprintf(stderr, "%s: error: %s: cannot create %s: %s\n", prog, path, tmp, strerror(errno));
    exit(1);
  }
  fprintf(f, "epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds\n");
  for (int e = first; e <= last; e++)
    fprintf(f, "%d,%.6g,%.6f,%.4f,%.6f,%.4f,%.3f\n", e, s[e].lr, s[e].train_loss,
            100.0 * s[e].train_correct / s[e].train_total, s[e].test_loss,
            100.0 * s[e].test_correct / s[e].test_total, s[e].seconds);
  int failed = ferror(f);
  const char *what = "write";
  if (fclose(f) != 0 || failed || (what = "rename", rename(tmp, path) != 0)) {
    int saved = errno;
    unlink(tmp);
    fprintf(stderr, "%s: error: %s: %s of %s failed: %s\n", prog, path, what, tmp,
            strerror(saved));
    exit(1);
  }
}

// Before any training: an output that cannot be written must fail now, not
// after the first epoch. Creates (and removes) the temporary file that the
// writer will use; a directory in the file's place is refused.
static void check_writable(const char *opt, const char *path, const char *tmp_suffix) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    fprintf(stderr, "%s: error: %s %s: is a directory, expected a file name\n", prog, opt, path);
    exit(1);
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s%s", path, tmp_suffix);
  int fd = open(tmp, O_WRONLY | O_CREAT, 0644);
  if (fd < 0) {
    fprintf(stderr, "%s: error: %s %s: cannot create %s: %s\n", prog, opt, path, tmp,
            strerror(errno));
    exit(1);
  }
  close(fd);
  unlink(tmp);
}

int main(int argc, char **argv) {
  char err[8192], dir[4096], line[256];
  prog = argc > 0 && argv[0] ? argv[0] : prog;
  Options o;
  parse_args(argc, argv, &o);
  const cnn_train_config *tc = NET.train;

#ifdef _OPENMP
  if (o.threads)
    omp_set_num_threads(o.threads);
#endif
  // Parallelism is the generated code's (over images); BLAS calls inside it
  // must not start threads of their own.
  openblas_set_num_threads(1);

  // A checkpoint to evaluate is checked before the data is read, the outputs
  // before anything is trained.
  cnn_ckpt evaluated = {0};
  if (o.eval)
    evaluated = load_checkpoint(o.eval);
  if (o.save) {
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)getpid()); // cnn_ckpt_save's temp name
    check_writable("--save", o.save, suffix);
  }
  if (o.log_csv)
    check_writable("--log-csv", o.log_csv, ".tmp");
  if (cnn_datadir_resolve(o.data, dir, sizeof dir, err, sizeof err))
    die(err);
  // Both splits must fit the network (labels are checked as they load): the
  // batches are copied into buffers of the network's input size.
  // With --valid the evaluated split is the training file's tail, so that
  // choices made on it never see the test set.
  cnn_idx train_idx = {0}, test_idx = {0};
  if ((!o.eval && (cnn_idx_load(dir, "train", NET.classes, &train_idx, err, sizeof err) ||
                   cnn_idx_check(&train_idx, NET.name, NET.in_c, NET.in_h, NET.in_w, err,
                                 sizeof err))) ||
      (o.valid ? cnn_idx_split(&train_idx, o.valid, &test_idx, err, sizeof err)
               : cnn_idx_load(dir, "t10k", NET.classes, &test_idx, err, sizeof err) ||
                     cnn_idx_check(&test_idx, NET.name, NET.in_c, NET.in_h, NET.in_w, err,
                                   sizeof err)))
    die(err);
  if (o.valid)
    printf("validation: the last %d training images (training on the first %d); "
           "the test set is not read\n", test_idx.n, train_idx.n);
  cnn_dataset train = {0}, test = {0};
  if (cnn_dataset_init(&test, &test_idx, tc->mean, tc->std, 0, 0, err, sizeof err))
    die(err);
  float *x = malloc(sizeof(float) * (size_t)NET.batch * NET.in_c * NET.in_h * NET.in_w);
  uint8_t *y = malloc((size_t)NET.batch);
  if (!x || !y)
    die("out of memory");

  if (o.eval) {
    double loss;
    long correct;
    evaluate(&test, x, y, &loss, &correct);
    cnn_epoch_line(line, sizeof line, (int)evaluated.epoch, 0, loss, correct, test.n);
    printf("%s\n", line);
    cnn_ckpt_free(&evaluated);
    free(x);
    free(y);
    cnn_dataset_free(&test);
    cnn_idx_free(&test_idx);
    return 0;
  }

  if (cnn_dataset_init(&train, &train_idx, tc->mean, tc->std, tc->rotate, tc->shift, err,
                       sizeof err))
    die(err);
  cnn_sgd opt;
  if (cnn_sgd_init(&opt, NET.n_params, tc->lr, tc->momentum, tc->dampening, tc->weight_decay,
                   tc->nesterov, err, sizeof err))
    die(err);
  cnn_rng rng;
  cnn_rng_seed(&rng, o.seed, 0);
  NET.init(&rng);
  int first = 1;
  long batches = cnn_dataset_batches(&train, NET.batch);
  uint64_t step = 0;
  if (o.resume) {
    cnn_ckpt c = load_checkpoint(o.resume);
    cnn_sgd_restore(&opt, c.momentum, c.sgd_steps);
    rng = c.rng;
    first = (int)c.epoch + 1;
    step = c.step;
    cnn_ckpt_free(&c);
    if (first > o.epochs) {
      fprintf(stderr, "%s: %s has %d epochs already; nothing to do (see --epochs)\n", prog,
              o.resume, first - 1);
      return 0;
    }
  }

  if (NET.kernels)
    printf("%s: kernels %s\n", NET.name, NET.kernels());
  long run_batches = o.limit_batches && o.limit_batches < batches ? o.limit_batches : batches;
  EpochStats *stats = calloc((size_t)o.epochs + 1, sizeof *stats);
  if (!stats)
    die("out of memory");
  for (int epoch = first; epoch <= o.epochs; epoch++) {
    EpochStats *s = &stats[epoch];
    double t0 = now_s(), loss = 0;
    cnn_progress bar;
    cnn_progress_begin(&bar, stdout, epoch, run_batches);
    cnn_dataset_shuffle(&train, &rng);
    for (long b = 0; b < run_batches; b++, step++) {
      double lr, momentum;
      cnn_schedule_at(tc, batches, step, &lr, &momentum);
      opt.lr = lr;
      opt.momentum = momentum;
      if (b == 0)
        s->lr = lr;
      int k = cnn_dataset_batch(&train, (int)b, NET.batch, x, y, &rng);
      loss = NET.forward(x, y, k, 1, &rng);
      NET.backward();
      cnn_sgd_step(&opt, NET.params, NET.grads);
      s->train_loss += loss * k;
      s->train_correct += count_correct(y, k);
      s->train_total += k;
      cnn_progress_update(&bar, b + 1, loss);
    }
    cnn_progress_end(&bar, loss);
    s->seconds = now_s() - t0;
    s->train_loss /= (double)s->train_total;
    step += (uint64_t)(batches - run_batches); // a limited epoch still ends where a full one does
    evaluate(&test, x, y, &s->test_loss, &s->test_correct);
    s->test_total = test.n;
    cnn_epoch_line(line, sizeof line, epoch, 1, s->train_loss, s->train_correct, s->train_total);
    printf("\n%s\n\n", line);
    cnn_epoch_line(line, sizeof line, epoch, 0, s->test_loss, s->test_correct, s->test_total);
    printf("\n%s\n\n", line);
    fflush(stdout);
    if (o.save)
      save_checkpoint(o.save, epoch, step, &opt, &rng);
    if (o.log_csv)
      write_csv(o.log_csv, stats, first, epoch);
  }
  free(stats);
  free(x);
  free(y);
  cnn_sgd_free(&opt);
  cnn_dataset_free(&train);
  cnn_dataset_free(&test);
  cnn_idx_free(&train_idx);
  cnn_idx_free(&test_idx);
  return 0;
}
