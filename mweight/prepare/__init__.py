"""Bring CMU-MOSI in: every common format -> one mweight dataset ``.npz``.

Modules: :mod:`.csd` (read/write CMU-SDK computational sequences),
:mod:`.align` (vectorised SDK-exact alignment), :mod:`.pickles` (MMSA and
MulT/MultiBench pickles, restricted unpickler), :mod:`.features` (utterance-level
features), :mod:`.folds` (standard folds), :mod:`.mosi` (orchestration),
:mod:`.download` (optional SDK download).
"""
