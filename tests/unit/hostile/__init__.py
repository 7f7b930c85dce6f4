"""Hostile input: stack files, the command line and stack creation, refused with clean lines."""
