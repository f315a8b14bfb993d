"""Helpers shared by the tests (not test modules): the reference training run and
its subprocesses (``trace``), the two-run comparison fixtures (``compare``), the
lecture's own Value class (``lecture``), whether the tests run in CI (``ci``)."""
