"""SQLite persistence for the reference engine: identities, directories, flows, tasks, runs.

One class for callers, made of a table group per module (``store_orgs``, ``store_flows``,
``store_instances``) over one connection (``store_db``) and a versioned schema
(``store_schema``).
"""

from __future__ import annotations

from gitsync.engine.store_flows import FlowTables
from gitsync.engine.store_instances import InstanceTables
from gitsync.engine.store_orgs import OrgTables


class Store(OrgTables, FlowTables, InstanceTables):
    """Everything the engine keeps, behind one lock and one connection."""
