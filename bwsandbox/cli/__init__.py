"""Thin commands; `render.py` is the only module that uses rich."""
