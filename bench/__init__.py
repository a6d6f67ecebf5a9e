"""`make bench`: what users see, over HTTP, against the server `make run` uses.

Run with `python -m bench` (what `make bench` does). It works on a site of its own
(RAGSITE_DATA_DIR, .data/bench by default) so a running `make run` is left alone, and
writes bench/results/latest.md, latest.json and latest.png.
"""
