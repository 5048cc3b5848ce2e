"""Offline tools: the simulator, the backtest and quality harness, the evaluation, the
reference-data build. They run the stages' code on files; nothing here is used by the worker."""
