// datadir.h: where MNIST is: the --data argument, else $MNIST_DIR, else
// ../shared/data/mnist, else data/mnist. The first that has all four files
// wins; if none does the error says how to get them.
#ifndef CNN_DATADIR_H
#define CNN_DATADIR_H

#include <stddef.h>

// True if dir has train/t10k images and labels (.gz or raw).
int cnn_datadir_ok(const char *dir);
// Resolves the directory into out. arg may be NULL. An explicit arg or
// $MNIST_DIR without the files is an error (no silent fallback).
int cnn_datadir_resolve(const char *arg, char *out, size_t outlen, char *err, size_t errlen);

#endif
