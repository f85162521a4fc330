"""The `dnn-service` command: serve, worker, migrate, keys and the client commands."""
