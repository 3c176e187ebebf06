"""Case packs: building, signing, verifying and installing."""
