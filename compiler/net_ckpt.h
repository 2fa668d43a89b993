// net_ckpt.h: a checkpoint read for a checked network — loaded, matched to
// its name, shape hash and normalization, and its tensors placed by name.
#ifndef CNNC_NET_CKPT_H
#define CNNC_NET_CKPT_H

#include <stddef.h>

#include "checkpoint.h"
#include "net.h"

// Loads path for net into c (any format version); 0, or -1 with a message
// naming the file (and the tensor) in err. Free c with cnn_ckpt_free either way.
int net_ckpt_load(const Net *net, const char *path, cnn_ckpt *c, char *err, size_t errlen);

#endif
