#!/usr/bin/env python3
"""Writes tests/data/torch_ref.bin: PyTorch's numbers for tests/test_torch.c.

The network is tests/nets/mnist14k_nodrop.cnn (mnist14k without dropout, whose
masks could not match PyTorch's RNG). Everything the C test needs is in the
file: inputs, labels, initial parameters and BN state (made here from a
fixed-seed numpy generator), and what PyTorch computes from them in float32:

  1. model.train(); loss1 = nll_loss(log_softmax(model(x)), y); backward:
     the gradients, and the BN running statistics after this forward;
  2. SGD(lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True) step;
  3. a second forward/backward on the same batch: loss2; a second SGD step:
     the parameters after it (and the BN state after the second forward);
  4. model.eval(): log-probabilities of the same batch.

Run by hand (CI has no torch; it uses the committed file):
    /usr/bin/python3 tests/torch_reference.py [tests/data/torch_ref.bin]

Format, little-endian:
  char[8]  magic "CNNTORCH"
  u32      version (1)
  u32      B, C, H, W, classes, n_params, n_state
  u32      y[B]                       labels
  f32      x[B][C][H][W]              inputs
  f32      params0[n_params]          cnnc layout: per layer in order, conv
                                      weight [out][in][k][k]; BN gamma, beta
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
    out = sys.argv[1] if len(sys.argv) > 1 else 'tests/data/torch_ref.bin'
    torch.set_num_threads(1)
    rs = np.random.RandomState(20240611)
    model = Mnist14kNoDrop()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                w = rs.uniform(-1, 1, m.weight.shape) * np.sqrt(3.0 / fan_in)
                m.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.from_numpy(rs.uniform(0.5, 1.5, c).astype(np.float32)))
                m.bias.copy_(torch.from_numpy(rs.uniform(-0.3, 0.3, c).astype(np.float32)))
                m.running_mean.copy_(torch.from_numpy(rs.uniform(-0.5, 0.5, c).astype(np.float32)))
                m.running_var.copy_(torch.from_numpy(rs.uniform(0.5, 2.0, c).astype(np.float32)))
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 14112
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
        f.write(struct.pack('<8I', 1, B, C, H, W, CLASSES, n_params, n_state))
        f.write(struct.pack('<%dI' % B, *LABELS))
        for a in (x.numpy().astype('<f4'), params0, state0,
                  np.array([loss1.item()], '<f4'), grads1, state1,
                  np.array([loss2.item()], '<f4'), grads2, state2, params2, logprobs):
            f.write(a.tobytes())
    print(f'{out}: loss1 {loss1.item():.7f} loss2 {loss2.item():.7f} '
          f'max|g1| {np.abs(grads1).max():.4g}')


if __name__ == '__main__':
    main()
