"""Ops-room web console (French labels) and its JSON API, served by aiohttp.

    app = create_console_app(store, refdata=load_refdata(), tokens="tok:operator:alice",
                             action_publisher=KafkaActionPublisher(bootstrap))
    runner = await start_console(app, "127.0.0.1", 8080)   # inside a running loop
    ...
    await runner.cleanup()

"""

from console.app import bound_port, create_console_app, start_console
from console.auth import TokenRegistry, generate_dev_tokens
from console.publisher import KafkaActionPublisher

__all__ = [
    "KafkaActionPublisher",
    "TokenRegistry",
    "bound_port",
    "create_console_app",
    "generate_dev_tokens",
    "start_console",
]
