"""Reading runs back: the Store, one run's RunView, selections, export, display.

The public API is :mod:`gradtrace.tracer`; these modules are its parts."""
