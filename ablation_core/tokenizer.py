"""The CLIP BPE tokenizer shipped with the package, loadable without a network."""

from pathlib import Path

from transformers import CLIPTokenizer

TOKENIZER_FILES = Path(__file__).parent / "tokenizer_files"

# CLIP's text encoders read at most 77 tokens, start and end tokens included.
CLIP_MAX_LENGTH = 77


def load_clip_tokenizer(max_length: int = CLIP_MAX_LENGTH, pad_token: str = "<|endoftext|>") -> CLIPTokenizer:
    """Load the shipped CLIP tokenizer with the given context length.

    SD 1.x pads with the end token; SD 2.x and SDXL's second encoder pad with "!" (id 0).
    """
    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER_FILES), pad_token=pad_token)
    tokenizer.model_max_length = max_length
    return tokenizer
