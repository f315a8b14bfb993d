"""The pages of the dashboard, one module each; ``register(app, ctx)`` adds a page
and its callbacks to an app."""
