// check.h: from source text to a checked Net — parse, expand blocks, infer
// shapes, read the train section. Diagnostics go to stderr.
#ifndef CNNC_CHECK_H
#define CNNC_CHECK_H

#include <stddef.h>
#include <stdio.h>

#include "net.h"

// Most layers a network may expand to, and deepest block nesting.
// (gcc needs minutes for the code of a few thousand layers.)
#define CNNC_MAX_LAYERS 1000
// Longest network name: it is stored in checkpoints (63 bytes and a NUL).
#define CNNC_MAX_NAME 63
#define CNNC_MAX_BLOCK_DEPTH 100

// Loads and checks a .cnn file. Returns the number of errors (0: *out is a
// checked net the caller frees with net_free; else *out is empty).
int cnnc_load_file(const char *path, Net *out);

// The same for source in memory; filename is used in messages and copied.
int cnnc_load_string(const char *filename, const char *src, size_t len, Net *out);

// cnnc_load_string with diagnostics written to diag (for tests).
int cnnc_load_string_diag(const char *filename, const char *src, size_t len, Net *out, FILE *diag);

#endif
