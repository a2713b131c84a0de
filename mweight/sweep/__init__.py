"""Hyper-parameter sweeps and multi-seed studies on Ray Tune (``mweight sweep``).

The package, one job per module:

- :mod:`.space`: the search-space language (parse, check against the config); no Ray needed;
- :mod:`.trials`: trial planning (draw the variants, one run directory per resolved config);
- :mod:`.execution`: the Ray runtime, the trainable every trial runs, ASHA, progress; also the
  ``ray`` backend of :func:`mweight.seeds.run_seeds` (``mweight train --seeds ... --parallel``);
- :mod:`.results`: the results table, mean ± std over seeds, results.md, best_config.yaml, plots;
- :mod:`.driver`: :func:`run_sweep`, which strings them together.

``import mweight.sweep`` needs neither Ray nor torch; the names below are its public API.
"""
from .driver import SweepResult, run_sweep
from .execution import INSTALL_HINT, local_cpus, ray_runtime, require_ray, run_trials
from .results import best_trial, collect_results, group_over_seeds, rank, write_plots, write_results
from .space import FUNCTIONS, SETTINGS_DEFAULTS, Func, Grid, Space, load_space, parse_space, unflatten, validate_space
from .trials import TRIAL_MARKER, Trial, draw_variants, plan_trials, trial_complete, trial_hash

__all__ = [
    "FUNCTIONS", "INSTALL_HINT", "SETTINGS_DEFAULTS", "TRIAL_MARKER", "Func", "Grid", "Space", "SweepResult", "Trial",
    "best_trial", "collect_results", "draw_variants", "group_over_seeds", "load_space", "local_cpus", "parse_space",
    "plan_trials", "rank", "ray_runtime", "require_ray", "run_sweep", "run_trials", "trial_complete", "trial_hash",
    "unflatten", "validate_space", "write_plots", "write_results",
]
