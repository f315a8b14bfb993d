"""Storage: the schema, opening a database, file checks, the byte formats, the per-run totals.

The public API is :mod:`gradtrace.tracer`; these modules are its parts."""
