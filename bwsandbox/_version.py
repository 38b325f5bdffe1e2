"""The package version, in a module of its own: the CLI and the certification
report read it without importing the public API's facade (`bwsandbox`)."""

__version__ = "0.1.0"
