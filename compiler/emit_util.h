// emit_util.h: small helpers shared by the code generators: creating the
// output directory and writing a file atomically (temporary name, rename).
#ifndef CNNC_EMIT_UTIL_H
#define CNNC_EMIT_UTIL_H

#include <stdio.h>

typedef struct EmitFile {
  FILE *f;
  char *path;   // final name
  char *tmp;    // where it is written until emit_file_close
} EmitFile;

// Creates dir and its parents if missing; 0 or -1 (after an error message).
int emit_mkdirs(const char *dir);

// Opens dir/name for writing under a temporary name; 0 or -1.
int emit_file_open(EmitFile *ef, const char *dir, const char *name);

// Flushes, closes and renames into place; on any earlier write error the
// temporary file is removed instead. 0 or -1.
int emit_file_close(EmitFile *ef);

// Closes and removes the temporary file without touching the final one.
void emit_file_abort(EmitFile *ef);

// Writes the CNN_CLONES macro: target_clones(targets) where the compiler and
// host support it (x86-64 ELF, gcc 6+, clang 14+), else empty; the generated
// code can be built without it with -DCNN_NO_CLONES. targets is the list as
// C source, e.g. "\"avx2\", \"default\"". With fma, GCC 12+ builds the
// x86-64-v3 level (AVX2 + FMA) instead and fuses multiply-adds.
void emit_clones_macro(FILE *f, const char *targets, int fma);

#endif
