// conv_kernels.h: the generator of direct convolution kernels for the
// training code (forward, input gradient, weight gradient), written for one
// layer's exact shape. layer_conv.c decides which convs take them.
#ifndef CNNC_CONV_KERNELS_H
#define CNNC_CONV_KERNELS_H

#include "train_emit.h"

// One valid (unpadded) stride-1 correlation of a single group: c input
// planes of h x w, o output planes of oh x ow = w - kw + 1 (or w == ow:
// rows wrapped, see emit_conv_direct), a kh x kw window. Rows
// [0, zt) and [h - zb, h) of every input plane are known to be zero (a
// padded input's border, or the input gradient's bordered dy):
// emit_conv_direct skips the taps that would read only them. vl is the
// kernels' values per vector (cnn_v8 or cnn_v16, whatever cnn_real is):
// 8 for AVX2's 16 registers, 16 for AVX-512's 32.
typedef struct ConvDims {
  int c, h, w;
  int o, oh, ow;
  int kh, kw;
  int zt, zb;
  int vl;
} ConvDims;

// The vector widths kernels are generated for, and the widest: how far
// past its end a kernel may read a buffer.
#define CONV_VL_AVX2 8
#define CONV_VL_AVX512 16
#define CONV_VL_MAX CONV_VL_AVX512

// Register tiles: output channels x vectors of the forward tile, output
// channels (x kw taps) of the weight-gradient tile, chosen from the shape
// for the registers of d->vl's instruction set.
void conv_fwd_tile(const ConvDims *d, int *ob, int *nv);
int conv_wgrad_tile(const ConvDims *d);

// Emits, at indent ind, the code that sets y[o][oh][ow] = bias[o] (when
// bias is not NULL) + sum over c, ky, kx of w[o][c][ky][kx] *
// x[c][oy + ky][ox + kx] for one image. x, w, y, bias name pointers in
// scope; x may be read up to d->vl + d->kw - 3 values past its end. With
// tmp (a buffer of conv_fwd_flat_size values) and when conv_fwd_flat says
// it wastes fewer lanes (narrow maps), each plane runs as one row on x's
// row stride into tmp, and its rows are copied to y; every sum is the same.
// Where x's rows are as long as y's (w == ow with kw > 1: each row's last
// kw - 1 taps read the next row's first columns, which must be zero), the
// flat run needs no tmp (conv_fwd_flat_copies says whether it does).
int conv_fwd_flat(const ConvDims *d);
int conv_fwd_flat_copies(const ConvDims *d);
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
// rounded up to d->vl; flat mode (when it wastes fewer lanes, on narrow
// maps) lays dy on x's row stride w, zeros past ow, so one run of vectors
// covers a plane. conv_wgrad_copy says whether dy needs that copy at all
// (not for rows of whole vectors), conv_wgrad_plane the values per channel
// of dy as the weight gradient reads it (the copy's, or dy's own),
// conv_wgrad_row its row stride, and
// emit_conv_wgrad_copy emits the copy of one image's dy into a zeroed dst
// (its padding never written).
int conv_wgrad_flat(const ConvDims *d);
int conv_wgrad_copy(const ConvDims *d);
long conv_wgrad_plane(const ConvDims *d);
int conv_wgrad_row(const ConvDims *d);
void emit_conv_wgrad_copy(TrainCtx *c, const ConvDims *d, const char *dst, const char *src, const char *ind);

// Whether the weight gradient of d sums over a group's images inside each
// tile (their x and dy fit in cache together): a lane sum per group instead
// of per image.
int conv_wgrad_images_inner(const ConvDims *d, int gsize);

// Emits the code that sums over oy, ox dy[o][oy][ox] * x[c][oy + ky][ox + kx]
// in an order fixed by the shape. With im, over group g's images (x and dy
// are then declared per image from im), into dw[o][c][ky][kx]. Without,
// for one image, as vectors of lane sums: set (first, an int in scope) or
// added to dw[((o * c + c) * kh + ky) * kw + kx][vl]; after the group's
// images emit_conv_wgrad_lanes adds each one's lanes into the weights. (A
// vector of lane sums per weight costs a vector add per image where the
// lanes' sum costs a dozen shuffles and adds: at 16 lanes that was half the
// time of a 26x26 -> 24x24 conv's weight gradient, at 8 a sixth.) dy is
// laid out as conv_wgrad_copy says (the copy when it needs one); x may be
// read up to d->vl - 1 values past its end. For one image, the first block
// of output channels prefetches the next input channel's x as it goes.
void emit_conv_wgrad(TrainCtx *c, const ConvDims *d, const char *x, const char *dy, const char *dw,
                     const char *ind, const ConvImages *im);
// dw[j] = the sum of dwv[j]'s lanes, for the count weights of one group.
void emit_conv_wgrad_lanes(TrainCtx *c, const ConvDims *d, const char *dw, const char *dwv, long count,
                           const char *ind);

#endif
