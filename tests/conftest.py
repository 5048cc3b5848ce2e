pytest_plugins = ["tests.infra.clickhouse", "tests.infra.kafka", "tests.infra.vigie"]
