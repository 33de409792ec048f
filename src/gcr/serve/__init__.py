"""gcr as a service for other agent apps: the MCP server and the models it shares between calls.

:mod:`gcr.serve.models` loads the generator and the critic once per process;
:mod:`gcr.serve.mcp_server` exposes refinement, critique and generation as MCP tools.
The MCP server needs the ``mcp`` extra (``pip install 'gcr[mcp]'``).
"""
