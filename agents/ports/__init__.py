"""The ports the stages own: what a stage needs from the world (store, retries, health,
metrics, a thread for blocking calls), as Protocols and values passed in by the runtime."""
