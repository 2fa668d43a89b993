"""torch_export.py: the round trips of `cnnc export` (issue #13), run by
tests/torch_export.sh with Debian's python3-torch.

For every models/*.cnn: the exported module loads the cnnc checkpoint
(models/NAME.ckpt, converted to format v3 by the export; a network without
one gets PyTorch's initialization, written by save_cnnc: PyTorch -> cnnc) and
its eval log-probabilities equal cnnc's training code's (build/export/NAME-
logprobs) within 1e-4 with identical predictions, on the 10,000 MNIST test
images for the 28x28x1 networks, on random inputs for the others. The
state_dict written back by save_cnnc holds the same bits and builds the same
inference C (cnnc build --infer) as the checkpoint it came from; the ONNX
export passes onnx.checker when python3-onnx is installed; the README's numpy
reader reads what cnnc writes.
Usage: torch_export.py BUILD_DIR MNIST_DIR [NAME...]   Prints "RESULT run failed".
"""
import glob
import gzip
import importlib.util
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import torch

BUILD, MNIST = sys.argv[1], sys.argv[2]
NAMES = sys.argv[3:] or sorted(os.path.basename(p)[:-4] for p in glob.glob("models/*.cnn"))
CNNC = f"{BUILD}/cnnc"
RANDOM_N = 256
counts = {"run": 0, "failed": 0}


def check(desc, ok, detail=""):
    """One test line; a failure is counted and its detail printed."""
    counts["run"] += 1
    counts["failed"] += not ok
    print(f"{'ok  ' if ok else 'FAIL'} - {desc}" + (f"\n       {detail}" if detail and not ok else ""))
    return ok


def run(*args):
    """Runs a command; (exit status, its output)."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def idx(path):
    """An IDX file (raw or .gz) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_test():
    """The 10,000 test images and labels, or None without the data."""
    found = []
    for kind in ("images-idx3", "labels-idx1"):
        paths = [p for p in (f"{MNIST}/t10k-{kind}-ubyte.gz", f"{MNIST}/t10k-{kind}-ubyte") if os.path.exists(p)]
        if not paths:
            return None
        found.append(idx(paths[0]))
    return found


def module_of(directory, name):
    """Imports DIR/NAME.py, the exported module."""
    spec = importlib.util.spec_from_file_location(name, f"{directory}/{name}.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def readme_reader():
    """The numpy reader shown in README.md (between its markers), as a function."""
    with open("README.md") as f:
        text = f.read()
    code = re.search(r"<!-- numpy reader -->\n```python\n(.*?)```", text, re.S).group(1)
    scope = {}
    exec(code, scope)
    return scope["read_cnnc"]


def randomize(model):
    """PyTorch's init with BatchNorm made non-trivial: running stats and affine drawn."""
    torch.manual_seed(1)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)


def cnnc_logprobs(name, ckpt, x, work):
    """cnnc's training code's eval log-probabilities of x, [N, classes]."""
    xin, out = f"{work}/inputs.f32", f"{work}/logprobs.f32"
    x.astype("<f4").tofile(xin)
    rc, log = run(f"{BUILD}/export/{name}-logprobs", ckpt, xin, str(len(x)), out)
    if rc != 0:
        raise RuntimeError(log)
    return np.fromfile(out, dtype="<f4").reshape(len(x), -1)


def same_inference(name, a, b, work):
    """cnnc build --infer from checkpoints a and b: True/False, or None where
    the inference back end does not run this network yet (its message)."""
    outs = []
    for tag, ckpt in (("a", a), ("b", b)):
        d = f"{work}/infer_{tag}"
        rc, log = run(CNNC, "build", f"models/{name}.cnn", "-o", d, "--infer", "--weights", ckpt)
        if rc != 0:
            return None, log.strip().splitlines()[0]
        outs.append({f: open(f"{d}/{f}", "rb").read() for f in sorted(os.listdir(d))})
    return outs[0] == outs[1], ""


def round_trip(name, data):
    """Every check of one network."""
    work = f"{BUILD}/export/{name}/py"
    weights = f"models/{name}.ckpt" if os.path.exists(f"models/{name}.ckpt") else None
    rc, log = run(CNNC, "export", f"models/{name}.cnn", "--pytorch", "-o", work,
                  *(["--weights", weights] if weights else []))
    if not check(f"{name}: cnnc export", rc == 0, log):
        return
    m = module_of(work, name)
    model = getattr(m, "".join(p[:1].upper() + p[1:] for p in name.split("_")))()
    model.eval()
    if weights:
        ckpt = f"{work}/{name}.ckpt"
        m.load_cnnc(model, ckpt)
        origin = f"{weights} (converted to v3)"
    else:
        randomize(model)
        ckpt = f"{work}/from_torch.ckpt"
        m.save_cnnc(model, ckpt)
        origin = "PyTorch's init, written by save_cnnc"
    labels = None
    if m.INPUT == (1, 28, 28) and data is not None:
        images, labels = data
        x = ((images.astype(np.float64) / 255.0 - m.MEAN) / m.STD).astype(np.float32)[:, None]
        what = f"the {len(x):,} MNIST test images"
    else:
        x = torch.randn(RANDOM_N, *m.INPUT, generator=torch.Generator().manual_seed(2)).numpy()
        what = f"{RANDOM_N} random inputs"
    ours = cnnc_logprobs(name, ckpt, x, work)
    with torch.no_grad():
        theirs = torch.cat([model(torch.from_numpy(x[i:i + 500])) for i in range(0, len(x), 500)]).numpy()
    diff = float(np.abs(ours - theirs).max())
    differ = int((ours.argmax(1) != theirs.argmax(1)).sum())
    check(f"{name}: weights of {origin}: PyTorch's log-probs = cnnc's on {what}, max diff {diff:.2e} <= 1e-4",
          diff <= 1e-4)
    check(f"{name}: predictions differing on {what}: {differ}", differ == 0)
    if labels is not None:
        acc_t = 100.0 * float((theirs.argmax(1) == labels).mean())
        acc_c = 100.0 * float((ours.argmax(1) == labels).mean())
        check(f"{name}: test accuracy in PyTorch {acc_t:.2f}%, in cnnc {acc_c:.2f}%", acc_t == acc_c)
        if name == "mnist14k":
            check(f"{name}: 99.48% in PyTorch with models/mnist14k.ckpt", abs(acc_t - 99.48) < 1e-9)
    # PyTorch -> cnnc: the state_dict written back.
    back = f"{work}/back.ckpt"
    m.save_cnnc(model, back)
    a, _ = m.read_cnnc(ckpt)
    b, _ = m.read_cnnc(back)
    same = all(k in b and a[k].tobytes() == b[k].tobytes() for k in a if not k.startswith("momentum_buffer."))
    check(f"{name}: the state_dict written back holds the checkpoint's bits", same and len(b) ==
          len([k for k in a if not k.startswith("momentum_buffer.")]))
    rc, log = run(CNNC, "summary", f"models/{name}.cnn", "--weights", back)
    check(f"{name}: cnnc takes the checkpoint PyTorch wrote", rc == 0, log)
    equal, why = same_inference(name, weights or ckpt, back, work)
    if equal is None:
        print(f"       ({name}: no inference code to compare: {why})")
    else:
        check(f"{name}: cnnc build --infer gives the same C from the state_dict as from {weights or ckpt}", equal)
    # cnnc -> ONNX, through PyTorch.
    try:
        import onnx
    except ImportError:
        print(f"       ({name}: python3-onnx is not installed: no ONNX check)")
        return
    path = f"{work}/{name}.onnx"
    warnings.filterwarnings("ignore", category=UserWarning)  # the exporter's notes on constant folding
    torch.onnx.export(model, torch.zeros(1, *m.INPUT), path, input_names=["image"], output_names=["log_probs"],
                      dynamic_axes={"image": {0: "n"}, "log_probs": {0: "n"}}, opset_version=13)
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        ok, detail = True, ""
    except Exception as e:  # the checker's own exception types vary by version
        ok, detail = False, str(e)
    check(f"{name}: the ONNX export passes onnx.checker", ok, detail)


def command_line():
    """cnnc export's refusals: no format, no DIR, another network's weights."""
    work = f"{BUILD}/export/cli"
    rc, log = run(CNNC, "export", "models/mnist14k.cnn", "-o", work)
    check("cnnc export without --pytorch: usage error", rc == 2 and "export needs a format: --pytorch" in log, log)
    rc, log = run(CNNC, "export", "models/mnist14k.cnn", "--pytorch")
    check("cnnc export without -o: usage error", rc == 2 and "export needs -o DIR" in log, log)
    rc, log = run(CNNC, "export", "models/mnist14k.cnn", "--pytorch", "-o", work, "--weights", "models/lenet5.ckpt")
    check("cnnc export of another network's checkpoint: refused, naming it",
          rc == 1 and "models/lenet5.ckpt: checkpoint is of network 'lenet5', not 'mnist14k'" in log, log)
    rc, log = run(CNNC, "export", "models/mnist14k.cnn", "--pytorch", "-o", work, "--weights", "models/mnist14k.ckpt")
    check("cnnc export says it converts a version 1 checkpoint",
          rc == 0 and f"converted models/mnist14k.ckpt (checkpoint format version 1) to version 3: {work}/mnist14k.ckpt"
          in log, log)
    rc, log = run(CNNC, "export", "models/mnist14k.cnn", "--pytorch", "-o", work, "--weights", f"{work}/mnist14k.ckpt")
    check("cnnc export of a version 3 checkpoint: no conversion message", rc == 0 and "converted" not in log, log)


def main():
    command_line()
    data = mnist_test()
    if data is None:
        print(f"(no MNIST test set in {MNIST}: the 28x28 networks run on random inputs)")
    for name in NAMES:
        round_trip(name, data)
    # The README's reader reads what cnnc wrote, as the module's does.
    path = f"{BUILD}/export/mnist_resnet/py/mnist_resnet.ckpt"
    if os.path.exists(path):
        m = module_of(os.path.dirname(path), "mnist_resnet")
        ta, ma = readme_reader()(path)
        tb, mb = m.read_cnnc(path)
        check("the README's numpy reader reads a cnnc checkpoint as the module does",
              ma == mb and ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta))
    print(f"RESULT {counts['run']} {counts['failed']}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
