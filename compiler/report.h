// report.h: `cnnc summary` — the layer table of the reference write-up with
// parameters, MACs and activation sizes, and the firmware inference memory
// (flash for weights, RAM for the arena) as float and int8, as text or markdown.
#ifndef CNNC_REPORT_H
#define CNNC_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "net.h"

// A checkpoint `cnnc summary --weights` has loaded and matched to the net.
typedef struct ReportWeights {
  const char *path;
  unsigned long epoch;     // epochs completed
  unsigned long long step; // optimizer steps completed
} ReportWeights;

// Prints the layer table and totals (and, as text, the train section).
void report_summary(const Net *net, FILE *out, bool markdown);

// The same, naming the checkpoint w (may be NULL) the figures go with.
void report_summary_weights(const Net *net, FILE *out, bool markdown, const ReportWeights *w);

// The Transform cell of one layer: "(3x3x1)x16", "BN(16)", "MP(2x2)", ...
const char *report_transform(const Layer *l, char *buf, size_t n);

#endif
