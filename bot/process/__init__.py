"""The running process: CLI, runner, web app, health, metrics, logs."""
