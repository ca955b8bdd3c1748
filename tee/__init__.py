"""tee package."""
