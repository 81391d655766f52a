"""The explorer: read-only web pages served by the node at `/explorer/` on its RPC port.

The pages (`assets/`: HTML, CSS and a few small JavaScript modules, shipped as package data)
show the chain, blocks, transactions, accounts, tasks with their lifecycle and leaderboard
(scores plotted in SVG), models, validators and the node's status. They get their data from
the node's own JSON-RPC endpoint with read methods only (no token: the node refuses a method
that changes it without one), poll it every two seconds, and build the page through the DOM,
so chain data is always text, never markup. `routes.py` serves the assets under a Content
Security Policy that allows nothing but this origin, and models for download.
"""
