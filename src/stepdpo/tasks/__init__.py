"""Tasks with exact step checkers. The embedded default is :mod:`stepdpo.tasks.arithmetic`."""
