// conv_lanes.h: the generator of a small-map conv's training kernels with
// the batch's images as the vector lanes. layer_conv.c decides which convs
// take them and wires in their BatchNorm passes.
#ifndef CNNC_CONV_LANES_H
#define CNNC_CONV_LANES_H

#include "train_emit.h"

// One unpadded, stride-1 conv of one group: c input planes of h x w, o
// output planes of oh x ow, a kh x kw window. vl images share a vector
// (8 for AVX2, 16 for AVX-512): the lanes of a set of vl / gl training
// groups, gl lanes each (a power of two at least GSIZE; the lanes past a
// group's images hold zeros). A packed tensor is [value][lane]: the value
// index of the image's CHW layout, its vl images side by side.
typedef struct LaneDims {
  int c, h, w;
  int o, oh, ow;
  int kh, kw;
  int vl, gl;
} LaneDims;

// The widest window the lane kernels take (their tiles unroll its columns).
#define LANES_MAX_KW 16

// Lanes per group for groups of gsize images: 0 when they do not fit in
// the 8 lanes of the narrower width.
int lanes_per_group(int gsize);

// Emits, at indent ind inside the loop over sets s, `int li[vl]`: the
// image of each lane of set s, or -1.
void emit_lanes_images(TrainCtx *c, const LaneDims *d, const char *ind);

// dst (packed, size values per image) = the images of li from src +
// i * size (unpack: the other way round, lanes without an image skipped).
// A vl x vl block at a time, transposed in registers.
void emit_lanes_pack(TrainCtx *c, const LaneDims *d, const char *dst, const char *src, long size,
                     const char *ind);
void emit_lanes_unpack(TrainCtx *c, const LaneDims *d, const char *dst, const char *src, long size,
                       const char *ind);

// yl = w (*) xl (+ bias), packed; each output's sum over c, ky, kx in the
// order of emit_conv_direct, so the same bits.
void emit_lanes_forward(TrainCtx *c, const LaneDims *d, const char *xl, const char *w, const char *yl,
                        const char *bias, const char *ind);
// dxl[c][y][x] = the sum over o, ky, kx of w[o][c][ky][kx] * dyl[o][y - ky]
// [x - kx] where dy has that value (no zero taps), in the order of the
// direct input gradient (o, then the window flipped).
void emit_lanes_igrad(TrainCtx *c, const LaneDims *d, const char *dyl, const char *w, const char *dxl,
                      const char *ind);
// For each group g of set s (dw: an expression of g), dw[o][c][ky][kx] =
// the sum over its images of each one's sum over oy, ox of dyl[o][oy][ox] *
// xl[c][oy + ky][ox + kx]: the positions in order within a lane, then the
// group's lanes pairwise. With db (also of g), db[o] = the sum of dy alike.
void emit_lanes_wgrad(TrainCtx *c, const LaneDims *d, const char *xl, const char *dyl, const char *dw,
                      const char *db, const char *ind);

#endif
