// report.h: `cnnc summary` — the layer table of the reference write-up with
// parameters, MACs and activation sizes, as text or markdown.
#ifndef CNNC_REPORT_H
#define CNNC_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "net.h"

// Prints the layer table and totals (and, as text, the train section).
void report_summary(const Net *net, FILE *out, bool markdown);

// The Transform cell of one layer: "(3x3x1)x16", "BN(16)", "MP(2x2)", ...
const char *report_transform(const Layer *l, char *buf, size_t n);

#endif
