"""Pure core of Vigie: no Faust, no Kafka, no ClickHouse. Used live and by `vigie backtest`."""
