"""Training: the preference losses of eq. 2 (:mod:`~stepdpo.training.losses`), prefix-shared packing
(:mod:`~stepdpo.training.packing`), the reference log-probs (:mod:`~stepdpo.training.reference`),
the trainer (:mod:`~stepdpo.training.trainer`), supervised fine-tuning
(:mod:`~stepdpo.training.sft`) and the training logs (:mod:`~stepdpo.training.logs`)."""
