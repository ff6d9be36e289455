"""The reference shop: browse, order and payment endpoints with the scenario's capacity.

``peaksim shop`` runs it (see docs/shop.md). Module map: ``capacity`` (slots, FCFS queue,
timeouts, shedding, boot and drain), ``store`` (SQLite orders and payments, real and shadow),
``checkdb`` (consistency check of a database), ``api`` (request parsing and JSON errors),
``metrics`` (Prometheus text and autoscaler snapshots), ``app`` (routes and the ``Shop``),
``protocol`` (connections: deadlines, the connection cap, JSON protocol errors), ``server``
(listening and graceful shutdown). Never imports Locust or gevent.
"""

from loadtests.shop.app import DEFAULT_ENDPOINT_SERVICES, Shop, ShopConfig
from loadtests.shop.checkdb import DbCheck, check_db
from loadtests.shop.metrics import ServiceSnapshot
from loadtests.shop.outcomes import Outcome, PoolState, ScaleError
from loadtests.shop.protocol import ServerLimits, fit_connection_cap
from loadtests.shop.server import (
    ShopError,
    ShopHandle,
    default_db_path,
    run_shop,
    running_shop,
    serve,
)
from loadtests.shop.store import ShopDbError

__all__ = [
    "DEFAULT_ENDPOINT_SERVICES",
    "DbCheck",
    "Outcome",
    "PoolState",
    "ScaleError",
    "ServerLimits",
    "ServiceSnapshot",
    "Shop",
    "ShopConfig",
    "ShopDbError",
    "ShopError",
    "ShopHandle",
    "check_db",
    "default_db_path",
    "fit_connection_cap",
    "run_shop",
    "running_shop",
    "serve",
]
