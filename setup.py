"""Thin shim: the real metadata lives in pyproject.toml."""

from setuptools import setup

setup()
