"""One module per dashboard page: `load(ctx)` runs the page's queries, `render(ctx)` draws it."""
