// conv_kernels.h: the generator of direct convolution kernels for the
// training code (forward, input gradient, weight gradient), written for one
// layer's exact shape. layer_conv.c decides which convs take them.
#ifndef CNNC_CONV_KERNELS_H
#define CNNC_CONV_KERNELS_H

#include "train_emit.h"

// One valid (unpadded) stride-1 correlation of a single group: c input
// planes of h x w, o output planes of oh x ow, a kh x kw window. Rows
// [0, zt) and [h - zb, h) of every input plane are known to be zero (a
// padded input's border, or the input gradient's bordered dy):
// emit_conv_direct skips the taps that would read only them.
typedef struct ConvDims {
  int c, h, w;
  int o, oh, ow;
  int kh, kw;
  int zt, zb;
} ConvDims;

// Values per vector in the generated kernels (NAME_v8), whatever cnn_real is.
#define CONV_VL 8

// Register tiles: output channels x vectors of the forward tile, output
// channels (x kw taps) of the weight-gradient tile, chosen from the shape
// for 16 vector registers (AVX2).
void conv_fwd_tile(const ConvDims *d, int *ob, int *nv);
int conv_wgrad_tile(const ConvDims *d);

// Emits, at indent ind, the code that sets y[o][oh][ow] = bias[o] (when
// bias is not NULL) + sum over c, ky, kx of w[o][c][ky][kx] *
// x[c][oy + ky][ox + kx] for one image. x, w, y, bias name pointers in
// scope; x may be read up to CONV_VL - 1 values past its end. With tmp (a
// buffer of conv_fwd_flat_size values) and when conv_fwd_flat says it
// wastes fewer lanes (narrow maps), each plane runs as one row on x's row
// stride into tmp, and its rows are copied to y; every sum is the same.
int conv_fwd_flat(const ConvDims *d);
long conv_fwd_flat_size(const ConvDims *d);
void emit_conv_direct(TrainCtx *c, const ConvDims *d, const char *x, const char *w, const char *y,
                      const char *bias, const char *tmp, const char *ind);

// The images of a group for the weight gradient: the buffers of x and dy
// and their values per image; with local, dy holds the group's images only
// (its copy), indexed from the group's first.
typedef struct ConvImages {
  const char *x, *dy;
  long xsize, dysize;
  int local;
} ConvImages;

// The weight gradient reads dy with every row padded by zeros to whole
// vectors, so its loops have no partial vector: rows mode keeps rows of ow
// rounded up to CONV_VL; flat mode (when it wastes fewer lanes, on narrow
// maps) lays dy on x's row stride w, zeros past ow, so one run of vectors
// covers a plane. conv_wgrad_copy says whether dy needs that copy at all
// (not for rows of whole vectors), conv_wgrad_plane the values per channel
// of dy as the weight gradient reads it (the copy's, or dy's own), and
// emit_conv_wgrad_copy emits the copy of one image's dy into a zeroed dst
// (its padding never written).
int conv_wgrad_flat(const ConvDims *d);
int conv_wgrad_copy(const ConvDims *d);
long conv_wgrad_plane(const ConvDims *d);
void emit_conv_wgrad_copy(TrainCtx *c, const ConvDims *d, const char *dst, const char *src, const char *ind);

// Whether the weight gradient of d sums over a group's images inside each
// tile (their x and dy fit in cache together): a lane sum per group instead
// of per image.
int conv_wgrad_images_inner(const ConvDims *d, int gsize);

// Emits the code that sets (first) or adds to dw[o][c][ky][kx] the sum
// over oy, ox of dy[o][oy][ox] * x[c][oy + ky][ox + kx] for one image, in
// an order fixed by the shape; or, with im, sets it to the sum over group
// g's images (x and dy are then declared per image from im). dy is laid out
// as conv_wgrad_copy says (the copy when it needs one); x may be read up to
// CONV_VL - 1 values past its end; `first` names an int in scope.
void emit_conv_wgrad(TrainCtx *c, const ConvDims *d, const char *x, const char *dy, const char *dw,
                     const char *ind, const ConvImages *im);

#endif
