"""Text: splitting solutions into steps (:mod:`~stepdpo.text.steps`), the step-wise CoT prompt
(:mod:`~stepdpo.text.prompts`), tokenizing it (:mod:`~stepdpo.text.encoding`), and grading final
answers (:mod:`~stepdpo.text.grading`)."""
