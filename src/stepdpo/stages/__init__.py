"""The stages of the data pipeline (Sec. 3.2), one module a stage, each a plain core: records in,
records out. :mod:`~stepdpo.stages.collect` (error collection, D1), :mod:`~stepdpo.stages.locate`
(step localization, D2), :mod:`~stepdpo.stages.rectify` (rectification, eq. 3),
:mod:`~stepdpo.stages.pairs` (the preference data D) and :mod:`~stepdpo.stages.evaluate`.
"""
