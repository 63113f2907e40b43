"""Test helpers shared by several test files: the golden model data, an X server, a Tk event logger, the tiny tokenizer."""
