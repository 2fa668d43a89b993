#!/usr/bin/env python3
"""The mnist14k network of the reference write-up, timed in PyTorch.

`make bench` runs this beside cnnc's own benchmark so that both are measured
on the same machine in the same run. It prints `key value` lines:
train_ips_T (training images/s at T threads, batch 64), eval_ips (batch
1000), latency_us (one image, eval mode, 1 thread). Synthetic data: the
timing does not depend on pixel values.
"""
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def cbr(cin, cout, k):
    return [nn.Conv2d(cin, cout, k, bias=False), nn.BatchNorm2d(cout),
            nn.Dropout(0.03), nn.ReLU()]


class Mnist14k(nn.Module):
    """14,112 parameters: the last table of mnist14k-experiment.md."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *cbr(1, 16, 3), *cbr(16, 16, 3), *cbr(16, 16, 3),
            nn.MaxPool2d(2), *cbr(16, 16, 1),
            *cbr(16, 24, 3), *cbr(24, 24, 3),
            nn.Conv2d(24, 10, 1, bias=False), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return F.log_softmax(self.body(x).view(-1, 10), dim=1)


def median_rate(fn, images, reps, warmup=2):
    """Median images/s of fn over reps timed calls."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        rates.append(images / (time.perf_counter() - t))
    return statistics.median(rates)


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    torch.manual_seed(1)
    model = Mnist14k()
    assert sum(p.numel() for p in model.parameters()) == 14112
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(64, 1, 28, 28)
    y = torch.randint(0, 10, (64,))
    steps = 50

    def train_steps():
        model.train()
        for _ in range(steps):
            opt.zero_grad()
            F.nll_loss(model(x), y).backward()
            opt.step()

    for threads in (1, 2):
        torch.set_num_threads(threads)
        ips = median_rate(train_steps, 64 * steps, reps)
        print(f"train_ips_{threads} {ips:.1f}")

    torch.set_num_threads(2)
    xe = torch.randn(1000, 1, 28, 28)

    def evaluate():
        model.eval()
        with torch.no_grad():
            model(xe)

    print(f"eval_ips {median_rate(evaluate, 1000, reps):.1f}")

    torch.set_num_threads(1)
    x1 = torch.randn(1, 1, 28, 28)
    model.eval()

    def single():
        with torch.no_grad():
            for _ in range(200):
                model(x1)

    print(f"latency_us {1e6 / median_rate(single, 200, reps):.1f}")


if __name__ == "__main__":
    main()
