"""Command-line interface: ``cameras explain | compare | evaluate | sanity | attack``."""
