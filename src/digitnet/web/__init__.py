"""``digitnet serve``: a local page where you draw a digit and watch the network read it.

:mod:`digitnet.web.app` is the server (Starlette; ``digitnet serve`` runs it on uvicorn) and its
JSON API; ``static/`` holds the page, its script and its styles, served by the package itself so
that the page works with no internet. Nothing here is imported by the other commands.
"""
