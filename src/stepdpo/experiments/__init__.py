"""Experiments on top of the library: the paper's comparisons at small scale (:mod:`demo`), why
Step-DPO and DPO differ (:mod:`ablate`), and iterative rounds (:mod:`iterate`)."""
