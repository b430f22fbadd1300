"""Where librdkafka's own log lines go: the `strom.client.librdkafka` logger.

Without a `logger` in its config librdkafka prints to stderr from its own threads
("Connect to ipv4#... failed: Connection refused", repeated per retry), which no caller
can silence or format. Routed here, they are ordinary `logging` records, delivered
while the client is polled. The logger has a NullHandler, so nothing is printed unless
the application configures logging; a front end that wants them hidden even then
(the CLI, whose stderr is for one-line errors) sets `propagate = False`.
"""

from __future__ import annotations

import logging

LIBRDKAFKA_LOGGER = logging.getLogger("strom.client.librdkafka")
LIBRDKAFKA_LOGGER.addHandler(logging.NullHandler())
