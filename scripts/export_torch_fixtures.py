"""Export the PyTorch models of tests/fixtures/ to ONNX, as docs/models.md tells trainers to.

PyTorch is too large for CI, so the tests use the .onnx files this script wrote once:

    pip install torch onnxscript     # the CPU wheel is enough
    python scripts/export_torch_fixtures.py

Each model is trained for a few epochs on scikit-learn's digits (8x8 images as 64 feature
columns, 10 classes, seeded), takes the raw (rows, 64) float features and returns the labels
(ArgMax) first and the probabilities (Softmax) second: the model contract of docs/models.md.

- torch_mlp_digits.onnx: an MLP (Linear, BatchNorm1d, ReLU, Dropout, GELU), the new
  (dynamo) exporter;
- torch_cnn_digits.onnx: a CNN (view to 1x8x8, Conv2d, BatchNorm2d, ReLU, MaxPool2d,
  AvgPool2d, AdaptiveAvgPool2d, Linear), the new exporter;
- torch_cnn_digits_legacy.onnx: the same CNN through the TorchScript exporter
  (dynamo=False), which writes Shape, Gather, Constant, Unsqueeze and Concat for the view;
- torch_mlp_logits.onnx: the MLP returning logits only (what the model contract refuses,
  with a hint);
- torch_mlp_external.onnx: the MLP exported with external_data=True, its weights in a
  separate file that is not kept (what the allow-list refuses, naming external_data=False).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
FEATURES = 64


class MLP(nn.Module):
    def __init__(self, logits_only: bool = False) -> None:
        super().__init__()
        self.logits_only = logits_only
        self.net = nn.Sequential(
            nn.Linear(FEATURES, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(64, 32), nn.GELU(), nn.Linear(32, 10),
        )

    def forward(self, x: torch.Tensor):
        logits = self.net(x / 16.0)
        if self.logits_only:
            return logits
        return logits.argmax(dim=1), torch.softmax(logits, dim=1)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor):
        x = (x / 16.0).view(x.size(0), 1, 8, 8)  # the task's 64 columns, as one 8x8 image
        logits = self.head(torch.flatten(self.features(x), 1))
        return logits.argmax(dim=1), torch.softmax(logits, dim=1)


def train(model: nn.Module, X: np.ndarray, y: np.ndarray, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    x_t, y_t = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y_t)).split(64):
            optimiser.zero_grad()
            out = model(x_t[batch])
            logits = out if isinstance(out, torch.Tensor) else torch.log(out[1] + 1e-9)
            loss = nn.functional.cross_entropy(logits, y_t[batch]) if out is logits else \
                nn.functional.nll_loss(logits, y_t[batch])
            loss.backward()
            optimiser.step()
    return model.eval()  # eval mode: no Dropout, BatchNorm with its running statistics


def export(model: nn.Module, path: Path, *, dynamo: bool = True, external: bool = False,
           outputs: tuple[str, ...] = ("label", "probabilities")) -> None:
    """torch.onnx.export with the options docs/models.md gives: a dynamic first axis, one
    file (external_data=False), named input and outputs."""
    example = (torch.zeros(4, FEATURES),)
    options: dict = {"input_names": ["X"], "output_names": list(outputs), "dynamo": dynamo}
    if dynamo:
        options["dynamic_shapes"] = ({0: torch.export.Dim("rows")},)
        options["external_data"] = external
    else:
        options["dynamic_axes"] = {"X": {0: "rows"}, **{o: {0: "rows"} for o in outputs}}
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, example, str(path), **options)


def main() -> None:
    X, y = load_digits(return_X_y=True)
    OUT.mkdir(parents=True, exist_ok=True)
    mlp = train(MLP(), X, y, epochs=20)
    export(mlp, OUT / "torch_mlp_digits.onnx")
    cnn = train(CNN(), X, y, epochs=20)
    export(cnn, OUT / "torch_cnn_digits.onnx")
    export(cnn, OUT / "torch_cnn_digits_legacy.onnx", dynamo=False)
    logits = MLP(logits_only=True)
    logits.load_state_dict(mlp.state_dict())
    export(logits.eval(), OUT / "torch_mlp_logits.onnx", outputs=("logits",))
    with tempfile.TemporaryDirectory() as tmp:
        export(mlp, Path(tmp) / "external.onnx", external=True)
        data = [f for f in os.listdir(tmp) if f != "external.onnx"]
        if not data:
            sys.exit("the exporter kept every weight inside the file: nothing external to test")
        (OUT / "torch_mlp_external.onnx").write_bytes((Path(tmp) / "external.onnx").read_bytes())
    for path in sorted(OUT.glob("torch_*.onnx")):
        print(f"{path.name}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
