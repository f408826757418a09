"""Running the stages: the resumable, shardable runner (:mod:`~stepdpo.pipeline.runner`) and the
whole data pipeline from one YAML file (:mod:`~stepdpo.pipeline.run`)."""
