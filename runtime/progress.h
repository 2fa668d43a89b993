// progress.h: the training progress bar of the reference log, redrawn in
// place on a terminal; on a pipe or file only a few lines per epoch. And the
// reference's per-epoch summary lines, formatted exactly.
#ifndef CNN_PROGRESS_H
#define CNN_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

typedef struct cnn_progress {
  FILE *out;
  int tty;                     // redraw with \r, else a few plain lines
  int epoch;
  long total;                  // batches this epoch
  double t0, last_draw;        // seconds (monotonic)
  int next_quarter;            // non-tty: next 25% mark to print
} cnn_progress;

// Starts an epoch's bar of `total` batches on out (tty detected with isatty).
void cnn_progress_begin(cnn_progress *p, FILE *out, int epoch, long total);
// Reports `done` batches finished, the last batch's loss; draws when due.
void cnn_progress_update(cnn_progress *p, long done, double loss);
// Finishes the bar (draws the final state and a newline).
void cnn_progress_end(cnn_progress *p, double loss);
// Formats one bar line (no \r or \n) as tqdm would:
// "epoch=1 loss=0.2470 batch_id=937: 100%|##########| 938/938 [00:17<00:00, 53.41it/s]"
int cnn_progress_format(char *buf, size_t len, int epoch, double loss, long done, long total,
                        double elapsed);
// "Epoch 1--Train set: Average loss: 0.2470, Training Accuracy: 50740/60000 (84.57%)"
// or, with train 0, "Epoch 1--Test set: ... Validation Accuracy: ...".
int cnn_epoch_line(char *buf, size_t len, int epoch, int train, double loss, long correct,
                   long total);

#endif
