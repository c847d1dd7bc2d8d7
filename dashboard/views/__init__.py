"""One module per dashboard page: `load(ctx)` runs the page's queries, `render(ctx)` draws it."""

from types import ModuleType

from dashboard.views import deprecations, failures, models, overview, request, spend, tasks

# Sidebar order; the bench times exactly these.
PAGES: dict[str, ModuleType] = {
    "Overview": overview,
    "Models": models,
    "Tasks": tasks,
    "Spend": spend,
    "Deprecations": deprecations,
    "Failures": failures,
    "Request": request,
}
