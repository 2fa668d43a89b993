// datadir.c: finding MNIST, with an error that says how to get it.
#include "datadir.h"

#include "error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idx.h"

// All four files present (content is checked when they are loaded).
int cnn_datadir_ok(const char *dir) {
  static const char *const split[2] = {"train", "t10k"}, *const kind[2] = {"images", "labels"};
  char path[4096];
  for (int s = 0; s < 2; s++)
    for (int k = 0; k < 2; k++)
      if (cnn_idx_path(dir, split[s], kind[k], path, sizeof path) != 0)
        return 0;
  return 1;
}

#define HOWTO                                                                                  \
  "get MNIST with `make data` (downloads into data/mnist and checks SHA-256), or point "     \
  "--data or MNIST_DIR at a directory holding train-images-idx3-ubyte.gz, "                  \
  "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"

// --data, then $MNIST_DIR, then the two conventional places.
int cnn_datadir_resolve(const char *arg, char *out, size_t outlen, char *err, size_t errlen) {
  const char *env = getenv("MNIST_DIR");
  const char *pick = NULL, *from = NULL;
  if (arg && *arg) {
    pick = arg;
    from = "--data";
  } else if (env && *env) {
    pick = env;
    from = "MNIST_DIR";
  }
  if (pick) {
    if (!cnn_datadir_ok(pick)) {
      cnn_seterr(err, errlen, "%s: MNIST files not found there (from %s); " HOWTO, pick, from);
      return -1;
    }
  } else if (cnn_datadir_ok("../shared/data/mnist")) {
    pick = "../shared/data/mnist";
  } else if (cnn_datadir_ok("data/mnist")) {
    pick = "data/mnist";
  } else {
    cnn_seterr(err, errlen, "data/mnist: MNIST files not found (nor in ../shared/data/mnist); " HOWTO);
    return -1;
  }
  if (strlen(pick) + 1 > outlen) {
    cnn_seterr(err, errlen, "%s: path too long", pick);
    return -1;
  }
  memcpy(out, pick, strlen(pick) + 1);
  return 0;
}
