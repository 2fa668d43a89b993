// emit.h: the code generators. Each writes its files into outdir (created if
// missing), each file through a temporary name renamed into place, and
// returns 0, or 1 after printing "cnnc: error: ..." to stderr.
#ifndef CNNC_EMIT_H
#define CNNC_EMIT_H

#include <stdbool.h>

#include "net.h"

typedef struct EmitOptions {
  int batch;              // training batch; 0 means the train section's
  const char *weights;    // checkpoint for inference code
  bool int8;              // quantized inference
  const char *calib_dir;  // MNIST-format directory for int8 calibration
  int calib_n;            // calibration images (0: a default)
} EmitOptions;

// NAME_train.h and NAME_train.c: forward and backward over a fixed batch.
int emit_train(const Net *net, const char *outdir, const EmitOptions *opt);

// NAME_infer.h and NAME_infer.c (or the int8 variant): one image, const
// weights from opt->weights, one static arena.
int emit_infer(const Net *net, const char *outdir, const EmitOptions *opt);

// NAME.py: the network as a PyTorch module with cnnc checkpoint functions;
// with weights, NAME.ckpt too (that checkpoint in format v3). source: the
// .cnn file, for the docstring.
int export_torch(const Net *net, const char *source, const char *outdir, const char *weights);

#endif
