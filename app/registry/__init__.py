"""The task registry as data, below the core and the radar: how a task's chain of models is built from the registry,
the settings and the overrides (`chain`), and what a model is and costs (`catalog`). The tables themselves are in
app/core/ai_models.py; the router, the deprecation radar and the ops commands all read them through here, so that
they can never disagree on which models a task calls."""
