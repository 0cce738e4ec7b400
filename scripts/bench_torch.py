"""PyTorch side of `npm run bench` (section `pytorch`): the classic VAE
(784-400-20, relu, bernoulli, Adam 1e-3, batch-mean negative ELBO) in PyTorch,
driven line by line from scripts/bench.js so that its rounds alternate with
vae-node's in the same run.

  bench_torch.py DATA ROWS COLS TORCH_THREADS
    DATA: raw little-endian float32 rows (ROWS x COLS), the images bench.js trains on.
    The BLAS threads come from the environment (OPENBLAS_NUM_THREADS), set by bench.js.
  stdin commands, one JSON line answered for each:
    train BATCH     one shuffled epoch over the data: {"seconds": s}
    encode BATCH    encoder mean for the first BATCH rows, repeated for >= 0.1 s: {"seconds": s per call}
    info            {"torch": version, "threads": n, "blas": the BLAS library loaded}
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LATENT = 20


class ClassicVae(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.enc = nn.Linear(n, 400)
        self.head = nn.Linear(400, 2 * LATENT)
        self.dec = nn.Linear(LATENT, 400)
        self.out = nn.Linear(400, n)

    def forward(self, x, eps):
        mean, logvar = self.head(F.relu(self.enc(x))).chunk(2, dim=1)
        z = mean + torch.exp(0.5 * logvar) * eps
        logits = self.out(F.relu(self.dec(z)))
        reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = 0.5 * torch.sum(torch.exp(logvar) - logvar - 1 + mean * mean)
        return (reconstruction + kl) / x.shape[0]

    def encode_mean(self, x):
        h = F.relu(self.enc(x))
        return F.linear(h, self.head.weight[:LATENT], self.head.bias[:LATENT])


def blas_name():
    """Which BLAS the torch build loaded (Debian's torch calls the system libblas.so.3)."""
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
    except OSError:
        return "unknown BLAS"
    for marker, name in (("openblas", "OpenBLAS"), ("libblis", "BLIS"), ("libmkl", "MKL"), ("libblas.so", "reference BLAS")):
        if marker in maps:
            return name
    return "unknown BLAS"


def main():
    path, rows, cols, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    x = torch.from_numpy(np.fromfile(path, dtype="<f4", count=rows * cols).reshape(rows, cols))
    model = ClassicVae(cols)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_epoch(batch):
        order = torch.randperm(rows)
        for start in range(0, rows, batch):
            xb = x[order[start:start + batch]]
            eps = torch.randn(xb.shape[0], LATENT)
            optimizer.zero_grad(set_to_none=True)
            model(xb, eps).backward()
            optimizer.step()

    def encode(batch):
        xb = x[:batch]
        with torch.inference_mode():
            model.encode_mean(xb)  # untimed, as bench.js's timeLoop
            calls, start = 0, time.perf_counter()
            while True:
                model.encode_mean(xb)
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= 0.1:
                    return elapsed / calls

    for line in sys.stdin:
        command, *args = line.split()
        if command == "train":
            start = time.perf_counter()
            train_epoch(int(args[0]))
            answer = {"seconds": time.perf_counter() - start}
        elif command == "encode":
            answer = {"seconds": encode(int(args[0]))}
        elif command == "info":
            answer = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_name()}
        else:
            answer = {"error": f"unknown command {command!r}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
