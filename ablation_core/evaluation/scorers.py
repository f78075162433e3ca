"""Scorers that play CLIP's role: they judge what a generated image shows and embed it for KID.

`ClassifierScorer` wraps the Fashion-MNIST evaluator (class and style heads). `ClipScorer`
wraps a transformers CLIPModel loaded from a local folder, for real Stable Diffusion models.
It judges an image by whether it is closer to the expected text than to the alternative
text, as CLIP accuracy does in Kumari et al., arXiv 2303.13516.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ablation_core.evaluation.classifier import Evaluator

# CLIP's image normalization (Radford et al., 2021), the values of CLIPImageProcessor.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Check:
    """The condition a sample must meet to count as a hit.

    `kind` is "class" or "style" (the classifier names `label`), or "text" (CLIP finds the
    image closer to the text `label` than to the text `alternative`).
    """

    kind: str
    label: str
    alternative: str | None = None


@dataclass
class Judgement:
    hits: torch.Tensor  # bool (N,)
    scores: torch.Tensor  # float (N,): classifier probability, or CLIP score


class ClassifierScorer:
    name = "classifier"

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    def knows_class(self, label: str) -> bool:
        return label in self.evaluator.class_names

    def knows_style(self, label: str) -> bool:
        return label in self.evaluator.style_names

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.evaluator.predict(self._resize(images))["features"]

    def judge(self, images: torch.Tensor, check: Check) -> Judgement:
        outputs = self.evaluator.predict(self._resize(images))
        if check.kind == "class":
            names, probs = self.evaluator.class_names, outputs["class_probs"]
        elif check.kind == "style":
            names, probs = self.evaluator.style_names, outputs["style_probs"]
        else:
            raise ValueError(f"the classifier evaluator cannot judge a {check.kind!r} check")
        index = names.index(check.label)
        return Judgement(hits=probs.argmax(-1) == index, scores=probs[:, index])

    def _resize(self, images: torch.Tensor) -> torch.Tensor:
        size = self.evaluator.model.config.image_size
        if images.shape[-1] == size and images.shape[-2] == size:
            return images
        return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


class ClipScorer:
    name = "clip"

    def __init__(self, model, tokenizer):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.image_size = model.config.vision_config.image_size

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        pixels = F.interpolate(images.float(), size=(self.image_size, self.image_size), mode="bicubic", align_corners=False)
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        output = self.model.get_image_features(pixel_values=(pixels.clamp(0, 1) - mean) / std)
        return _embedding(output)

    @torch.no_grad()
    def text_features(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(texts, padding="max_length", truncation=True, max_length=self.model.config.text_config.max_position_embeddings, return_tensors="pt")
        output = self.model.get_text_features(input_ids=tokens.input_ids, attention_mask=tokens.attention_mask)
        return _embedding(output)

    def judge(self, images: torch.Tensor, check: Check) -> Judgement:
        if check.kind != "text" or check.alternative is None:
            raise ValueError(f"the CLIP evaluator needs a text check with an alternative, got {check}")
        image = F.normalize(self.features(images), dim=-1)
        text = F.normalize(self.text_features([check.label, check.alternative]), dim=-1)
        similarity = image @ text.T
        # CLIP score as in Hessel et al. (2021): 100 * max(cosine, 0), here with weight 1.
        return Judgement(hits=similarity[:, 0] > similarity[:, 1], scores=100 * similarity[:, 0].clamp_min(0))


def _embedding(output) -> torch.Tensor:
    # transformers 5 returns a model output object where 4.x returned the tensor.
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output
