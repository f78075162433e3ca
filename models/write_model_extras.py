"""Write the files that ship beside the Fashion-MNIST pipeline: prompt banks and memorized images.

- `ablate_prompts/instance.txt`, `memorization.txt`: lines with `{anchor}` once, in the
  model's caption language, with a detail phrase so that every line is distinct.
- `ablate_prompts/style.txt`: plain captions of ordinary unstyled pictures.
- `memorized/<name>.png`: the memorized training images in the plain look, 32x32 RGB.

    python models/write_model_extras.py --model models/fashion-sd
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ablation_core.fashion.prompt_banks import instance_bank, memorization_bank, style_bank  # noqa: E402
from ablation_core.fashion.dataset import load_split, to_grey_tensor  # noqa: E402
from ablation_core.fashion.memorized import MEMORIZED_IMAGES, memorized_file  # noqa: E402
from ablation_core.fashion.styles import render  # noqa: E402


def write_banks(model: Path) -> None:
    folder = model / "ablate_prompts"
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (("instance", instance_bank()), ("style", style_bank()), ("memorization", memorization_bank())):
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
        print(f"wrote {folder / name}.txt: {len(lines)} prompts")


def write_memorized(model: Path) -> None:
    images = load_split("train").images
    for memorized in MEMORIZED_IMAGES:
        rgb = render(to_grey_tensor(images[memorized.index : memorized.index + 1]), "plain")[0]
        pixels = (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        path = model / memorized_file(memorized)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/fashion-sd"), help="pipeline folder")
    args = parser.parse_args()
    write_banks(args.model)
    write_memorized(args.model)


if __name__ == "__main__":
    main()
