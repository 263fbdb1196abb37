"""Corpora that ship inside the package: the book's Time Machine."""
