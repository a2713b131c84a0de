"""Bring datasets in: every common format -> one mweight dataset ``.npz``.

Modules: :mod:`.csd` (read/write CMU-SDK computational sequences, eagerly or one
video at a time), :mod:`.align` (vectorised SDK-exact alignment),
:mod:`.pipeline` (the shared path from ``.csd`` files or pickles to the ``.npz``,
parametrised by a ``DatasetSpec``), :mod:`.pickles` (MMSA and MulT/MultiBench
pickles, restricted unpickler), :mod:`.features` (utterance-level features),
:mod:`.folds` (standard folds: MOSI in code, MOSEI in ``folds_mosei.json``, user
folds files), :mod:`.mosi` (CMU-MOSI), :mod:`.datasets` (CMU-MOSEI, CH-SIMS, any
CMU-SDK dataset), :mod:`.download` (optional SDK download).
"""
