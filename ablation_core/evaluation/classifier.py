"""The evaluator: a small CNN that plays CLIP's role for the Fashion-MNIST model.

It names the class (ten Fashion-MNIST classes) and the style (plain or one of the image
styles) of a 32x32 RGB image, and its penultimate layer gives the features for KID. A saved
evaluator is a folder with `config.json` (architecture, input format, memorization
threshold), `labels.json` (class and style names, in head order) and `model.safetensors`.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_NAME = "config.json"
LABELS_NAME = "labels.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class ClassifierConfig:
    """Architecture and input format of the evaluator."""

    channels: tuple[int, ...] = (16, 32, 64)
    feature_dim: int = 128
    num_classes: int = 10
    num_styles: int = 4
    image_size: int = 32
    # Inputs are RGB in [0, 1], shape (N, 3, image_size, image_size).
    input_range: tuple[float, float] = (0.0, 1.0)
    memorization: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "ClassifierConfig":
        data = dict(data)
        data["channels"] = tuple(data["channels"])
        data["input_range"] = tuple(data["input_range"])
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class FashionClassifier(nn.Module):
    """CNN with a class head and a style head on a shared penultimate feature vector."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        widths = (3, *config.channels)
        self.body = nn.Sequential(*(_block(a, b) for a, b in zip(widths, widths[1:])))
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(self._flat_size(), config.feature_dim), nn.ReLU(inplace=True))
        self.class_head = nn.Linear(config.feature_dim, config.num_classes)
        self.style_head = nn.Linear(config.feature_dim, config.num_styles)

    def _flat_size(self) -> int:
        side = self.config.image_size // 2 ** len(self.config.channels)
        return self.config.channels[-1] * side * side

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Return the penultimate features (N, feature_dim) of RGB images in [0, 1]."""
        return self.features(self.body(images * 2 - 1))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return class logits, style logits and penultimate features."""
        features = self.embed(images)
        return self.class_head(features), self.style_head(features), features


@dataclass
class Evaluator:
    """A loaded evaluator with its label names."""

    model: FashionClassifier
    class_names: tuple[str, ...]
    style_names: tuple[str, ...]
    path: Path | None = None

    @property
    def memorization(self) -> dict:
        return self.model.config.memorization

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """Classify float RGB images (N, 3, 32, 32) in [0, 1]; return probabilities and features."""
        self.model.eval()
        outputs = {"class_probs": [], "style_probs": [], "features": []}
        for start in range(0, len(images), batch_size):
            class_logits, style_logits, features = self.model(images[start : start + batch_size].float())
            outputs["class_probs"].append(class_logits.softmax(-1))
            outputs["style_probs"].append(style_logits.softmax(-1))
            outputs["features"].append(features)
        return {key: torch.cat(value) if value else torch.empty(0) for key, value in outputs.items()}


def save_evaluator(evaluator: Evaluator, folder: Path) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_NAME).write_text(json.dumps(asdict(evaluator.model.config), indent=2) + "\n")
    labels = {"class": list(evaluator.class_names), "style": list(evaluator.style_names)}
    (folder / LABELS_NAME).write_text(json.dumps(labels, indent=2) + "\n")
    state = {name: tensor.detach().contiguous() for name, tensor in evaluator.model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME))


def is_evaluator_folder(folder: Path) -> bool:
    folder = Path(folder)
    return all((folder / name).is_file() for name in (CONFIG_NAME, LABELS_NAME, WEIGHTS_NAME))


def load_evaluator(folder: Path) -> Evaluator:
    """Load an evaluator folder written by `save_evaluator`."""
    folder = Path(folder)
    config = ClassifierConfig.from_dict(json.loads((folder / CONFIG_NAME).read_text()))
    labels = json.loads((folder / LABELS_NAME).read_text())
    model = FashionClassifier(config)
    model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
    model.eval()
    return Evaluator(model=model, class_names=tuple(labels["class"]), style_names=tuple(labels["style"]), path=folder)
