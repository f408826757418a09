"""stepdpo: Step-DPO (Lai et al., 2024) -- step-wise preference data and training for math reasoning.

The pipeline of the paper, one module a stage: :mod:`stepdpo.collect` (error collection),
:mod:`stepdpo.locate` (step localization), :mod:`stepdpo.rectify` (rectification),
:mod:`stepdpo.build` (pairs), :mod:`stepdpo.train` (eq. 2), :mod:`stepdpo.evaluate`.
All stages read and write the records of :mod:`stepdpo.records`.
"""

__version__ = "0.1.0"
