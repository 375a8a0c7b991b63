"""``python -m socialsuggest.cli``: the same entry point as the console script."""

from socialsuggest.cli.main import main

main()
