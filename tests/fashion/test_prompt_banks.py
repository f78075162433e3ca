from ablation_core.fashion.prompt_banks import instance_bank, memorization_bank, style_bank
from ablation_core.fashion.styles import STYLE_NAMES


def test_banks_hold_200_distinct_prompts():
    for bank in (instance_bank(), style_bank(), memorization_bank()):
        assert len(bank) >= 200
        assert len(set(bank)) == len(bank)


def test_anchor_banks_hold_placeholder_once():
    for bank in (instance_bank(), memorization_bank()):
        for line in bank:
            assert line.count("{anchor}") == 1, line


def test_style_bank_is_unstyled():
    for line in style_bank():
        assert "{" not in line
        assert "style" not in line
        assert not any(style in line for style in STYLE_NAMES), line
