#!/usr/bin/env python3
"""Writes PyTorch's numbers for tests/test_torch.c.

  --net mnist14k (default): tests/data/torch_ref.bin for
      tests/nets/mnist14k_nodrop.cnn (mnist14k without dropout, whose masks
      could not match PyTorch's RNG);
  --net kinds: tests/data/torch_kinds.bin for tests/nets/torch_kinds.cnn
      (strided 'same' padding, depthwise and rectangular convs, residual
      blocks with and without projection, avgpool, flatten, dense).
 Everything the C test needs is in the
file: inputs, labels, initial parameters and BN state (made here from a
fixed-seed numpy generator), and what PyTorch computes from them in float32:

  1. model.train(); loss1 = nll_loss(log_softmax(model(x)), y); backward:
     the gradients, and the BN running statistics after this forward;
  2. SGD(lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True) step;
  3. a second forward/backward on the same batch: loss2; a second SGD step:
     the parameters after it (and the BN state after the second forward);
  4. model.eval(): log-probabilities of the same batch.

Run by hand (CI has no torch; it uses the committed files):
    /usr/bin/python3 tests/torch_reference.py [--net kinds] [OUT]

Format, little-endian:
  char[8]  magic "CNNTORCH"
  u32      version (2)
  u32      B, C, H, W, classes, n_params, n_state
  u32      n_tensors, then sizes[n_tensors]  the parameter tensors, in order
  u32      y[B]                       labels
  f32      x[B][C][H][W]              inputs
  f32      params0[n_params]          cnnc layout: per layer in order, conv
                                      weight [out][in/groups][kh][kw] and bias;
                                      BN gamma, beta; dense weight [out][in], bias
  f32      state0[n_state]            per BN: running_mean [c], running_var [c]
  f32      loss1
  f32      grads1[n_params]           gradient of loss1, cnnc layout
  f32      state1[n_state]            BN state after the first forward
  f32      loss2                      after one SGD step
  f32      grads2[n_params]           gradient of loss2
  f32      state2[n_state]            BN state after the second forward
  f32      params2[n_params]          after the second SGD step
  f32      logprobs[B][classes]       eval mode, after that
"""
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

B, C, H, W, CLASSES = 8, 1, 28, 28, 10
LABELS = [3, 1, 4, 1, 5, 9, 2, 6]
KINDS = dict(B=6, C=3, H=12, W=10, CLASSES=5, LABELS=[3, 1, 4, 0, 2, 4])


def same(x, kh, kw, sh, sw):
    """Keras/TensorFlow 'same' padding: the odd row/column at the bottom/right."""
    h, w = x.shape[2], x.shape[3]
    ph = max((-(-h // sh) - 1) * sh + kh - h, 0)
    pw = max((-(-w // sw) - 1) * sw + kw - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class Kinds(nn.Module):
    """tests/nets/torch_kinds.cnn; modules registered in cnnc's layer order."""

    def __init__(self):
        super().__init__()
        self.c0, self.b0 = nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8)
        self.dw, self.b1 = nn.Conv2d(8, 8, 3, groups=8, bias=False), nn.BatchNorm2d(8)
        self.pw, self.b2 = nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8)
        self.c3, self.b3 = nn.Conv2d(8, 16, (3, 2), stride=2), nn.BatchNorm2d(16)
        self.sc, self.bs = nn.Conv2d(8, 16, 1, stride=2), nn.BatchNorm2d(16)
        self.fc1, self.fc2 = nn.Linear(32, 12), nn.Linear(12, 5)

    def forward(self, x):
        x = F.relu(self.b0(self.c0(same(x, 3, 3, 2, 2))))
        y = F.relu(self.b1(self.dw(same(x, 3, 3, 1, 1))))
        x = F.relu(x + self.b2(self.pw(y)))
        y = self.b3(self.c3(same(x, 3, 2, 2, 2)))
        x = F.relu(y + self.bs(self.sc(same(x, 1, 1, 2, 2))))
        x = F.avg_pool2d(F.max_pool2d(x, (2, 1), stride=1), 2, stride=1)
        return F.log_softmax(self.fc2(F.relu(self.fc1(x.flatten(1)))), dim=1)


def cbr(cin, cout, k):
    return [nn.Conv2d(cin, cout, k, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class Mnist14kNoDrop(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *cbr(1, 16, 3), *cbr(16, 16, 3), *cbr(16, 16, 3),
            nn.MaxPool2d(2), *cbr(16, 16, 1),
            *cbr(16, 24, 3), *cbr(24, 24, 3),
            nn.Conv2d(24, 10, 1, bias=False), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return F.log_softmax(self.body(x).view(-1, CLASSES), dim=1)


def bns(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def flat_params(model, grad=False):
    # model.parameters() runs conv.weight, bn.weight (gamma), bn.bias (beta)
    # in layer order: cnnc's layout.
    ts = [p.grad if grad else p for p in model.parameters()]
    return torch.cat([t.detach().reshape(-1) for t in ts]).numpy().astype('<f4')


def flat_state(model):
    return torch.cat([torch.cat([m.running_mean, m.running_var]) for m in bns(model)]
                     ).detach().numpy().astype('<f4')


def main():
    global B, C, H, W, CLASSES, LABELS
    args = sys.argv[1:]
    kinds = args[:2] == ['--net', 'kinds']
    if kinds or args[:2] == ['--net', 'mnist14k']:
        args = args[2:]
    out = args[0] if args else 'tests/data/torch_kinds.bin' if kinds else 'tests/data/torch_ref.bin'
    torch.set_num_threads(1)
    rs = np.random.RandomState(20240611)
    if kinds:
        B, C, H, W, CLASSES, LABELS = (KINDS[k] for k in ('B', 'C', 'H', 'W', 'CLASSES', 'LABELS'))
    model = Kinds() if kinds else Mnist14kNoDrop()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                fan_in = m.weight.shape[1]
                m.weight.copy_(torch.from_numpy((rs.uniform(-1, 1, m.weight.shape) * np.sqrt(3.0 / fan_in)).astype(np.float32)))
                m.bias.copy_(torch.from_numpy((rs.uniform(-1, 1, m.bias.shape) / np.sqrt(fan_in)).astype(np.float32)))
            elif isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                w = rs.uniform(-1, 1, m.weight.shape) * np.sqrt(3.0 / fan_in)
                m.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.from_numpy(rs.uniform(0.5, 1.5, c).astype(np.float32)))
                m.bias.copy_(torch.from_numpy(rs.uniform(-0.3, 0.3, c).astype(np.float32)))
                m.running_mean.copy_(torch.from_numpy(rs.uniform(-0.5, 0.5, c).astype(np.float32)))
                m.running_var.copy_(torch.from_numpy(rs.uniform(0.5, 2.0, c).astype(np.float32)))
    if kinds:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Conv2d) and m.bias is not None:
                    m.bias.copy_(torch.from_numpy(rs.uniform(-0.2, 0.2, m.bias.shape).astype(np.float32)))
    n_params = sum(p.numel() for p in model.parameters())
    assert kinds or n_params == 14112
    sizes = [p.numel() for p in model.parameters()]
    # Inputs like normalized MNIST: mostly background (-0.42) with strokes.
    x = rs.uniform(0, 1, (B, C, H, W))
    x = np.where(x > 0.8, (x - 0.8) * 5 * 2.82 + (1 - (x - 0.8) * 5) * -0.42, -0.42)
    x = torch.from_numpy(x.astype(np.float32))
    y = torch.tensor(LABELS, dtype=torch.long)

    params0 = flat_params(model)
    state0 = flat_state(model)
    n_state = state0.size

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9,
                          weight_decay=1e-4, nesterov=True)
    model.train()
    opt.zero_grad()
    loss1 = F.nll_loss(model(x), y)
    loss1.backward()
    grads1 = flat_params(model, grad=True)
    state1 = flat_state(model)
    opt.step()

    opt.zero_grad()
    loss2 = F.nll_loss(model(x), y)
    loss2.backward()
    grads2 = flat_params(model, grad=True)
    state2 = flat_state(model)
    opt.step()
    params2 = flat_params(model)

    model.eval()
    with torch.no_grad():
        logprobs = model(x).numpy().astype('<f4')

    with open(out, 'wb') as f:
        f.write(b'CNNTORCH')
        f.write(struct.pack('<8I', 2, B, C, H, W, CLASSES, n_params, n_state))
        f.write(struct.pack('<%dI' % (len(sizes) + 1), len(sizes), *sizes))
        f.write(struct.pack('<%dI' % B, *LABELS))
        for a in (x.numpy().astype('<f4'), params0, state0,
                  np.array([loss1.item()], '<f4'), grads1, state1,
                  np.array([loss2.item()], '<f4'), grads2, state2, params2, logprobs):
            f.write(a.tobytes())
    print(f'{out}: loss1 {loss1.item():.7f} loss2 {loss2.item():.7f} '
          f'max|g1| {np.abs(grads1).max():.4g}')


if __name__ == '__main__':
    main()
