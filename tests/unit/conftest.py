"""Unit tests: this directory is on sys.path (pytest's rootdir conftest), so tests share fake_api.py."""
