"""Vigie runtime: settings, Faust app and topics, storage sinks, simulator and the `vigie` CLI."""
