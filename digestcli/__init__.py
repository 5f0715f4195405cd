"""digest: write, check, render and mail a weekly newsletter from Markdown."""

__version__ = "0.1.0"
