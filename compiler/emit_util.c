// emit_util.c: output directory creation and atomic file writes for emitters.
#include "emit_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Joins a directory and a file name with one slash.
static char *join(const char *dir, const char *name, const char *suffix) {
  size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
  char *s = malloc(n);
  if (!s)
    return NULL;
  size_t dl = strlen(dir);
  snprintf(s, n, "%s%s%s%s", dir, dl && dir[dl - 1] != '/' ? "/" : "", name, suffix);
  return s;
}

int emit_mkdirs(const char *dir) {
  char *p = strdup(dir);
  if (!p)
    return -1;
  // Create each prefix in turn so that "a/b/c" works when only "a" exists.
  for (char *s = p + 1;; s++) {
    if (*s == '/' || *s == '\0') {
      char c = *s;
      *s = '\0';
      if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cnnc: error: cannot create directory '%s': %s\n", p, strerror(errno));
        free(p);
        return -1;
      }
      *s = c;
      if (c == '\0')
        break;
    }
  }
  free(p);
  return 0;
}

int emit_file_open(EmitFile *ef, const char *dir, const char *name) {
  ef->f = NULL;
  ef->path = join(dir, name, "");
  // The pid keeps two cnnc runs into one directory from sharing a temp file.
  char suffix[40];
  snprintf(suffix, sizeof suffix, ".tmp%ld", (long)getpid());
  ef->tmp = join(dir, name, suffix);
  if (!ef->path || !ef->tmp) {
    fprintf(stderr, "cnnc: error: out of memory\n");
    emit_file_abort(ef);
    return -1;
  }
  ef->f = fopen(ef->tmp, "w");
  if (!ef->f) {
    fprintf(stderr, "cnnc: error: cannot write '%s': %s\n", ef->tmp, strerror(errno));
    emit_file_abort(ef);
    return -1;
  }
  return 0;
}

int emit_file_close(EmitFile *ef) {
  int bad = ferror(ef->f);
  if (fclose(ef->f) != 0)
    bad = 1;
  ef->f = NULL;
  if (bad || rename(ef->tmp, ef->path) != 0) {
    fprintf(stderr, "cnnc: error: cannot write '%s': %s\n", ef->path, strerror(errno));
    remove(ef->tmp);
    free(ef->path);
    free(ef->tmp);
    ef->path = ef->tmp = NULL;
    return -1;
  }
  free(ef->path);
  free(ef->tmp);
  ef->path = ef->tmp = NULL;
  return 0;
}

void emit_file_abort(EmitFile *ef) {
  if (ef->f) {
    fclose(ef->f);
    ef->f = NULL;
  }
  if (ef->tmp)
    remove(ef->tmp);
  free(ef->path);
  free(ef->tmp);
  ef->path = ef->tmp = NULL;
}

// A target_clones guard; see emit_util.h.
void emit_clones_macro(FILE *f, const char *name, const char *targets, const char *gcc_targets) {
  const char *host = "defined(__x86_64__) && defined(__ELF__) && !defined(CNN_NO_CLONES)";
  if (gcc_targets)
    fprintf(f, "#if %s && \\\n    !defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 12\n"
               "#define %s __attribute__((target_clones(%s)))\n#elif",
            host, name, gcc_targets);
  else
    fprintf(f, "#if");
  fprintf(f, " %s && \\\n"
             "    (defined(__clang__) ? __clang_major__ >= 14 : defined(__GNUC__) && __GNUC__ >= 6)\n"
             "#define %s __attribute__((target_clones(%s)))\n"
             "#else\n#define %s\n#endif\n",
          host, name, targets, name);
}

void emit_fma_pragma(FILE *f) {
  // GCC contracts nothing in ISO C mode; clang fuses within a statement.
  // GCC's -O2 vectorizes only loops with no remainder: over a 26x26 plane
  // (676 = 84 x 8 + 4) it took 4-wide vectors, over 9x9 none. The dynamic
  // cost model adds a remainder loop; an elementwise loop keeps its bits.
  fprintf(f, "#if defined(__GNUC__) && !defined(__clang__)\n"
             "#pragma GCC optimize(\"fp-contract=fast\", \"vect-cost-model=dynamic\")\n#endif\n");
}
