"""Evaluation outputs: the JSON summary, a markdown table and a before/after PNG grid."""

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ablation_core.evaluation.sampling import sample_plan

COLUMNS = (
    ("target acc", "target_accuracy"),
    ("target score", "target_score"),
    ("misspelled acc", "misspelled_accuracy"),
    ("surrounding acc", "surrounding_accuracy"),
    ("memorization", "target_memorization"),
)


def _pair(entry: dict, key: str) -> str:
    before, after = entry.get(f"{key}_before"), entry.get(f"{key}_after")
    if before is None:
        return "–"
    return f"{before:.2f} → {after:.2f}"


def markdown_table(result: dict) -> str:
    """Render one row per concept: before → after for each metric, then the KIDs."""
    header = ["kind", "target", "anchor", *(name for name, _ in COLUMNS), "max surrounding drop", "anchor KID", "surrounding KID"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in result["concepts"]:
        concept = entry["concept"]
        cells = [concept["kind"], concept["target"], concept["anchor"]]
        cells += [_pair(entry, key) for _, key in COLUMNS]
        cells.append(f"{entry['surrounding_max_drop']:.2f}" if "surrounding_max_drop" in entry else "–")
        cells.append(f"{entry['anchor_kid']:.4f}" if "anchor_kid" in entry else "–")
        cells.append(f"{entry['surrounding_kid']:.4f}" if "surrounding_kid" in entry else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def before_after_grid(result: dict, columns: int = 8, scale: int = 2) -> Image.Image:
    """Tile each group's samples in two rows, base above ablated, one band per group."""
    samples = result["_samples"]
    bands = []
    labels = []  # (top row in grid pixels, row height, text)
    top = 0
    for group in samples["groups"]:
        items = sample_plan(group.prompts, min(columns, result["num_samples"]), result["seed"])
        if not items:
            continue
        rows = [torch.cat(list(cache.stack(items)), dim=2) for cache in (samples["before"], samples["after"])]
        band = torch.cat(rows, dim=1)
        separator = torch.ones(3, 2, band.shape[2])
        row_height = rows[0].shape[1]
        labels += [(top, row_height, f"{group.name}: base"), (top + row_height, row_height, f"{group.name}: ablated")]
        top += band.shape[1] + separator.shape[1]
        bands += [band, separator]
    grid = torch.cat(bands[:-1], dim=1) if bands else torch.zeros(3, 8, 8)
    pixels = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(pixels)
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return _with_labels(image, [(top * scale, height * scale, text) for top, height, text in labels])


LABEL_WIDTH = 200  # pixels of the caption column left of the grid


def _with_labels(image: Image.Image, labels: list[tuple[int, int, str]]) -> Image.Image:
    """Add a white column on the left that names each row: its prompt group, base or ablated."""
    labelled = Image.new("RGB", (image.width + LABEL_WIDTH, image.height), "white")
    labelled.paste(image, (LABEL_WIDTH, 0))
    draw = ImageDraw.Draw(labelled)
    for top, height, text in labels:
        draw.text((4, top + max(height // 2 - 6, 0)), text[:32], fill="black")
    return labelled


def write_outputs(result: dict, folder: Path) -> dict[str, Path]:
    """Write result.json, result.md and grid.png into `folder`; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "result.json", "markdown": folder / "result.md", "grid": folder / "grid.png"}
    public = {key: value for key, value in result.items() if not key.startswith("_")}
    paths["json"].write_text(json.dumps(public, indent=2) + "\n")
    paths["markdown"].write_text(markdown_table(public))
    before_after_grid(result).save(paths["grid"])
    return paths
