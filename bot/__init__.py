"""The conversation core: everything that is not a platform."""
