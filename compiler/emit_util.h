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

// Writes the macro `name` (CNN_CLONES): target_clones(targets) where the
// compiler and host support it (x86-64 ELF, gcc 6+, clang 14+), else empty;
// the generated code can be built without it with -DCNN_NO_CLONES. targets
// is the list as C source, e.g. "\"avx2\", \"default\"". With gcc_targets
// (not NULL), GCC 12+ builds those instead: x86-64 levels, with FMA.
void emit_clones_macro(FILE *f, const char *name, const char *targets, const char *gcc_targets);
// GCC's optimize pragma of the training code: multiply-adds fused where the
// target has FMA, elementwise loops vectorized with a remainder.
void emit_fma_pragma(FILE *f);

#endif
