"""Field actions (tokenize, detokenize, redact, mask, hash, tee) behind one batch interface.

Empty until the tokenization capability lands; the package exists so the
layout of DESIGN.md is visible from the start.
"""
