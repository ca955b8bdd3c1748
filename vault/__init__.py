"""The token vault: record format, record encryption and storage backends.

Empty until the tokenization capability lands (see DESIGN.md, "Tokens and the
vault record").
"""
