"""The `tizi` command line."""
