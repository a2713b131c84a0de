"""Prepare CMU-MOSI for mweight: a thin entry point to ``mweight prepare mosi``.

Same arguments as the CLI (see ``python data_prep/prepare_mosi.py --help``); all
logic lives in :mod:`mweight.prepare`. Example:

    python data_prep/prepare_mosi.py --csd-dir ~/data/mosi_csd --out data/mosi_words.npz
"""
import sys

from mweight.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare", "mosi", *sys.argv[1:]]))
