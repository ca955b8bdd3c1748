"""A small existing web app used to demonstrate tokengate; it imports nothing of tokengate."""
