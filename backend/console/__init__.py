"""The 24-hour dispatch console: server-rendered pages (Jinja2) with plain JavaScript, all assets
shipped in this package; nothing is loaded from elsewhere at run time."""
