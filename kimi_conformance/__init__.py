"""A conformance kit for the Kimi (Moonshot AI) provider in Letta builds."""

__version__ = "0.1.0"
