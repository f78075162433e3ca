"""Train the evaluator classifier on real Fashion-MNIST images, in the generator's rendering.

The classifier plays CLIP's role in evaluation: it names the class and the style of a
32x32 RGB image, and its penultimate features serve KID. It trains on the real training
images, each drawn in the plain look or one of the styles exactly as the generator's
training data is, and it reports its accuracy on the real test images. The memorization
threshold is calibrated here on real data as well (see `calibrate_memorization`).

    nice -n 10 python models/train_classifier.py --out models/fashion-sd/evaluator
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Sleeping rather than spinning worker threads; see models/train_fashion_sd.py.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import structlog
import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ablation_core.evaluation.classifier import ClassifierConfig, Evaluator, FashionClassifier, save_evaluator  # noqa: E402
from ablation_core.evaluation.memorization import pixel_similarity  # noqa: E402
from ablation_core.fashion.captions import CLASS_NAMES  # noqa: E402
from ablation_core.fashion.dataset import load_split, to_grey_tensor  # noqa: E402
from ablation_core.fashion.memorized import MEMORIZED_IMAGES, memorized_file  # noqa: E402
from ablation_core.fashion.styles import STYLE_LABELS, render, render_mixed  # noqa: E402

log = structlog.get_logger()

# A memorized-image threshold sits this far above the highest similarity of any other real
# image, so no real image but the memorized one counts as a copy.
THRESHOLD_MARGIN = 0.05


def augment(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift by up to 2 pixels, blur a third of the images and add faint noise.

    The generator's samples pass through an autoencoder, so they are slightly softer and
    noisier than the real images; these changes keep the classifier's decisions stable there.
    """
    shifts = torch.randint(-2, 3, (2,), generator=generator).tolist()
    pixels = torch.roll(pixels, shifts=shifts, dims=(2, 3))
    blurred = F.avg_pool2d(F.pad(pixels, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    chosen = (torch.rand(len(pixels), 1, 1, 1, generator=generator) < 1 / 3).float()
    pixels = chosen * blurred + (1 - chosen) * pixels
    noise = 0.03 * torch.randn(pixels.shape, generator=generator)
    return (pixels + noise).clamp(0, 1)


@torch.no_grad()
def evaluate_split(model: FashionClassifier, grey: torch.Tensor, labels: torch.Tensor) -> dict:
    """Return class accuracy per style and style accuracy on every image in every style."""
    model.eval()
    results = {}
    for style_id, style in enumerate(STYLE_LABELS):
        pixels = render(grey, style)
        class_logits, style_logits, _ = model(pixels)
        results[style] = {
            "class_accuracy": round(float((class_logits.argmax(-1) == labels).float().mean()), 4),
            "style_accuracy": round(float((style_logits.argmax(-1) == style_id).float().mean()), 4),
        }
    return results


@torch.no_grad()
def calibrate_memorization(train_grey: torch.Tensor, test_grey: torch.Tensor) -> dict:
    """Set the copy threshold: the highest similarity of any other real image, plus a margin."""
    pool = render(torch.cat([train_grey, test_grey]), "plain")
    entries = []
    for memorized in MEMORIZED_IMAGES:
        image = pool[memorized.index : memorized.index + 1]
        similarity = pixel_similarity(image, pool)[0]
        similarity[memorized.index] = -1.0
        entries.append({
            "caption": memorized.caption,
            "index": memorized.index,
            # The image ships in the model folder, beside this evaluator folder.
            "file": f"../{memorized_file(memorized)}",
            "max_other_similarity": round(float(similarity.max()), 4),
        })
    highest = max(entry["max_other_similarity"] for entry in entries)
    return {
        "similarity": "pixel_ncc",
        "threshold": round(highest + THRESHOLD_MARGIN, 4),
        "calibration": f"highest normalized cross-correlation of any other of the 70,000 real images with a memorized image, plus {THRESHOLD_MARGIN}",
        "images": entries,
    }


def train(args) -> Evaluator:
    torch.manual_seed(args.seed)
    train_split = load_split("train")
    grey = to_grey_tensor(train_split.images)
    labels = torch.from_numpy(train_split.labels)
    config = ClassifierConfig(num_classes=len(CLASS_NAMES), num_styles=len(STYLE_LABELS))
    model = FashionClassifier(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * len(labels) // args.batch_size
    lr_schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps)
    generator = torch.Generator().manual_seed(args.seed)

    model.train()
    for step in tqdm(range(steps), mininterval=30, desc="classifier"):
        index = torch.randint(len(labels), (args.batch_size,), generator=generator)
        style_ids = torch.randint(len(STYLE_LABELS), (args.batch_size,), generator=generator)
        pixels = augment(render_mixed(grey[index], style_ids), generator)
        class_logits, style_logits, _ = model(pixels)
        loss = F.cross_entropy(class_logits, labels[index]) + F.cross_entropy(style_logits, style_ids)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_schedule.step()
        if step % 100 == 0:
            log.info("classifier_step", step=step, loss=round(loss.item(), 4))

    return Evaluator(model=model, class_names=CLASS_NAMES, style_names=STYLE_LABELS)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/fashion-sd/evaluator"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    evaluator = train(args)

    test_split = load_split("test")
    test_grey = to_grey_tensor(test_split.images)
    test_report = evaluate_split(evaluator.model, test_grey, torch.from_numpy(test_split.labels))
    log.info("classifier_test", **{style: json.dumps(values) for style, values in test_report.items()})

    evaluator.model.config.memorization = calibrate_memorization(to_grey_tensor(load_split("train").images), test_grey)
    save_evaluator(evaluator, args.out)
    report = {"test": test_report, "memorization": evaluator.model.config.memorization, "seconds": round(time.time() - started), "args": {k: str(v) for k, v in vars(args).items()}}
    (args.out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("classifier_saved", path=str(args.out), seconds=report["seconds"])


if __name__ == "__main__":
    main()
