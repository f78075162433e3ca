"""The `ablate` command line."""

import os

# Set before diffusers and transformers are imported, so their import-time advisories and
# weight-loading bars stay quiet and the CLI's own progress bars stay readable. HF_HUB_OFFLINE
# makes any accidental hub lookup fail at once instead of reaching for the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
