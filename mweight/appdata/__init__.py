"""Everything the Streamlit app shows, computed without Streamlit (the pages stay thin).

- **Safe discovery** (:func:`discover_runs`): run folders are found *inside* the runs
  folder the app was started with, without following symbolic links; a page can only
  open an entry of that list (:func:`find_entry`), so a query parameter or a text input
  can never name a path outside it (no ``..``, no absolute paths).
- **Loading** (:func:`load_group`): one run or one ``seed_*`` group through
  :func:`mweight.runs.load_run`; incomplete, old or corrupt folders raise
  :class:`~mweight.errors.MWeightError` with a one-line message the page shows.
- **Tables for the charts**: β share mean ± std over seeds, labelled metrics,
  history in long form, segments with their per-block contributions, waterfalls,
  run comparisons, and a plain-language reading of β.
- **Faithfulness** (:func:`faithfulness`): β next to the importance measured by
  removing one block's contribution (exact, the prediction is additive over blocks)
  and by permuting one modality's inputs; uses :func:`mweight.analysis.ablate_run`.
- **Training from the app** (:func:`train_synthetic`, :func:`train_on_file`): through
  :func:`mweight.seeds.train_runs` (the one training loop) with an epoch callback.

Nothing here unpickles a file: runs are JSON/YAML/CSV, models load with
``weights_only=True``, datasets with ``allow_pickle=False``.

One module per part of the app: :mod:`.groups` (runs folder, run groups, attribution, overview
tables), :mod:`.dynamics`, :mod:`.segments`, :mod:`.compare`, :mod:`.faithfulness`, :mod:`.training`,
:mod:`.unimodal` (Shapley values against human unimodal labels).
Every name is re-exported here: pages use ``from mweight import appdata as A``.
"""
from ..errors import MWeightError  # noqa: F401  (pages catch A.MWeightError)
from .groups import (  # noqa: F401
    ATTRIBUTION_FILE,
    DEFAULT_RUNS_DIR,
    MAIN_METRICS,
    MAX_DEPTH,
    ROOT_ENV,
    RunEntry,
    RunGroup,
    SEED_INTERVAL,
    SKIP_DIRS,
    VERDICTS,
    _block_phrase,
    _finite,
    _interval,
    _pct,
    _problem,
    _read_json_quiet,
    _study_ci,
    attribution_context,
    attribution_table,
    block_kind,
    definitions,
    discover_runs,
    find_entry,
    folder_stamp,
    group_reading,
    headline_metrics,
    inside,
    load_group,
    md,
    metric_label,
    metrics_table,
    modality_attribution_table,
    read_attribution,
    reading_sentence,
    runs_root,
    safe_join,
    share_table,
    trust,
)
from .dynamics import (  # noqa: F401
    _histories,
    _seed_name,
    history_long,
    valid_metric_long,
)
from .segments import (  # noqa: F401
    SORTS,
    _waterfall_frame,
    dataset_path,
    flips_outcome,
    load_transcripts,
    outcome_value,
    segments_frame,
    shapley_columns,
    shapley_waterfall,
    sort_segments,
    waterfall,
)
from .compare import (  # noqa: F401
    comparability_key,
    comparable_default,
    compare_frames,
)
from .faithfulness import (  # noqa: F401
    _metric_drop,
    ablation_results,
    attribution_on_split,
    faithfulness,
    faithfulness_mean,
    saved_ablation_table,
)
from .training import (  # noqa: F401
    DEFAULT_PATH_PS,
    DEMO,
    PATHS_FOLDER,
    _p_name,
    _slug,
    dataset_files,
    path_folder,
    path_frame,
    recovered_vs_truth,
    train_on_file,
    train_path,
    train_synthetic,
    truth_for,
)
from .unimodal import (  # noqa: F401
    UNIMODAL_COLUMNS,
    UNIMODAL_NOTE,
    unimodal_table,
)
