"""Reproductions of the paper's experiments, as library code (``mweight repro ...``).

:mod:`mweight.repro.dna` runs the synthetic DNA-sequence experiments of docs/method.md
section 6 (additive, XOR, degree inflation) over several seeds, writes the results
table, checks the claims against the thresholds of the reproduction, and draws the
figures (:mod:`mweight.repro.figures`). ``paper_repro/`` only holds thin entry points.
"""
from .dna import EXPERIMENTS, Check, ExperimentSpec, Variant, run_dna

__all__ = ["EXPERIMENTS", "Check", "ExperimentSpec", "Variant", "run_dna"]
