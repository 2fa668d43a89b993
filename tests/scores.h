// scores.h: what the inference tests do with a network's scores (shared by
// tests/test_infer.c and tests/infer_nets.c).
#ifndef CNNC_TESTS_SCORES_H
#define CNNC_TESTS_SCORES_H

#include <math.h>

// The argmax of n scores and its margin over the runner-up.
static inline int top(const double *v, int n, double *margin) {
  int best = 0;
  for (int c = 1; c < n; c++)
    if (v[c] > v[best])
      best = c;
  double second = -1e300;
  for (int c = 0; c < n; c++)
    if (c != best)
      second = fmax(second, v[c]);
  *margin = v[best] - second;
  return best;
}

// log_softmax of float scores, in double.
static inline void log_softmax(const float *s, double *out, int n) {
  double mx = s[0], sum = 0;
  for (int c = 1; c < n; c++)
    mx = fmax(mx, s[c]);
  for (int c = 0; c < n; c++)
    sum += exp(s[c] - mx);
  for (int c = 0; c < n; c++)
    out[c] = s[c] - mx - log(sum);
}

#endif
