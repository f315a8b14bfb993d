"""Analysis of recorded runs: non-finite origins, health, diff, verify.

The public API is :mod:`gradtrace.tracer`; these modules are its parts."""
